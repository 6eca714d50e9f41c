-- staging.ho_so: one row per dossier (hồ sơ) of the one-stop-shop, typed, with derived flags.
-- Personal columns arrive already pseudonymised by `src_ho_so` (see pipelines/steps.py).
with

source as (
    select * from src_ho_so
),

as_of as (
    -- The data's own "today": the latest update seen, so reruns on old data give the same answer.
    select max(ngay_cap_nhat)::date as data_as_of from source
),

renamed as (
    select
        ma_ho_so,
        ma_thu_tuc,
        trim(linh_vuc)                         as linh_vuc,
        trim(co_quan)                          as co_quan,
        trim(ma_xa)                            as ma_xa,
        ngay_nhan,
        ngay_hen_tra,
        ngay_tra,
        trang_thai,
        so_cccd                                as nguoi_nop_token,
        so_dien_thoai                          as dien_thoai_token,
        ngay_cap_nhat                          as cap_nhat_at,
        as_of.data_as_of
    from source cross join as_of
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
    from renamed
)

select * from final
