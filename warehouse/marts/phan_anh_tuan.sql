-- marts.phan_anh_tuan: citizen feedback (phản ánh, kiến nghị) per ISO week, field and current commune:
-- received that week; answered that week (on time / late, median and mean days to answer); and of those
-- received that week, how many are still open now and past their due date. The `phan_anh` contract has no
-- receiving agency: the field and the commune are what a leader assigns and follows up by.
-- Grain: (tuan_bat_dau, linh_vuc, ma_xa).
with

phan_anh as (
    select * from staging.phan_anh
),

xa as (
    select ma_xa, ten_xa from staging.dm_xa
),

events as (
    -- one event per item received and one per answer, each in its own week
    select date_trunc('week', ngay_gui)::date as tuan_bat_dau, linh_vuc, ma_xa,
           1 as is_received, 0 as is_answered, 0 as is_on_time, 0 as is_late, null::integer as so_ngay_tra_loi,
           (not phan_anh.is_answered)::int as is_open, phan_anh.is_pending_overdue::int as is_open_overdue
    from phan_anh
    union all
    select date_trunc('week', ngay_tra_loi)::date, linh_vuc, ma_xa,
           0, 1, phan_anh.is_on_time::int, phan_anh.is_late::int, phan_anh.so_ngay_tra_loi, 0, 0
    from phan_anh
    where phan_anh.is_answered
),

final as (
    select
        events.tuan_bat_dau,
        events.linh_vuc,
        events.ma_xa,
        xa.ten_xa,
        sum(is_received)::bigint        as n_tiep_nhan,
        sum(is_answered)::bigint        as n_da_tra_loi,
        sum(is_on_time)::bigint         as n_tra_loi_dung_han,
        sum(is_late)::bigint            as n_tra_loi_qua_han,
        median(so_ngay_tra_loi)         as trung_vi_ngay_tra_loi,
        -- rounded: a float mean depends on the order rows arrive in (parallel scans)
        round(avg(so_ngay_tra_loi), 2)  as tb_ngay_tra_loi,
        sum(is_open)::bigint            as n_dang_xu_ly,
        sum(is_open_overdue)::bigint    as n_dang_xu_ly_qua_han
    from events
    left join xa using (ma_xa)
    group by all
)

select * from final order by tuan_bat_dau, linh_vuc, ma_xa
