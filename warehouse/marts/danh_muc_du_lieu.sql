-- marts.danh_muc_du_lieu: the tenant's datasets — every configured source (raw layer) and every warehouse
-- table (staging, marts) — with its database, owner, description and whether it may be opened or shared:
-- raw sources with personal columns are closed; staging (pseudonymised) may be shared between agencies;
-- marts (aggregated, no personal data) may be published as open data. Grain: (tang, ten_bang).
with

sources as (
    select * from ref_nguon
),

tables as (
    select * from ref_bang
),

databases as (
    select ma_csdl, ten_csdl, co_quan_chu_quan, unnest(nguon_du_lieu) as nguon from ref_csdl
),

datasets as (
    select
        'raw' as tang, nguon as ten_bang, mo_ta, loai_nguon, nguon,
        len(cot_ca_nhan) > 0 as is_co_du_lieu_ca_nhan
    from sources
    union all
    select tang, ten_bang, mo_ta, null, null, false
    from tables
),

final as (
    select
        datasets.tang,
        datasets.ten_bang,
        datasets.mo_ta,
        datasets.loai_nguon,
        databases.ma_csdl,
        databases.ten_csdl,
        databases.co_quan_chu_quan,
        datasets.is_co_du_lieu_ca_nhan,
        case when datasets.tang = 'marts' then 'mo'
             when datasets.tang = 'staging' then 'chia_se'
             when datasets.is_co_du_lieu_ca_nhan then 'han_che'
             else 'chia_se' end                     as muc_tiep_can
    from datasets
    left join databases on databases.nguon = datasets.nguon
)

select * from final order by tang, ten_bang
