-- staging.ho_so: one row per dossier (hồ sơ) of the one-stop-shop, typed, with derived flags.
-- Reads the shared contract `ho_so` (every feeding source): personal columns arrive normalised and
-- pseudonymised by the contract view (pipelines/contracts.py), with validity flags computed from the raw values. The commune code is normalised to the current
-- (post-July-2025) unit through staging.dm_don_vi_tra_cuu; what does not resolve is listed in
-- the don_vi_chua_khop table, never guessed.
with

source as (
    select * from contract_ho_so
),

unit_codes as (
    select khoa, ma_xa, ma_tinh, cach_khop, n_ung_vien
    from staging.dm_don_vi_tra_cuu
    where loai_khoa = 'ma'
),

as_of as (
    -- The data's own "today": the latest update seen, so reruns on old data give the same answer. An
    -- incremental build (pipelines/incremental.py) reads only the changed dossiers: it passes the latest
    -- update over all of them in the variable.
    select coalesce(getvariable('ho_so_data_as_of'), max(ngay_cap_nhat)::date) as data_as_of from source
),

renamed as (
    select
        ma_ho_so,
        ma_thu_tuc,
        trim(linh_vuc)                         as linh_vuc,
        trim(co_quan)                          as co_quan,
        nullif(trim(ma_xa), '')                as ma_xa_goc,
        ngay_nhan,
        ngay_hen_tra,
        ngay_tra,
        trang_thai,
        so_cccd_nguoi_nop                      as nguoi_nop_token,
        so_dien_thoai_nguoi_nop                as dien_thoai_token,
        is_so_cccd_nguoi_nop_valid             as is_cccd_valid,
        is_so_dien_thoai_nguoi_nop_valid       as is_phone_valid,
        ngay_cap_nhat                          as cap_nhat_at,
        as_of.data_as_of
    from source cross join as_of
),

units as (
    select
        renamed.*,
        -- a code that lost its leading zero in a spreadsheet ('1234' for '01234') is padded back
        case when regexp_full_match(ma_xa_goc, '[0-9]{1,5}') then lpad(ma_xa_goc, 5, '0') else ma_xa_goc end
                                                            as ma_xa_chuan
    from renamed
),

matched as (
    select
        units.* exclude (ma_xa_chuan),
        unit_codes.ma_xa,
        unit_codes.ma_tinh,
        unit_codes.cach_khop                                as cach_khop_don_vi,
        case when units.ma_xa_goc is null then 'thieu'
             when unit_codes.ma_xa is not null then 'da_khop'
             when unit_codes.n_ung_vien > 1 then 'mo_ho'
             else 'khong_tim_thay' end                      as trang_thai_khop_don_vi
    from units
    left join unit_codes on unit_codes.khoa = units.ma_xa_chuan
),

final as (
    select
        *,
        ngay_tra is not null                                    as is_returned,
        ngay_tra is not null and ngay_tra <= ngay_hen_tra       as is_on_time,
        ngay_tra is not null and ngay_tra > ngay_hen_tra        as is_overdue,
        ngay_tra is null and data_as_of > ngay_hen_tra          as is_pending_overdue,
        date_diff('day', ngay_nhan, coalesce(ngay_tra, data_as_of)) as n_days_processing,
        date_diff('day', ngay_nhan, ngay_hen_tra)               as n_days_allowed
    from matched
)

select * from final
