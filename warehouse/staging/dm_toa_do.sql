-- staging.dm_toa_do: centroid of every 2025 province and commune (and the commune's area), for maps drawn
-- without a tile server: from the `admin_units` table bundled in the `vietnamadminunits` package, matched to
-- the official codes (registered as `ref_dm_toa_do` by pipelines/reference/admin_units.py).
with

toa_do as (
    select * from ref_dm_toa_do
),

xa as (
    select * from staging.dm_xa
),

tinh as (
    select * from staging.dm_tinh
),

final as (
    select
        toa_do.cap,
        toa_do.ma,
        coalesce(xa.ten_xa, tinh.ten_tinh)                as ten,
        coalesce(xa.ma_tinh, tinh.ma_tinh)                as ma_tinh,
        cast(toa_do.vi_do as double)                      as vi_do,
        cast(toa_do.kinh_do as double)                    as kinh_do,
        cast(toa_do.dien_tich_km2 as double)              as dien_tich_km2
    from toa_do
    left join xa on toa_do.cap = 'xa' and xa.ma_xa = toa_do.ma
    left join tinh on toa_do.cap = 'tinh' and tinh.ma_tinh = toa_do.ma
    where coalesce(xa.ma_xa, tinh.ma_tinh) is not null
)

select * from final order by cap, ma
