-- marts.ho_so_thoi_gian_xu_ly: processing-time distribution of returned dossiers (calendar days from receipt
-- to return) per quarter of return, procedure field and agency: percentiles, mean, and the legal time.
-- Grain: (nam, quy, linh_vuc, co_quan). Dossiers with a return date before receipt (a typing error) are
-- left out rather than counted as negative days.
with

ho_so as (
    select * from staging.ho_so
),

returned as (
    select
        year(ngay_tra)                                  as nam,
        quarter(ngay_tra)                               as quy,
        linh_vuc,
        co_quan,
        date_diff('day', ngay_nhan, ngay_tra)           as n_days,
        n_days_allowed,
        is_on_time
    from ho_so
    where is_returned and ngay_tra >= ngay_nhan
),

final as (
    select
        nam,
        quy,
        linh_vuc,
        co_quan,
        count(*)                                        as n_da_tra,
        quantile_disc(n_days, 0.5)                      as p50_days,
        quantile_disc(n_days, 0.75)                     as p75_days,
        quantile_disc(n_days, 0.9)                      as p90_days,
        quantile_disc(n_days, 0.95)                     as p95_days,
        max(n_days)                                     as max_days,
        -- rounded: a float mean depends on the order rows arrive in (parallel scans)
        round(avg(n_days), 2)                           as avg_days,
        round(avg(n_days_allowed), 2)                   as avg_days_allowed,
        round(count(*) filter (where is_on_time)::double / count(*), 4) as ty_le_dung_han
    from returned
    group by all
)

select * from final order by nam, quy, linh_vuc, co_quan
