-- staging.dm_xa_cu_moi: legacy (pre-July-2025) wards -> the current commune(s) they went into, from the
-- data bundled in `vietnamadminunits`. Grain: (ma_xa_cu, ma_xa_moi); a ward divided among several new
-- communes has one row per candidate (n_xa_moi > 1) and is ambiguous without more information.
with

source as (
    select * from ref_dm_xa_cu_moi
),

xa as (
    select ma_xa, ten_xa, ma_tinh from staging.dm_xa
),

renamed as (
    select
        source.ma_xa_cu,
        source.ten_xa_cu,
        source.ma_huyen_cu,
        source.ten_huyen_cu,
        source.ma_tinh_cu,
        source.ten_tinh_cu,
        source.ma_xa_moi,
        xa.ten_xa                       as ten_xa_moi,
        xa.ma_tinh                      as ma_tinh_moi,
        source.is_mac_dinh,
        source.n_xa_moi
    from source
    left join xa on xa.ma_xa = source.ma_xa_moi
),

final as (
    select
        *,
        n_xa_moi > 1                    as is_chia_tach,
        unit_name_key_bare(ten_xa_cu)   as khoa_ten_cu_rut_gon
    from renamed
)

select * from final order by ma_xa_cu, ma_xa_moi
