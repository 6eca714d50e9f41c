-- marts.danh_muc_csdl: the tenant's database catalogue with the Decision 1437/QĐ-TTg fields (name, purpose,
-- scope, sources, owner, open and shared categories), from the tenant file's `catalogue:` section.
-- Grain: ma_csdl. Feeds the Vietnam data map.
with

source as (
    select * from ref_csdl
),

final as (
    select
        ma_csdl,
        ten_csdl,
        phan_loai,
        case phan_loai
            when 'quoc_gia' then 'Cơ sở dữ liệu quốc gia'
            when 'dung_chung' then 'Cơ sở dữ liệu dùng chung của bộ, ngành, địa phương'
            when 'noi_bo' then 'Cơ sở dữ liệu nội bộ của hệ thống thông tin'
        end                                         as ten_phan_loai,
        muc_dich,
        pham_vi,
        nguon_du_lieu,
        co_quan_chu_quan,
        danh_muc_mo,
        danh_muc_chia_se,
        len(danh_muc_mo) > 0                        as is_co_du_lieu_mo,
        len(danh_muc_chia_se) > 0                   as is_co_du_lieu_chia_se,
        trang_thai,
        lo_trinh
    from source
)

select * from final order by phan_loai, ma_csdl
