-- staging.dm_tinh: the 34 provincial units in force since 1 July 2025, official codes (reference data from
-- the `vietnam-provinces` package, registered as `ref_dm_tinh` by pipelines/reference/register.py).
with

source as (
    select * from ref_dm_tinh
),

renamed as (
    select
        ma_tinh,
        ten_tinh,
        loai_don_vi,
        ten_ma,
        ma_vung_dien_thoai
    from source
),

final as (
    select
        *,
        loai_don_vi = 'thành phố trung ương'    as is_thanh_pho_truc_thuoc_tw
    from renamed
)

select * from final order by ma_tinh
