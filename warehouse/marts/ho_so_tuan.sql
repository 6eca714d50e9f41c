-- marts.ho_so_tuan: dossiers per ISO week, agency and procedure field: received, returned on time / late,
-- and still pending. Grain: (tuan_bat_dau, co_quan, linh_vuc).
with

ho_so as (
    select * from staging.ho_so
),

final as (
    select
        date_trunc('week', ngay_nhan)::date          as tuan_bat_dau,
        co_quan,
        linh_vuc,
        count(*)                                     as n_tiep_nhan,
        count(*) filter (where is_returned)          as n_da_tra,
        count(*) filter (where is_on_time)           as n_dung_han,
        count(*) filter (where is_overdue)           as n_qua_han,
        count(*) filter (where not is_returned)      as n_dang_xu_ly,
        avg(n_days_processing) filter (where is_returned) as avg_days_processing
    from ho_so
    group by all
)

select * from final order by tuan_bat_dau, co_quan, linh_vuc
