-- marts.kpi_tong_quan: the headline figures of the overview page, one row. Summed from the weekly marts
-- (every dossier counts once in marts.ho_so_tuan by its week of receipt, and its receipt is an event of
-- marts.ho_so_thu_tuc_tuan), so it costs the size of those marts, not of the dossiers.
with

weeks as (
    select * from marts.ho_so_tuan
),

communes as (
    select * from marts.ho_so_thu_tuc_tuan
),

final as (
    select
        (select max(data_as_of) from staging.ho_so)                      as data_as_of,
        (select coalesce(sum(n_tiep_nhan), 0) from weeks)::bigint        as n_ho_so,
        (select coalesce(sum(n_da_tra), 0) from weeks)::bigint           as n_da_tra,
        (select coalesce(sum(n_dang_xu_ly), 0) from weeks)::bigint       as n_dang_xu_ly,
        (select coalesce(sum(n_dang_xu_ly_qua_han), 0) from communes)::bigint as n_dang_xu_ly_qua_han,
        (select sum(n_dung_han)::double / nullif(sum(n_da_tra), 0) from weeks) as ty_le_dung_han,
        (select count(distinct co_quan) from weeks)                      as n_co_quan,
        (select count(distinct ma_xa) from communes)                     as n_xa
)

select * from final
