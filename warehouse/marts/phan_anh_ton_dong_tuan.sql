-- marts.phan_anh_ton_dong_tuan: feedback backlog — items still open at the end of each week (sent by then,
-- not yet answered by then) per field, and how many of them were already past their answer deadline.
-- Grain: (tuan_ket_thuc, linh_vuc). The last week ends at the data's own "today" (data_as_of).
with

phan_anh as (
    select * from staging.phan_anh
),

bounds as (
    select min(ngay_gui) as first_day, max(data_as_of) as data_as_of from phan_anh
),

weeks as (
    select least(w::date + 6, bounds.data_as_of) as tuan_ket_thuc
    from bounds,
         unnest(generate_series(date_trunc('week', bounds.first_day), bounds.data_as_of, interval 7 day)) as t(w)
),

open_at_week_end as (
    select
        weeks.tuan_ket_thuc,
        phan_anh.linh_vuc,
        phan_anh.han_tra_loi < weeks.tuan_ket_thuc as is_overdue_then
    from weeks
    join phan_anh
      on phan_anh.ngay_gui <= weeks.tuan_ket_thuc
     and (phan_anh.ngay_tra_loi is null or phan_anh.ngay_tra_loi > weeks.tuan_ket_thuc)
),

final as (
    select
        tuan_ket_thuc,
        linh_vuc,
        count(*)                                    as n_ton_dong,
        count(*) filter (where is_overdue_then)     as n_ton_dong_qua_han
    from open_at_week_end
    group by all
)

select * from final order by tuan_ket_thuc, linh_vuc
