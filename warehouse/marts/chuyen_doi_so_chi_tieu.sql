-- marts.chuyen_doi_so_chi_tieu: digital-transformation scorecard — every target (2023 programme, DTI 2025)
-- against the actual value of each year, with the change on the year before and whether it is met.
-- Grain: (ma_chi_tieu, nam). Actuals: the provincial report (staging.chi_so_cds_tinh), digital society
-- (staging.xa_hoi_so: commune average of each year's last reported quarter), dossiers (staging.ho_so:
-- share returned on time, by year of return). A target without data keeps one row with nam NULL.
with

targets as (
    select * from staging.chi_tieu_cds
),

report as (
    select ma_chi_tieu as ma_nguon, nam, gia_tri, trang_thai, ngay_ban_hanh
    from staging.chi_so_cds_tinh
),

digital_society as (
    select thanh_phan as ma_nguon, nam, round(avg(ty_le_pct), 2) as gia_tri
    from staging.xa_hoi_so
    where ma_xa is not null
    group by thanh_phan, nam, quy
    qualify quy = max(quy) over (partition by nam)
),

dossiers as (
    select 'ty_le_dung_han' as ma_nguon, year(ngay_tra) as nam,
           round(100.0 * count(*) filter (where is_on_time) / count(*), 2) as gia_tri
    from staging.ho_so
    where is_returned
    group by all
),

actuals as (
    select 'chi_so_cds_tinh' as nguon_thuc_te, ma_nguon, nam, gia_tri, trang_thai, ngay_ban_hanh from report
    union all by name
    select 'xa_hoi_so' as nguon_thuc_te, ma_nguon, nam, gia_tri from digital_society
    union all by name
    select 'ho_so' as nguon_thuc_te, ma_nguon, nam, gia_tri from dossiers
),

joined as (
    select
        targets.*,
        actuals.nam,
        actuals.gia_tri                 as gia_tri_thuc_te,
        actuals.trang_thai              as trang_thai_thuc_te,
        actuals.ngay_ban_hanh
    from targets
    left join actuals using (nguon_thuc_te, ma_nguon)
),

final as (
    select
        ma_chi_tieu,
        khung,
        nhom,
        ten_chi_tieu,
        ten_chi_tieu_en,
        don_vi,
        so_sanh,
        gia_tri_muc_tieu,
        trang_thai_muc_tieu,
        nam_muc_tieu,
        nam,
        gia_tri_thuc_te,
        trang_thai_thuc_te,
        ngay_ban_hanh,
        round(gia_tri_thuc_te - lag(gia_tri_thuc_te) over (partition by ma_chi_tieu order by nam), 2)
                                                                        as thay_doi_so_voi_nam_truoc,
        case
            when nam is null then null
            when so_sanh = 'trang_thai' then trang_thai_thuc_te = trang_thai_muc_tieu
            when so_sanh = '>' then gia_tri_thuc_te > gia_tri_muc_tieu
            when so_sanh = '>=' then gia_tri_thuc_te >= gia_tri_muc_tieu
        end                                                             as is_dat,
        nam = max(nam) over (partition by ma_chi_tieu)                  as is_nam_moi_nhat
    from joined
)

select * from final order by khung, nhom, ma_chi_tieu, nam
