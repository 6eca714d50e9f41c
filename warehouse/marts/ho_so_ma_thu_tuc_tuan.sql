-- marts.ho_so_ma_thu_tuc_tuan: administrative-procedure dossiers per ISO week, agency, field, current commune
-- and national procedure code: the finest grain of the app's drill-down (province → agency/commune →
-- procedure). Same measures as marts.ho_so_thu_tuc_tuan (one level coarser: without ma_thu_tuc).
-- Grain: (tuan_bat_dau, co_quan, linh_vuc, ma_xa, ma_thu_tuc).
with

ho_so as (
    select * from staging.ho_so
),

events as (
    -- one event per receipt and one per return, each in its own week
    select date_trunc('week', ngay_nhan)::date as tuan_bat_dau, co_quan, linh_vuc, ma_xa, ma_thu_tuc,
           1 as is_received, 0 as is_returned, 0 as is_on_time, 0 as is_late,
           (not ho_so.is_returned)::int as is_pending, ho_so.is_pending_overdue::int as is_pending_overdue
    from ho_so
    union all
    select date_trunc('week', ngay_tra)::date, co_quan, linh_vuc, ma_xa, ma_thu_tuc,
           0, 1, ho_so.is_on_time::int, ho_so.is_overdue::int, 0, 0
    from ho_so
    where ho_so.is_returned
),

final as (
    select
        tuan_bat_dau,
        co_quan,
        linh_vuc,
        ma_xa,
        ma_thu_tuc,
        sum(is_received)::bigint        as n_tiep_nhan,
        sum(is_returned)::bigint        as n_da_tra,
        sum(is_on_time)::bigint         as n_tra_dung_han,
        sum(is_late)::bigint            as n_tra_qua_han,
        sum(is_pending)::bigint         as n_dang_xu_ly,
        sum(is_pending_overdue)::bigint as n_dang_xu_ly_qua_han
    from events
    group by all
)

select * from final order by tuan_bat_dau, co_quan, ma_xa, ma_thu_tuc, linh_vuc
