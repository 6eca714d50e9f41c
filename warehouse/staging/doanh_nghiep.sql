-- staging.doanh_nghiep: one row per enterprise of the business registry (every source feeding the shared
-- contract `doanh_nghiep`, `nguon` naming it), typed, tax code validated, the representative's name and phone
-- pseudonymised (by the contract view), and the head office's free-text address resolved to the current (post-July-2025) commune:
--   * an address that still names a district ('…, xã X, huyện Y, tỉnh Z') is a pre-2025 address: the ward is
--     looked up among the legacy wards of that district (dm_xa_cu_moi), so equal ward names in two districts
--     are told apart;
--   * otherwise the commune name is looked up among the current communes of the tenant's province.
-- A ward divided among several communes, or a name that matches several, stays unresolved ('mo_ho'), and
-- one that matches nothing is 'khong_tim_thay': counted per value in the dia_chi_chua_khop table.
with

source as (
    -- every source feeding the contract (the demo: the current export and the pre-2008 TCVN3 one)
    select *, _source as nguon from contract_doanh_nghiep
),

legacy_wards as (
    select
        unit_name_key_bare(ten_xa_cu)                                           as khoa_xa,
        unit_name_key(regexp_replace(lower(ten_huyen_cu), '^(huyện|quận|thị xã|thành phố)\s+', '')) as khoa_huyen,
        ma_xa_moi
    from staging.dm_xa_cu_moi
    where ma_tinh_moi = getvariable('tonghop_ma_tinh')
),

legacy_keys as (
    select khoa_xa, khoa_huyen,
           case when count(distinct ma_xa_moi) = 1 then any_value(ma_xa_moi) end   as ma_xa,
           count(distinct ma_xa_moi)                                                as n_ung_vien
    from legacy_wards
    group by all
),

current_keys as (
    select khoa, ma_xa, n_ung_vien
    from staging.dm_don_vi_tra_cuu
    where loai_khoa = 'ten_rut_gon' and pham_vi = getvariable('tonghop_ma_tinh') and cach_khop = 'ten_hien_hanh'
),

parsed as (
    select
        *,
        -- the address part that starts with a commune kind (with or without diacritics), after a comma
        nullif(trim(regexp_extract(dia_chi_tru_so,
            '(^|,)\s*((xã|xa|phường|phuong|thị trấn|thi tran|đặc khu|dac khu)\s+[^,]+)', 2, 'i')), '')
                                                                                        as xa_trong_dia_chi,
        -- a district part before the province: only pre-2025 addresses have one
        nullif(trim(regexp_extract(dia_chi_tru_so,
            ',\s*(huyện|huyen|quận|quan|thị xã|thi xa|thành phố|thanh pho)\s+([^,]+),\s*(tỉnh|tinh|thành phố|thanh pho)',
            2, 'i')), '')                                                              as huyen_trong_dia_chi
    from source
),

matched as (
    select
        parsed.*,
        case when huyen_trong_dia_chi is not null then legacy.ma_xa else cur.ma_xa end          as ma_xa,
        case when huyen_trong_dia_chi is not null then legacy.n_ung_vien else cur.n_ung_vien end as n_ung_vien,
        case when huyen_trong_dia_chi is not null then 'dia_chi_cu' else 'dia_chi_hien_hanh' end  as cach_khop_don_vi
    from parsed
    left join legacy_keys legacy
        on legacy.khoa_xa = unit_name_key_bare(parsed.xa_trong_dia_chi)
       and legacy.khoa_huyen = unit_name_key(parsed.huyen_trong_dia_chi)
    left join current_keys cur
        on cur.khoa = unit_name_key_bare(parsed.xa_trong_dia_chi)
),

final as (
    select
        -- A tax code is public (the national registration portal shows it) once it is one: a value failing
        -- the check digit may be anything typed there, a phone number included, so only its pseudonym stays.
        case when is_mst_valid(ma_so_thue) then mst_normalize(ma_so_thue) end            as ma_so_thue,
        coalesce(is_mst_valid(ma_so_thue), false)                                         as is_ma_so_thue_valid,
        case when not coalesce(is_mst_valid(ma_so_thue), false) and ma_so_thue is not null
             then pseudonymize(coalesce(mst_normalize(ma_so_thue), ma_so_thue)) end       as ma_so_thue_sai_token,
        trim(ten_doanh_nghiep)                                 as ten_doanh_nghiep,
        trim(loai_hinh)                                        as loai_hinh,
        ma_nganh,
        ngay_dang_ky,
        von_dieu_le,
        dien_tich_tru_so_m2,
        trim(trang_thai)                                       as trang_thai,
        ho_ten_nguoi_dai_dien                                  as nguoi_dai_dien_token,
        so_dien_thoai_nguoi_dai_dien                           as dien_thoai_token,
        is_so_dien_thoai_nguoi_dai_dien_valid                  as is_phone_valid,
        xa_trong_dia_chi,
        huyen_trong_dia_chi,
        matched.ma_xa,
        xa.ma_tinh,
        cach_khop_don_vi,
        case when xa_trong_dia_chi is null then 'thieu'
             when matched.ma_xa is not null then 'da_khop'
             when n_ung_vien > 1 then 'mo_ho'
             else 'khong_tim_thay' end                         as trang_thai_khop_don_vi,
        nguon
    from matched
    left join staging.dm_xa xa on xa.ma_xa = matched.ma_xa
)

select * from final order by ma_so_thue, ma_so_thue_sai_token
