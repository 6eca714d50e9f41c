-- staging.dm_xa: the 3,321 commune-level units (xã, phường, đặc khu) in force since 1 July 2025, official
-- codes, with their province and the name keys normalisation matches free text against.
with

xa as (
    select * from ref_dm_xa
),

tinh as (
    select * from staging.dm_tinh
),

renamed as (
    select
        xa.ma_xa,
        xa.ten_xa,
        xa.loai_don_vi,
        xa.ma_tinh,
        tinh.ten_tinh,
        xa.ten_ma
    from xa
    left join tinh using (ma_tinh)
),

final as (
    select
        *,
        loai_don_vi = 'phường'              as is_phuong,
        unit_name_key(ten_xa)               as khoa_ten_day_du,
        unit_name_key_bare(ten_xa)          as khoa_ten_rut_gon
    from renamed
)

select * from final order by ma_xa
