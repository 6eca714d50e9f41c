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
        avg(ty_le_pct)      as ty_le_pct_binh_quan,
        count(distinct ma_xa) as n_xa
    from xa_hoi_so
    group by all
)

select * from final order by nam, quy, thanh_phan
