-- staging.chi_so_cds_tinh: the province's yearly digital-transformation report — indicator values and plan
-- statuses, from the shared contract `chi_so_cds_tinh` (values and dates arrive typed: a tenant's mapping parses
-- Vietnamese decimal commas and dd/mm/yyyy with vn_number / vn_date). Grain: (ma_chi_tieu, nam).
with

source as (
    select * from contract_chi_so_cds_tinh
),

renamed as (
    select
        trim(ma_chi_tieu)                                                   as ma_chi_tieu,
        cast(nam as integer)                                                as nam,
        gia_tri,
        nullif(trim(trang_thai), '')                                        as trang_thai,
        ngay_ban_hanh,
        nullif(trim(so_van_ban), '')                                        as so_van_ban
    from source
),

final as (
    select * from renamed
)

select * from final order by ma_chi_tieu, nam
