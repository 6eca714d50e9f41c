-- marts.tan_so_theo_tinh (tenant bo-khoa-hoc-cong-nghe): radio-frequency licences per province and licence type:
-- in force, expiring within 90 days, expired, revoked. Every one of the 34 provinces appears for every type
-- (0 where it has none), so a map or a ranking never silently drops a province.
with

licences as (
    select * from staging.giay_phep_tan_so
),

provinces as (
    select ma_tinh, ten_tinh from staging.dm_tinh
),

types as (
    select distinct loai_giay_phep from licences
),

counts as (
    select
        ma_tinh,
        loai_giay_phep,
        count(*) filter (where is_con_hieu_luc)             as n_con_hieu_luc,
        count(*) filter (where is_sap_het_han)              as n_sap_het_han,
        count(*) filter (where trang_thai = 'Hết hạn')      as n_het_han,
        count(*) filter (where trang_thai = 'Đã thu hồi')   as n_thu_hoi,
        count(*)                                            as n_giay_phep
    from licences
    group by all
),

final as (
    select
        provinces.ma_tinh,
        provinces.ten_tinh,
        types.loai_giay_phep,
        coalesce(counts.n_con_hieu_luc, 0)                  as n_con_hieu_luc,
        coalesce(counts.n_sap_het_han, 0)                   as n_sap_het_han,
        coalesce(counts.n_het_han, 0)                       as n_het_han,
        coalesce(counts.n_thu_hoi, 0)                       as n_thu_hoi,
        coalesce(counts.n_giay_phep, 0)                     as n_giay_phep
    from provinces
    cross join types
    left join counts using (ma_tinh, loai_giay_phep)
)

select * from final order by ma_tinh, loai_giay_phep
