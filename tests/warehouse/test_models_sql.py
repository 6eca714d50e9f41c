"""SQL models on tiny given tables → expected rows (dbt-style unit tests, in-memory DuckDB)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from tests.warehouse.sqlharness import build, connect, given, rows

HO_SO_COLUMNS = ("ma_ho_so VARCHAR, ma_thu_tuc VARCHAR, linh_vuc VARCHAR, co_quan VARCHAR, ma_xa VARCHAR, "
                 "ngay_nhan DATE, ngay_hen_tra DATE, ngay_tra DATE, trang_thai VARCHAR, so_cccd VARCHAR, "
                 "so_dien_thoai VARCHAR, is_so_cccd_valid BOOLEAN, is_so_dien_thoai_valid BOOLEAN, "
                 "ngay_cap_nhat TIMESTAMP")
LOOKUP_COLUMNS = ("loai_khoa VARCHAR, pham_vi VARCHAR, khoa VARCHAR, ma_xa VARCHAR, cach_khop VARCHAR, "
                  "n_ung_vien BIGINT, ung_vien VARCHAR[], ma_tinh VARCHAR")
LOOKUP = [  # a current code, a retired code that went whole, a divided one
    ("ma", "*", "14464", "14464", "ma_hien_hanh", 1, ["14464"], "37"),
    ("ma", "*", "13294", "13291", "ma_cu", 1, ["13291"], "37"),
    ("ma", "*", "13354", None, "ma_cu", 2, ["13363", "13366"], None),
    ("ma", "*", "00070", "00070", "ma_hien_hanh", 1, ["00070"], "01"),
]


def _dossier(code, ma_xa, received, due, returned, updated="2025-03-31 10:00:00"):
    return (code, "1.001193", "Hộ tịch", "UBND xã Gia Viễn", ma_xa, date.fromisoformat(received),
            date.fromisoformat(due), date.fromisoformat(returned) if returned else None,
            "da_tra" if returned else "dang_xu_ly", "ps_x", "ps_y", True, True, datetime.fromisoformat(updated))


@pytest.mark.parametrize(("ma_xa", "expected"), [
    ("14464", ("14464", "37", "ma_hien_hanh", "da_khop")),    # in force: itself
    ("13294", ("13291", "37", "ma_cu", "da_khop")),           # retired, went whole into 13291
    ("13354", (None, None, "ma_cu", "mo_ho")),               # divided between two communes: not guessed
    ("99999", (None, None, None, "khong_tim_thay")),         # no such code, current or legacy
    ("70", ("00070", "01", "ma_hien_hanh", "da_khop")),      # leading zeros lost in a spreadsheet
    (" ", (None, None, None, "thieu")),                      # blank: missing, not unknown
])
def test_staging_ho_so_normalises_the_commune(ma_xa, expected):
    con = connect()
    given(con, "src_ho_so", HO_SO_COLUMNS, [_dossier("H1", ma_xa, "2025-03-03", "2025-03-05", None)])
    given(con, "staging.dm_don_vi_tra_cuu", LOOKUP_COLUMNS, LOOKUP)
    build(con, "staging.ho_so")
    (row,) = rows(con, "SELECT ma_xa, ma_tinh, cach_khop_don_vi, trang_thai_khop_don_vi FROM staging.ho_so")
    assert tuple(row.values()) == expected


def _staging_ho_so(con, dossiers):
    given(con, "src_ho_so", HO_SO_COLUMNS, dossiers)
    given(con, "staging.dm_don_vi_tra_cuu", LOOKUP_COLUMNS, LOOKUP)
    build(con, "staging.ho_so")


def test_backlog_counts_open_dossiers_at_each_week_end():
    con = connect()
    _staging_ho_so(con, [
        # received Mon 3 Mar, due 5 Mar, returned Tue 11 Mar: open (and overdue) at the end of week 1 only
        _dossier("A", "14464", "2025-03-03", "2025-03-05", "2025-03-11", updated="2025-03-11 10:00:00"),
        # received Wed 12 Mar, due 14 Mar, still open; its update on 19 Mar is the data's "today"
        _dossier("B", "14464", "2025-03-12", "2025-03-14", None, updated="2025-03-19 09:00:00"),
    ])
    build(con, "marts.ho_so_ton_dong_tuan")
    got = rows(con, "SELECT tuan_ket_thuc, n_ton_dong, n_ton_dong_qua_han FROM marts.ho_so_ton_dong_tuan")
    # week 1 ends Sun 9 Mar: A open, due 5 Mar, so overdue then; week 2 ends Sun 16 Mar: A returned on the
    # 11th, B open and past its 14 Mar due date; week 3 is cut at data_as_of (Wed 19 Mar): B still open.
    assert got == [
        {"tuan_ket_thuc": date(2025, 3, 9), "n_ton_dong": 1, "n_ton_dong_qua_han": 1},
        {"tuan_ket_thuc": date(2025, 3, 16), "n_ton_dong": 1, "n_ton_dong_qua_han": 1},
        {"tuan_ket_thuc": date(2025, 3, 19), "n_ton_dong": 1, "n_ton_dong_qua_han": 1},
    ]


def test_weekly_procedures_count_receipts_and_returns_in_their_own_weeks():
    con = connect()
    given(con, "staging.dm_xa", "ma_xa VARCHAR, ten_xa VARCHAR", [("14464", "Xã Gia Viễn"), ("13291", "Phường X")])
    _staging_ho_so(con, [
        _dossier("A", "14464", "2025-03-03", "2025-03-05", "2025-03-04"),   # week 1: received and returned on time
        _dossier("B", "14464", "2025-03-04", "2025-03-05", "2025-03-11"),   # received week 1, returned late in week 2
        _dossier("C", "13294", "2025-03-05", "2025-03-20", None),           # legacy code: counted under 13291, pending
    ])
    build(con, "marts.ho_so_thu_tuc_tuan")
    got = {(r["tuan_bat_dau"].isoformat(), r["ma_xa"]): (r["n_tiep_nhan"], r["n_da_tra"], r["n_tra_dung_han"],
                                                         r["n_tra_qua_han"], r["n_dang_xu_ly"])
           for r in rows(con, "SELECT * FROM marts.ho_so_thu_tuc_tuan")}
    assert got == {
        ("2025-03-03", "14464"): (2, 1, 1, 0, 0),  # A and B received; A returned (on time) the same week
        ("2025-03-10", "14464"): (0, 1, 0, 1, 0),  # B's late return counts in the week it happened
        ("2025-03-03", "13291"): (1, 0, 0, 0, 1),  # C, normalised from its retired code, still pending
    }


@pytest.mark.parametrize(("days", "p50", "p90"), [
    ([1, 2, 3, 4, 10], 3, 10),   # quantile_disc: the 3rd of 5 is the median, the 5th covers 90 %
    ([5], 5, 5),                 # one dossier is its own distribution
])
def test_processing_time_percentiles(days, p50, p90):
    con = connect()
    dossiers = [_dossier(f"D{i}", "14464", "2025-03-03", "2025-04-30", f"2025-03-{3 + d:02d}")
                for i, d in enumerate(days)]
    _staging_ho_so(con, dossiers)
    build(con, "marts.ho_so_thoi_gian_xu_ly")
    (row,) = rows(con, "SELECT n_da_tra, p50_days, p90_days, max_days FROM marts.ho_so_thoi_gian_xu_ly")
    assert row == {"n_da_tra": len(days), "p50_days": p50, "p90_days": p90, "max_days": max(days)}


# --- staging.doanh_nghiep: free-text addresses, old and new ------------------------------------------------

DN_COLUMNS = ("ma_so_thue VARCHAR, ten_doanh_nghiep VARCHAR, loai_hinh VARCHAR, ma_nganh VARCHAR, ngay_dang_ky DATE, "
              "von_dieu_le BIGINT, dien_tich_tru_so_m2 DOUBLE, dia_chi VARCHAR, ho_ten_nguoi_dai_dien VARCHAR, "
              "so_dien_thoai VARCHAR, is_so_dien_thoai_valid BOOLEAN, trang_thai VARCHAR")
XA_COLUMNS = "ma_xa VARCHAR, ten_xa VARCHAR, ma_tinh VARCHAR"
CU_MOI_COLUMNS = "ten_xa_cu VARCHAR, ten_huyen_cu VARCHAR, ma_xa_moi VARCHAR, ma_tinh_moi VARCHAR"


@pytest.mark.parametrize(("dia_chi", "expected"), [
    # a current address: the commune's current name, with or without diacritics
    ("Thôn 4, xã Gia Vân, tỉnh Ninh Bình", ("14401", "37", "dia_chi_hien_hanh", "da_khop")),
    ("Thon 4, xa Gia Van, tinh Ninh Binh", ("14401", "37", "dia_chi_hien_hanh", "da_khop")),
    # a pre-2025 address: the ward within its old district; 'Yên Phong' exists in two old districts
    ("Xóm 2, xã Yên Phong, huyện Ý Yên, tỉnh Nam Định", ("13750", "37", "dia_chi_cu", "da_khop")),
    ("Xóm 9, xã Yên Phong, huyện Yên Mô, tỉnh Ninh Bình", ("14677", "37", "dia_chi_cu", "da_khop")),
    # a ward divided between two communes: listed, not guessed
    ("Số 3, phường Tiên Nội, thị xã Duy Tiên, tỉnh Hà Nam", (None, None, "dia_chi_cu", "mo_ho")),
    ("Thôn 1, xã Không Có, tỉnh Ninh Bình", (None, None, "dia_chi_hien_hanh", "khong_tim_thay")),
    ("Ninh Bình", (None, None, "dia_chi_hien_hanh", "thieu")),
])
def test_staging_doanh_nghiep_resolves_old_and_new_addresses(dia_chi, expected):
    con = connect()
    firm = ("0600054254", "Công ty TNHH A", "Công ty TNHH", "1079", date(2018, 12, 24), 1_800_000_000, 259.2,
            dia_chi, "ps_x", "ps_y", True, "Đang hoạt động")
    given(con, "src_dang_ky_kinh_doanh", DN_COLUMNS, [firm])
    given(con, "src_dang_ky_kinh_doanh_cu", DN_COLUMNS, [])
    given(con, "staging.dm_xa", XA_COLUMNS, [("14401", "Xã Gia Vân", "37"), ("13750", "Xã Yên Đồng", "37"),
                                             ("14677", "Xã Yên Mô", "37")])
    given(con, "staging.dm_xa_cu_moi", CU_MOI_COLUMNS, [
        ("Xã Yên Phong", "Huyện Ý Yên", "13750", "37"), ("Xã Yên Phong", "Huyện Yên Mô", "14677", "37"),
        ("Phường Tiên Nội", "Thị xã Duy Tiên", "13500", "37"), ("Phường Tiên Nội", "Thị xã Duy Tiên", "13501", "37")])
    given(con, "staging.dm_don_vi_tra_cuu", LOOKUP_COLUMNS, [
        ("ten_rut_gon", "37", "giavan", "14401", "ten_hien_hanh", 1, ["14401"], "37")])
    build(con, "staging.doanh_nghiep")
    (row,) = rows(con, "SELECT ma_xa, ma_tinh, cach_khop_don_vi, trang_thai_khop_don_vi, ma_so_thue, "
                       "is_ma_so_thue_valid, nguoi_dai_dien_token FROM staging.doanh_nghiep")
    assert tuple(row.values())[:4] == expected
    # 0600054254 passes the tax code's check digit; the representative arrives pseudonymised
    assert (row["ma_so_thue"], row["is_ma_so_thue_valid"], row["nguoi_dai_dien_token"]) == ("0600054254", True, "ps_x")
    build(con, "staging.dia_chi_chua_khop")
    listed = rows(con, "SELECT trang_thai_khop_don_vi, n_ban_ghi FROM staging.dia_chi_chua_khop")
    assert listed == ([] if expected[3] == "da_khop" else [{"trang_thai_khop_don_vi": expected[3], "n_ban_ghi": 1}])
