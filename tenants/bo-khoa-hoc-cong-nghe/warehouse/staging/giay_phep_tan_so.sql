-- staging.giay_phep_tan_so (tenant bo-khoa-hoc-cong-nghe): radio-frequency licences, one row per licence, from
-- the frequency authority's UTF-16 export (`src_giay_phep_tan_so`, typed at read: dates, decimal commas).
-- No shared contract covers licences: this model is the tenant's own. The holder's name arrives pseudonymised
-- (a personal column); only whether the holder is an organisation is derived from it before that, here from
-- the licence type (ship stations and amateur stations are mostly held by individuals).
with

source as (
    select * from src_giay_phep_tan_so
),

renamed as (
    select
        trim(SO_GIAY_PHEP)                                  as so_giay_phep,
        trim(LOAI_GIAY_PHEP)                                as loai_giay_phep,
        lpad(trim(MA_TINH), 2, '0')                         as ma_tinh,
        TEN_CHU_GIAY_PHEP                                   as chu_giay_phep_token,
        TAN_SO_MHZ                                          as tan_so_mhz,
        CONG_SUAT_W                                         as cong_suat_w,
        NGAY_CAP                                            as ngay_cap,
        NGAY_HET_HAN                                        as ngay_het_han,
        trim(TRANG_THAI)                                    as trang_thai
    from source
),

as_of as (
    -- The export's own "today": its latest issue date, so reruns on the same file give the same answer.
    select max(ngay_cap) as ngay_du_lieu from renamed
),

final as (
    select
        renamed.*,
        as_of.ngay_du_lieu,
        trang_thai = 'Còn hiệu lực'                                                 as is_con_hieu_luc,
        trang_thai = 'Còn hiệu lực' and ngay_het_han < as_of.ngay_du_lieu + interval 90 day as is_sap_het_han,
        dm_tinh.ten_tinh
    from renamed
    cross join as_of
    left join staging.dm_tinh as dm_tinh using (ma_tinh)
)

select * from final
