-- staging.phan_anh: one row per citizen feedback item (phản ánh, kiến nghị), its latest version, typed, with
-- derived flags. Reads the shared contract `phan_anh` (every feeding source, e.g. a province's LGSP service):
-- the source views keep the newest promoted row of each key, so a late update (the status changed, the
-- answer given, the days to answer filled in) replaces the earlier version of the item.
-- Personal data: the sender's phone arrives pseudonymised by the contract view (pipelines/contracts.py) and is
-- kept as a token only (repeat senders can be counted, nobody can be called); the sender's name and address
-- are not carried at all. The subject is free text a citizen typed: any run of 9 or more digits (a phone
-- number, a CCCD or an old ID card number written into it) is masked.
-- The commune code is normalised to the current (post-July-2025) unit like staging.ho_so does.
-- Answer deadline: the `phan_anh` contract has no due date, so the warehouse uses a fixed 15 calendar days
-- from sending (HAN_TRA_LOI below): change it here if the province's rules set another one.
with

source as (
    select * from contract_phan_anh
),

unit_codes as (
    select khoa, ma_xa, ma_tinh, cach_khop, n_ung_vien
    from staging.dm_don_vi_tra_cuu
    where loai_khoa = 'ma'
),

as_of as (
    -- The data's own "today": the latest update seen (or the latest item sent, for a source without update
    -- times), so reruns on old data give the same answer. An incremental build (pipelines/incremental.py)
    -- reads only the changed items: it passes the latest update over all of them in the variable.
    select coalesce(getvariable('phan_anh_data_as_of'), max(coalesce(ngay_cap_nhat, ngay_gui))::date) as data_as_of
    from source
),

renamed as (
    select
        ma_phan_anh,
        regexp_replace(trim(tieu_de), '\+?[0-9]([ .()-]?[0-9]){8,}', '***', 'g') as tieu_de,
        trim(linh_vuc)                                  as linh_vuc,
        nullif(trim(kenh_tiep_nhan), '')                as kenh_tiep_nhan,
        nullif(trim(ma_xa), '')                         as ma_xa_goc,
        ngay_gui                                        as gui_at,
        ngay_gui::date                                  as ngay_gui,
        trang_thai,
        so_ngay_xu_ly,
        so_dien_thoai_nguoi_gui                         as nguoi_gui_token,
        is_so_dien_thoai_nguoi_gui_valid                as is_phone_valid,
        coalesce(ngay_cap_nhat, ngay_gui)               as cap_nhat_at,
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
        case when units.ma_xa_goc is null then 'thieu'
             when unit_codes.ma_xa is not null then 'da_khop'
             when unit_codes.n_ung_vien > 1 then 'mo_ho'
             else 'khong_tim_thay' end                  as trang_thai_khop_don_vi
    from units
    left join unit_codes on unit_codes.khoa = units.ma_xa_chuan
),

answered as (
    select
        *,
        ngay_gui + 15                                   as han_tra_loi,   -- HAN_TRA_LOI: 15 calendar days
        -- answered on: sent + the days the source reports, else the day of its last update
        case when trang_thai = 'da_tra_loi'
             then coalesce(ngay_gui + so_ngay_xu_ly, cap_nhat_at::date) end as ngay_tra_loi
    from matched
),

final as (
    select
        * exclude (so_ngay_xu_ly),
        ngay_tra_loi is not null                                    as is_answered,
        date_diff('day', ngay_gui, ngay_tra_loi)                    as so_ngay_tra_loi,
        ngay_tra_loi is not null and ngay_tra_loi <= han_tra_loi    as is_on_time,
        ngay_tra_loi is not null and ngay_tra_loi > han_tra_loi     as is_late,
        ngay_tra_loi is null and data_as_of > han_tra_loi           as is_pending_overdue,
        date_diff('day', ngay_gui, coalesce(ngay_tra_loi, data_as_of)) as n_days_open
    from answered
)

select * from final
