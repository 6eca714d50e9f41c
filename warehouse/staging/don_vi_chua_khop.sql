-- staging.don_vi_chua_khop: agency records whose commune could not be resolved to a current unit, counted
-- per source and value as received, with why (not found / ambiguous / missing) and the candidates of an
-- ambiguous one. Grain: (nguon, ma_xa_goc, ten_goc, trang_thai_khop_don_vi). Empty when all resolved.
with

ho_so as (
    select * from staging.ho_so
),

xa_hoi_so as (
    select * from staging.xa_hoi_so
),

unit_codes as (
    select khoa, ung_vien from staging.dm_don_vi_tra_cuu where loai_khoa = 'ma'
),

unmatched as (
    select 'ho_so' as nguon, ma_xa_goc, null::varchar as ten_goc, trang_thai_khop_don_vi
    from ho_so
    where ma_xa is null
    union all
    select 'chi_so_xa_hoi_so', ma_xa_goc, ten_xa, trang_thai_khop_don_vi
    from xa_hoi_so
    where ma_xa is null
),

final as (
    select
        unmatched.nguon,
        unmatched.ma_xa_goc,
        unmatched.ten_goc,
        unmatched.trang_thai_khop_don_vi,
        count(*)                                    as n_ban_ghi,
        any_value(unit_codes.ung_vien)              as ung_vien
    from unmatched
    left join unit_codes on unit_codes.khoa = unmatched.ma_xa_goc
    group by all
)

select * from final order by nguon, n_ban_ghi desc, ma_xa_goc
