-- marts.ho_so_thu_tuc_tuan: administrative-procedure dossiers per ISO week, agency, procedure field and
-- current commune: received that week, returned that week (on time / late), and of those received that
-- week, how many are still pending now. Grain: (tuan_bat_dau, co_quan, linh_vuc, ma_xa).
-- Summed from marts.ho_so_ma_thu_tuc_tuan (the same counts, one level finer: per procedure code).
with

detail as (
    select * from marts.ho_so_ma_thu_tuc_tuan
),

xa as (
    select ma_xa, ten_xa from staging.dm_xa
),

final as (
    select
        detail.tuan_bat_dau,
        detail.co_quan,
        detail.linh_vuc,
        detail.ma_xa,
        xa.ten_xa,
        sum(n_tiep_nhan)::bigint            as n_tiep_nhan,
        sum(n_da_tra)::bigint               as n_da_tra,
        sum(n_tra_dung_han)::bigint         as n_tra_dung_han,
        sum(n_tra_qua_han)::bigint          as n_tra_qua_han,
        sum(n_dang_xu_ly)::bigint           as n_dang_xu_ly,
        sum(n_dang_xu_ly_qua_han)::bigint   as n_dang_xu_ly_qua_han
    from detail
    left join xa using (ma_xa)
    group by all
)

select * from final order by tuan_bat_dau, co_quan, linh_vuc, ma_xa
