-- staging.xa_hoi_so: digital-society indicators, one row per commune, quarter and component (long form).
with

source as (
    select * from src_chi_so_xa_hoi_so
),

unpivoted as (
    unpivot source
    on cap_quang_ho_gia_dinh, dien_thoai_thong_minh, tai_khoan_dinh_danh_dien_tu, chu_ky_so_ca_nhan,
       tai_khoan_thanh_toan_so, tai_khoan_dich_vu_cong_truc_tuyen, ky_nang_so_co_ban,
       ky_nang_an_toan_thong_tin_co_ban
    into name thanh_phan value ty_le_pct
),

final as (
    select
        trim(ma_xa)                                                         as ma_xa,
        ten_xa_phuong                                                       as ten_xa,
        ky_bao_cao,
        cast(regexp_extract(ky_bao_cao, '(\d{4})', 1) as integer)           as nam,
        cast(regexp_extract(ky_bao_cao, 'Quý\s*(\d)', 1) as integer)        as quy,
        thanh_phan,
        cast(ty_le_pct as double)                                           as ty_le_pct
    from unpivoted
)

select * from final
