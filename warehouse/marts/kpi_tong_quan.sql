-- marts.kpi_tong_quan: the headline figures of the overview page, one row.
with

ho_so as (
    select * from staging.ho_so
),

final as (
    select
        max(data_as_of)                                                  as data_as_of,
        count(*)                                                         as n_ho_so,
        count(*) filter (where is_returned)                              as n_da_tra,
        count(*) filter (where not is_returned)                          as n_dang_xu_ly,
        count(*) filter (where is_pending_overdue)                       as n_dang_xu_ly_qua_han,
        count(*) filter (where is_on_time)::double
            / nullif(count(*) filter (where is_returned), 0)             as ty_le_dung_han,
        count(distinct co_quan)                                          as n_co_quan,
        count(distinct ma_xa)                                            as n_xa
    from ho_so
)

select * from final
