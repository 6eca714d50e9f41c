-- marts.ho_so_ton_dong_tuan: backlog — dossiers still open at the end of each week (received by then, not
-- yet returned by then), and how many of them were already past their due date. Grain: (tuan_ket_thuc,
-- co_quan, linh_vuc). The last week ends at the data's own "today" (data_as_of), not in the future.
with

ho_so as (
    select * from staging.ho_so
),

bounds as (
    select min(ngay_nhan) as first_day, max(data_as_of) as data_as_of from ho_so
),

weeks as (
    select least(w::date + 6, bounds.data_as_of) as tuan_ket_thuc
    from bounds,
         unnest(generate_series(date_trunc('week', bounds.first_day), bounds.data_as_of, interval 7 day)) as t(w)
),

open_at_week_end as (
    select
        weeks.tuan_ket_thuc,
        ho_so.co_quan,
        ho_so.linh_vuc,
        ho_so.ngay_hen_tra < weeks.tuan_ket_thuc as is_overdue_then
    from weeks
    join ho_so
      on ho_so.ngay_nhan <= weeks.tuan_ket_thuc
     and (ho_so.ngay_tra is null or ho_so.ngay_tra > weeks.tuan_ket_thuc)
),

final as (
    select
        tuan_ket_thuc,
        co_quan,
        linh_vuc,
        count(*)                                    as n_ton_dong,
        count(*) filter (where is_overdue_then)     as n_ton_dong_qua_han
    from open_at_week_end
    group by all
)

select * from final order by tuan_ket_thuc, co_quan, linh_vuc
