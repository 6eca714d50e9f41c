"""SQL models on tiny given tables → expected rows (dbt-style unit tests, in-memory DuckDB)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from pipelines.config import TenantConfig
from pipelines.contracts import build_contract_views, load_contracts
from tests.warehouse.sqlharness import build, connect, contract_columns, given, given_contract, rows

LOOKUP_COLUMNS = ("loai_khoa VARCHAR, pham_vi VARCHAR, khoa VARCHAR, ma_xa VARCHAR, cach_khop VARCHAR, "
                  "n_ung_vien BIGINT, ung_vien VARCHAR[], ma_tinh VARCHAR")
LOOKUP = [  # a current code, a retired code that went whole, a divided one
    ("ma", "*", "14464", "14464", "ma_hien_hanh", 1, ["14464"], "37"),
    ("ma", "*", "13294", "13291", "ma_cu", 1, ["13291"], "37"),
    ("ma", "*", "13354", None, "ma_cu", 2, ["13363", "13366"], None),
    ("ma", "*", "00070", "00070", "ma_hien_hanh", 1, ["00070"], "01"),
]


def _dossier(code, ma_xa, received, due, returned, updated="2025-03-31 10:00:00"):
    """One row of contract_ho_so (the applicant's CCCD and phone arrive pseudonymised, flags from the raw)."""
    return {"ma_ho_so": code, "ma_thu_tuc": "1.001193", "linh_vuc": "Hộ tịch", "co_quan": "UBND xã Gia Viễn",
            "ma_xa": ma_xa, "ngay_nhan": date.fromisoformat(received), "ngay_hen_tra": date.fromisoformat(due),
            "ngay_tra": date.fromisoformat(returned) if returned else None,
            "trang_thai": "da_tra" if returned else "dang_xu_ly",
            "so_cccd_nguoi_nop": "ps_x", "is_so_cccd_nguoi_nop_valid": True,
            "so_dien_thoai_nguoi_nop": "ps_y", "is_so_dien_thoai_nguoi_nop_valid": True,
            "ngay_cap_nhat": datetime.fromisoformat(updated)}


@pytest.mark.parametrize("name", sorted(load_contracts()))
def test_harness_seeds_the_shape_the_contract_view_has(name):
    """given_contract's table has exactly the columns and types of the real contract_<name> view."""
    con = connect()
    c = load_contracts()[name]
    given(con, "src_nguon", ", ".join(f'"{col.name}" {col.type}' for col in c.columns), [])  # same names: by name
    tenant = TenantConfig.model_validate({
        "tenant_id": "thu-nghiem", "display_name": "Thử nghiệm", "kind": "province", "admin_code": "99",
        "sources": [{"name": "nguon", "kind": "csv", "location": "a.csv", "primary_key": list(c.key),
                     "contract": name}]})
    assert build_contract_views(con, tenant, {"nguon"}) == {name}
    real = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE contract_{name})").fetchall()
    assert contract_columns(name) == real
    con.execute(f"DROP VIEW contract_{name}")
    given_contract(con, name, [])
    assert con.execute(f"SELECT column_name, column_type FROM (DESCRIBE contract_{name})").fetchall() == real


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
    given_contract(con, "ho_so", [_dossier("H1", ma_xa, "2025-03-03", "2025-03-05", None)])
    given(con, "staging.dm_don_vi_tra_cuu", LOOKUP_COLUMNS, LOOKUP)
    build(con, "staging.ho_so")
    (row,) = rows(con, "SELECT ma_xa, ma_tinh, cach_khop_don_vi, trang_thai_khop_don_vi FROM staging.ho_so")
    assert tuple(row.values()) == expected


def _staging_ho_so(con, dossiers):
    given_contract(con, "ho_so", dossiers)
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
    build(con, "marts.ho_so_ma_thu_tuc_tuan")  # the weekly procedures mart is summed from the per-code one
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
    firm = {"ma_so_thue": "0600054254", "ten_doanh_nghiep": "Công ty TNHH A", "loai_hinh": "Công ty TNHH",
            "ma_nganh": "1079", "ngay_dang_ky": date(2018, 12, 24), "von_dieu_le": 1_800_000_000,
            "dien_tich_tru_so_m2": 259.2, "dia_chi_tru_so": dia_chi, "ho_ten_nguoi_dai_dien": "ps_x",
            "so_dien_thoai_nguoi_dai_dien": "ps_y", "is_so_dien_thoai_nguoi_dai_dien_valid": True,
            "trang_thai": "Đang hoạt động"}
    given_contract(con, "doanh_nghiep", [firm], source="dang_ky_kinh_doanh")
    given(con, "staging.dm_xa", XA_COLUMNS, [("14401", "Xã Gia Vân", "37"), ("13750", "Xã Yên Đồng", "37"),
                                             ("14677", "Xã Yên Mô", "37")])
    given(con, "staging.dm_xa_cu_moi", CU_MOI_COLUMNS, [
        ("Xã Yên Phong", "Huyện Ý Yên", "13750", "37"), ("Xã Yên Phong", "Huyện Yên Mô", "14677", "37"),
        ("Phường Tiên Nội", "Thị xã Duy Tiên", "13500", "37"), ("Phường Tiên Nội", "Thị xã Duy Tiên", "13501", "37")])
    given(con, "staging.dm_don_vi_tra_cuu", LOOKUP_COLUMNS, [
        ("ten_rut_gon", "37", "giavan", "14401", "ten_hien_hanh", 1, ["14401"], "37")])
    build(con, "staging.doanh_nghiep")
    (row,) = rows(con, "SELECT ma_xa, ma_tinh, cach_khop_don_vi, trang_thai_khop_don_vi, ma_so_thue, "
                       "is_ma_so_thue_valid, nguoi_dai_dien_token, nguon FROM staging.doanh_nghiep")
    assert tuple(row.values())[:4] == expected
    assert row["nguon"] == "dang_ky_kinh_doanh"  # the feeding source, from the contract view's _source
    # 0600054254 passes the tax code's check digit; the representative arrives pseudonymised
    assert (row["ma_so_thue"], row["is_ma_so_thue_valid"], row["nguoi_dai_dien_token"]) == ("0600054254", True, "ps_x")
    build(con, "staging.dia_chi_chua_khop")
    listed = rows(con, "SELECT trang_thai_khop_don_vi, n_ban_ghi FROM staging.dia_chi_chua_khop")
    assert listed == ([] if expected[3] == "da_khop" else [{"trang_thai_khop_don_vi": expected[3], "n_ban_ghi": 1}])
