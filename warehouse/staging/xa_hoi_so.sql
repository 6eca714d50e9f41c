-- staging.xa_hoi_so: digital-society indicators, one row per commune, quarter and component (long form),
-- from the shared contract `chi_so_xa_hoi_so` (every feeding source).
-- The commune is normalised to its current code: by code (current or legacy), else by name within the
-- tenant's province (with or without diacritics and 'Xã'/'Phường'); unresolved rows keep ma_xa NULL and
-- are listed in the don_vi_chua_khop table.
with

source as (
    select * from contract_chi_so_xa_hoi_so
),

unit_keys as (
    select * from staging.dm_don_vi_tra_cuu
),

unpivoted as (
    unpivot source
    on cap_quang_ho_gia_dinh, dien_thoai_thong_minh, tai_khoan_dinh_danh_dien_tu, chu_ky_so_ca_nhan,
       tai_khoan_thanh_toan_so, tai_khoan_dich_vu_cong_truc_tuyen, ky_nang_so_co_ban,
       ky_nang_an_toan_thong_tin_co_ban
    into name thanh_phan value ty_le_pct
),

renamed as (
    select
        nullif(trim(ma_xa), '')                                             as ma_xa_goc,
        ten_xa,
        ky_bao_cao,
        cast(regexp_extract(ky_bao_cao, '(\d{4})', 1) as integer)           as nam,
        cast(regexp_extract(ky_bao_cao, 'Quý\s*(\d)', 1) as integer)        as quy,
        thanh_phan,
        cast(ty_le_pct as double)                                           as ty_le_pct
    from unpivoted
),

units as (
    select distinct
        ma_xa_goc,
        ten_xa,
        case when regexp_full_match(ma_xa_goc, '[0-9]{1,5}') then lpad(ma_xa_goc, 5, '0') else ma_xa_goc end
                                                                            as ma_xa_chuan
    from renamed
),

matched as (
    select
        units.ma_xa_goc,
        units.ten_xa,
        coalesce(by_code.ma_xa, by_name.ma_xa, by_bare_name.ma_xa)         as ma_xa,
        case when by_code.ma_xa is not null then by_code.cach_khop
             when by_name.ma_xa is not null then by_name.cach_khop
             when by_bare_name.ma_xa is not null then by_bare_name.cach_khop end as cach_khop_don_vi,
        greatest(by_code.n_ung_vien, by_name.n_ung_vien, by_bare_name.n_ung_vien) as n_ung_vien
    from units
    left join unit_keys by_code
        on by_code.loai_khoa = 'ma' and by_code.khoa = units.ma_xa_chuan
    left join unit_keys by_name
        on by_name.loai_khoa = 'ten_day_du' and by_name.pham_vi = getvariable('tonghop_ma_tinh')
       and by_name.khoa = unit_name_key(units.ten_xa)
    left join unit_keys by_bare_name
        on by_bare_name.loai_khoa = 'ten_rut_gon' and by_bare_name.pham_vi = getvariable('tonghop_ma_tinh')
       and by_bare_name.khoa = unit_name_key_bare(units.ten_xa)
),

final as (
    select
        matched.ma_xa,
        renamed.ma_xa_goc,
        renamed.ten_xa,
        renamed.ky_bao_cao,
        renamed.nam,
        renamed.quy,
        renamed.thanh_phan,
        renamed.ty_le_pct,
        matched.cach_khop_don_vi,
        case when matched.ma_xa is not null then 'da_khop'
             when renamed.ma_xa_goc is null and renamed.ten_xa is null then 'thieu'
             when matched.n_ung_vien > 1 then 'mo_ho'
             else 'khong_tim_thay' end                                      as trang_thai_khop_don_vi
    from renamed
    left join matched
        on matched.ma_xa_goc is not distinct from renamed.ma_xa_goc
       and matched.ten_xa is not distinct from renamed.ten_xa
)

select * from final
