-- marts.ho_so_thu_tuc_tuan: administrative-procedure dossiers per ISO week, agency, procedure field and
-- current commune: received that week, returned that week (on time / late), and of those received that
-- week, how many are still pending now. Grain: (tuan_bat_dau, co_quan, linh_vuc, ma_xa).
with

ho_so as (
    select * from staging.ho_so
),

xa as (
    select ma_xa, ten_xa from staging.dm_xa
),

events as (
    -- one event per receipt and one per return, each in its own week
    select date_trunc('week', ngay_nhan)::date as tuan_bat_dau, co_quan, linh_vuc, ma_xa,
           1 as is_received, 0 as is_returned, 0 as is_on_time, 0 as is_late,
           (not ho_so.is_returned)::int as is_pending, ho_so.is_pending_overdue::int as is_pending_overdue
    from ho_so
    union all
    select date_trunc('week', ngay_tra)::date, co_quan, linh_vuc, ma_xa,
           0, 1, ho_so.is_on_time::int, ho_so.is_overdue::int, 0, 0
    from ho_so
    where ho_so.is_returned
),

final as (
    select
        events.tuan_bat_dau,
        events.co_quan,
        events.linh_vuc,
        events.ma_xa,
        xa.ten_xa,
        sum(is_received)::bigint    as n_tiep_nhan,
        sum(is_returned)::bigint    as n_da_tra,
        sum(is_on_time)::bigint     as n_tra_dung_han,
        sum(is_late)::bigint        as n_tra_qua_han,
        sum(is_pending)::bigint     as n_dang_xu_ly,
        sum(is_pending_overdue)::bigint as n_dang_xu_ly_qua_han
    from events
    left join xa using (ma_xa)
    group by all
)

select * from final order by tuan_bat_dau, co_quan, linh_vuc, ma_xa
