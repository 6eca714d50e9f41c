-- staging.chi_so_cds_tinh: the province's yearly digital-transformation report — indicator values (typed
-- with Vietnamese decimal commas) and plan statuses. Grain: (ma_chi_tieu, nam).
with

source as (
    select * from src_chi_so_cds_tinh
),

renamed as (
    select
        trim(ma_chi_tieu)                                                   as ma_chi_tieu,
        cast(nam as integer)                                                as nam,
        -- '1.234,5' -> 1234.5: thousands dots out, decimal comma to a point
        try_cast(replace(replace(nullif(trim(gia_tri), ''), '.', ''), ',', '.') as double) as gia_tri,
        nullif(trim(trang_thai), '')                                        as trang_thai,
        try_strptime(nullif(trim(ngay_ban_hanh), ''), '%d/%m/%Y')::date     as ngay_ban_hanh,
        nullif(trim(so_van_ban), '')                                        as so_van_ban
    from source
),

final as (
    select * from renamed
)

select * from final order by ma_chi_tieu, nam
