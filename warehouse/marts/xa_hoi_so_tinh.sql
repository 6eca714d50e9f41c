-- marts.xa_hoi_so_tinh: province-wide average of each digital-society component per quarter.
with

xa_hoi_so as (
    select * from staging.xa_hoi_so
),

final as (
    select
        nam,
        quy,
        thanh_phan,
        -- rounded: a float average depends on the order rows arrive in (parallel scans); 2 decimals of a
        -- 1-decimal percentage keep the mart identical run after run
        round(avg(ty_le_pct), 2) as ty_le_pct_binh_quan,
        count(distinct ma_xa) as n_xa
    from xa_hoi_so
    group by all
)

select * from final order by nam, quy, thanh_phan
