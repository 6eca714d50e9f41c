-- staging.chi_tieu_cds: digital-transformation targets (reference data, seed warehouse/seeds/chi_tieu_cds.csv):
-- the 2023 programme targets and DTI 2025 indicators. Grain: ma_chi_tieu. A new DTI indicator is one line.
with

source as (
    select * from seed_chi_tieu_cds
),

renamed as (
    select
        cast(ma_chi_tieu as varchar)            as ma_chi_tieu,
        cast(khung as varchar)                  as khung,
        cast(nhom as varchar)                   as nhom,
        cast(ten_chi_tieu as varchar)           as ten_chi_tieu,
        cast(ten_chi_tieu_en as varchar)        as ten_chi_tieu_en,
        cast(don_vi as varchar)                 as don_vi,
        cast(so_sanh as varchar)                as so_sanh,
        cast(gia_tri_muc_tieu as double)        as gia_tri_muc_tieu,
        cast(trang_thai_muc_tieu as varchar)    as trang_thai_muc_tieu,
        cast(nam_muc_tieu as integer)           as nam_muc_tieu,
        cast(nguon_thuc_te as varchar)          as nguon_thuc_te,
        cast(ma_nguon as varchar)               as ma_nguon,
        cast(ghi_chu as varchar)                as ghi_chu
    from source
),

final as (
    select * from renamed
)

select * from final order by ma_chi_tieu
