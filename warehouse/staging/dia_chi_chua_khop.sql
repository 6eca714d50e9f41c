-- staging.dia_chi_chua_khop: business-registry addresses whose commune could not be resolved to a current
-- unit, counted per source and (commune, district) as written, with why (ambiguous / not found / missing).
-- Grain: (nguon, xa_trong_dia_chi, huyen_trong_dia_chi, trang_thai_khop_don_vi). Empty when all resolved.
with

doanh_nghiep as (
    select * from staging.doanh_nghiep
),

final as (
    select
        nguon,
        xa_trong_dia_chi,
        huyen_trong_dia_chi,
        trang_thai_khop_don_vi,
        count(*)                as n_ban_ghi
    from doanh_nghiep
    where ma_xa is null
    group by all
)

select * from final order by nguon, n_ban_ghi desc, xa_trong_dia_chi
