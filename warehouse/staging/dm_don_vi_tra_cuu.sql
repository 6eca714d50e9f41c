-- staging.dm_don_vi_tra_cuu: every key an agency record may carry for its commune — a current code, a
-- legacy ward code, a current or legacy name (with or without diacritics, with or without 'Xã'/'Phường')
-- — and the current commune it resolves to. Grain: (loai_khoa, pham_vi, khoa). A key with several
-- candidates at its best level is ambiguous: `ma_xa` is NULL and `ung_vien` lists them, never a guess.
with

xa as (
    select * from staging.dm_xa
),

cu_moi as (
    select * from staging.dm_xa_cu_moi
),

candidates as (
    -- level 1: a code in force is itself (even if a legacy ward once had the same number)
    select 'ma' as loai_khoa, '*' as pham_vi, ma_xa as khoa, ma_xa, 1 as muc, 'ma_hien_hanh' as cach_khop
    from xa
    union all
    -- level 2: a retired legacy code -> the commune(s) it went into
    select 'ma', '*', ma_xa_cu, ma_xa_moi, 2, 'ma_cu'
    from cu_moi
    where ma_xa_cu not in (select ma_xa from xa)
    union all
    -- names, within a province ('37') and nationwide ('*'): current names first, then legacy ones
    select 'ten_day_du', coalesce(scope.p, xa.ma_tinh), xa.khoa_ten_day_du, xa.ma_xa, 1, 'ten_hien_hanh'
    from xa cross join (values ('*'), (null)) scope(p)
    union all
    select 'ten_rut_gon', coalesce(scope.p, xa.ma_tinh), xa.khoa_ten_rut_gon, xa.ma_xa, 1, 'ten_hien_hanh'
    from xa cross join (values ('*'), (null)) scope(p)
    union all
    select 'ten_rut_gon', coalesce(scope.p, cu_moi.ma_tinh_moi), cu_moi.khoa_ten_cu_rut_gon, cu_moi.ma_xa_moi, 2,
           'ten_cu'
    from cu_moi cross join (values ('*'), (null)) scope(p)
),

best as (
    select *
    from candidates
    where khoa is not null
    qualify muc = min(muc) over (partition by loai_khoa, pham_vi, khoa)
),

final as (
    select
        loai_khoa,
        pham_vi,
        khoa,
        case when count(distinct ma_xa) = 1 then any_value(ma_xa) end   as ma_xa,
        any_value(cach_khop)                                            as cach_khop,
        count(distinct ma_xa)                                           as n_ung_vien,
        list_sort(list(distinct ma_xa))                                 as ung_vien
    from best
    group by all
)

select
    final.*,
    xa.ma_tinh
from final
left join xa using (ma_xa)
order by loai_khoa, pham_vi, khoa
