"""Shared data contracts: the files, the static mapping checks, the contract views (union, typing, Vietnamese
parsing, pseudonymisation, run-time mismatch), baseline expectations and `inspect` on a small CSV source."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.config import SourceConfig, TenantConfig, load_tenant
from pipelines.contracts import (
    ContractMismatch,
    baseline_expectations,
    build_contract_views,
    check_mapping,
    check_tenant,
    contract,
    inspect_source,
    load_contract_file,
    load_contracts,
)
from pipelines.errors import ConfigError
from pipelines.quality.rowchecks import row_checks
from pipelines.settings import WAREHOUSE_SQL_DIR, TenantPaths

ISSUE_CONTRACTS = {"ho_so", "phan_anh", "diem_phuc_vu", "doanh_nghiep", "chi_so_xa_hoi_so", "chi_so_cds_tinh",
                   "can_bo"}


def _source(**kw) -> SourceConfig:
    base = {"name": "nguon", "kind": "csv", "location": "sources/x.csv", "primary_key": ["ma"]}
    return SourceConfig.model_validate(base | kw)


def _tenant(*sources: dict) -> TenantConfig:
    return TenantConfig.model_validate({"tenant_id": "thu-nghiem", "display_name": "Thử nghiệm", "kind": "province",
                                        "admin_code": "99", "sources": list(sources)})


def _session() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET VARIABLE tonghop_pii_key = 'k'")
    con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
    return con


# --------------------------------------------------------------------------- files


def test_contract_files_load_and_are_self_consistent():
    contracts = load_contracts()
    assert set(contracts) == ISSUE_CONTRACTS
    for c in contracts.values():
        names = c.column_names
        assert c.version >= 1 and c.description_vi and c.description_en
        assert set(c.key) <= set(names) and len(names) == len(set(names))
        for col in c.columns:
            assert col.description_vi and col.description_en, f"{c.name}.{col.name}"
            assert not col.personal or col.type == "VARCHAR"
    assert {col.name: col.personal for col in contract("ho_so").columns if col.personal} == {
        "so_cccd_nguoi_nop": "cccd", "so_dien_thoai_nguoi_nop": "phone", "ho_ten_nguoi_nop": "name"}


def test_a_broken_contract_file_is_refused_with_its_field(tmp_path):
    bad = tmp_path / "x.yml"
    bad.write_text("name: x\nversion: 1\ndescription: {vi: a, en: b}\nkey: [ma]\ncolumns:\n"
                   "  - {name: so, type: INTEGR, description: {vi: a, en: b}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"x.yml: column 'so': type 'INTEGR' is not a supported DuckDB type"):
        load_contract_file(bad)
    bad.write_text("name: x\nversion: 1\ndescription: {vi: a, en: b}\nkey: [ma]\ncolumns:\n"
                   "  - {name: so, type: INTEGER, description: {vi: a, en: b}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"field 'key' must list contract columns \(unknown: ma\)"):
        load_contract_file(bad)


def test_the_demo_tenant_maps_every_source_cleanly():
    cfg = load_tenant("ninh-binh")
    assert {s.name: s.contract for s in cfg.sources} == {
        "ho_so": "ho_so", "chi_so_xa_hoi_so": "chi_so_xa_hoi_so", "can_bo": "can_bo",
        "chi_so_cds_tinh": "chi_so_cds_tinh", "phan_anh_kien_nghi": "phan_anh", "diem_phuc_vu_cong": "diem_phuc_vu",
        "dang_ky_kinh_doanh": "doanh_nghiep", "dang_ky_kinh_doanh_cu": "doanh_nghiep"}
    assert check_tenant(cfg, "tenants/ninh-binh.yaml") == []


# --------------------------------------------------------------------------- static checks


def test_check_mapping_names_file_source_column_and_what_is_expected():
    f = "tenants/t.yaml"
    assert check_mapping(_source(contract="ho_so_x"), file=f) == [
        "tenants/t.yaml: source 'nguon': unknown contract 'ho_so_x' — expected one of can_bo, chi_so_cds_tinh, "
        "chi_so_xa_hoi_so, diem_phuc_vu, doanh_nghiep, ho_so, phan_anh (warehouse/contracts/*.yml)"]

    unknown = check_mapping(_source(contract="can_bo", primary_key=["co_quan"],
                                    mapping={"so_nguoi": "sl", "so_can_bo": "sl"}), file=f)
    assert unknown == ["tenants/t.yaml: source 'nguon': mapping names column 'so_nguoi', which contract 'can_bo' "
                       "does not have — expected one of co_quan, so_can_bo"]

    missing = check_mapping(_source(contract="can_bo", primary_key=["co_quan"]), file=f)
    assert missing == ["tenants/t.yaml: source 'nguon': required contract column 'can_bo.so_can_bo' (INTEGER) is "
                       "neither mapped nor a known source column — add `mapping: {so_can_bo: <source column or "
                       "expression>}` (or list it in options.types)"]

    impossible = check_mapping(_source(contract="ho_so", primary_key=["ma_ho_so"], mapping={"ngay_nhan": "da_nhan"},
                                       options={"types": {"da_nhan": "BOOLEAN"}}), file=f)
    assert impossible == ["tenants/t.yaml: source 'nguon': column 'da_nhan' is BOOLEAN (options.types) but contract "
                          "column 'ho_so.ngay_nhan' is DATE — no BOOLEAN value can become DATE: map another column "
                          "or an expression"]
    by_name = check_mapping(_source(contract="ho_so", primary_key=["ma_ho_so"],
                                    options={"types": {"ngay_nhan": "INTEGER"}}), file=f)
    assert len(by_name) == 1 and "column 'ngay_nhan' is INTEGER (options.types) but contract column " \
                                 "'ho_so.ngay_nhan' is DATE" in by_name[0]

    unsafe = check_mapping(_source(contract="can_bo", primary_key=["co_quan"],
                                   mapping={"so_can_bo": "length(getvariable('tonghop_pii_key'))"}), file=f)
    assert unsafe == ["tenants/t.yaml: source 'nguon': mapping of 'can_bo.so_can_bo' "
                      "(\"length(getvariable('tonghop_pii_key'))\") has function 'getvariable' that a mapping may not call "
                      "(allowed: text, number and date functions, vn_date, vn_number — the list is in "
                      "docs/contracts.md)"]
    query = check_mapping(_source(contract="can_bo", primary_key=["co_quan"],
                                  mapping={"so_can_bo": "(select count(*) from raw.ho_so)"}), file=f)
    assert any("'select' (a mapping is an expression over the source's columns, not a query)" in p for p in query)
    assert check_mapping(_source(contract="can_bo", primary_key=["co_quan"],
                                 mapping={"so_can_bo": "vn_number(so_luong)"})) == []


def test_validate_config_prints_each_mapping_problem_and_fails(tmp_path, capsys):
    from pipelines.cli import main

    text = (WAREHOUSE_SQL_DIR.parent / "tenants" / "ninh-binh.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "ninh-binh.yaml"
    bad.write_text(text.replace("ten_xa: ten_xa_phuong", "ten_phuong: ten_xa_phuong"), encoding="utf-8")
    assert main(["validate-config", str(bad)]) != 0
    err = capsys.readouterr().err
    assert f"{bad}: source 'chi_so_xa_hoi_so': mapping names column 'ten_phuong', which contract " \
           "'chi_so_xa_hoi_so' does not have" in err


# --------------------------------------------------------------------------- contract views


def test_two_sources_feed_one_contract_with_their_names_kept():
    con = _session()
    con.execute("CREATE TEMP TABLE src_so_noi_vu AS SELECT * FROM (VALUES ('UBND xã A', 3), ('Sở Y tế', 5)) "
                "t(co_quan, so_can_bo)")
    con.execute("CREATE TEMP TABLE src_huyen_cu AS SELECT * FROM (VALUES ('UBND xã B', '1.204')) t(don_vi, so_luong)")
    tenant = _tenant({"name": "so_noi_vu", "kind": "csv", "location": "a.csv", "primary_key": ["co_quan"],
                      "contract": "can_bo"},
                     {"name": "huyen_cu", "kind": "csv", "location": "b.csv", "primary_key": ["don_vi"],
                      "contract": "can_bo", "mapping": {"co_quan": "don_vi", "so_can_bo": "vn_number(so_luong)"}})
    assert build_contract_views(con, tenant, {"so_noi_vu", "huyen_cu"}) == {"can_bo"}
    rows = con.execute("SELECT co_quan, so_can_bo, _source FROM contract_can_bo ORDER BY co_quan").fetchall()
    assert rows == [("Sở Y tế", 5, "so_noi_vu"), ("UBND xã A", 3, "so_noi_vu"), ("UBND xã B", 1204, "huyen_cu")]
    assert con.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'contract_can_bo' "
                       "AND column_name = 'so_can_bo'").fetchone() == ("INTEGER",)


def test_vietnamese_dates_and_numbers_map_and_absent_columns_are_null():
    con = _session()
    con.execute("CREATE TEMP TABLE src_bc AS SELECT * FROM (VALUES ('DTI_01', 2024, '1.234,5', '15/06/2023'), "
                "('DTI_02', 2025, '', '05-05-2025')) t(ma, nam_bc, gia_tri, ngay)")
    tenant = _tenant({"name": "bc", "kind": "csv", "location": "a.csv", "primary_key": ["ma"],
                      "contract": "chi_so_cds_tinh", "mapping": {
                          "ma_chi_tieu": "ma", "nam": "nam_bc", "gia_tri": "vn_number(gia_tri)",
                          "ngay_ban_hanh": "vn_date(ngay)"}})
    build_contract_views(con, tenant, {"bc"})
    rows = con.execute("SELECT ma_chi_tieu, nam, gia_tri, ngay_ban_hanh::VARCHAR, trang_thai, so_van_ban "
                       "FROM contract_chi_so_cds_tinh ORDER BY 1").fetchall()
    assert rows == [("DTI_01", 2024, 1234.5, "2023-06-15", None, None), ("DTI_02", 2025, None, "2025-05-05", None, None)]


def test_contract_personal_columns_are_pseudonymised_even_when_the_tenant_forgot_them():
    con = _session()
    con.execute("CREATE TEMP TABLE src_mc AS SELECT * FROM (VALUES ('H1', DATE '2025-01-02', '037 085 012 345', "
                "'+84 912 345 678')) t(ma_ho_so, ngay_nhan, cmnd, dt)")
    tenant = _tenant({"name": "mc", "kind": "csv", "location": "a.csv", "primary_key": ["ma_ho_so"],
                      "contract": "ho_so", "mapping": {"so_cccd_nguoi_nop": "cmnd", "so_dien_thoai_nguoi_nop": "dt"}})
    build_contract_views(con, tenant, {"mc"})
    cccd, phone, cccd_ok, phone_ok = con.execute(
        "SELECT so_cccd_nguoi_nop, so_dien_thoai_nguoi_nop, is_so_cccd_nguoi_nop_valid, "
        "is_so_dien_thoai_nguoi_nop_valid FROM contract_ho_so").fetchone()
    assert cccd.startswith("ps_") and phone.startswith("ps_") and cccd_ok and phone_ok
    # the same person written another way gets the same token (normalised first)
    assert cccd == con.execute("SELECT pseudonymize(cccd_normalize('037085012345'))").fetchone()[0]
    assert phone == con.execute("SELECT pseudonymize(phone_normalize('0912345678'))").fetchone()[0]


def test_data_that_does_not_fit_fails_with_one_line_not_a_duckdb_error():
    con = _session()
    con.execute("CREATE TEMP TABLE src_cb AS SELECT * FROM (VALUES ('A', '3'), ('B', 'ba'), ('C', 'bốn')) "
                "t(co_quan, so_can_bo)")
    tenant = _tenant({"name": "cb", "kind": "csv", "location": "a.csv", "primary_key": ["co_quan"],
                      "contract": "can_bo"})
    with pytest.raises(ContractMismatch) as info:
        build_contract_views(con, tenant, {"cb"})
    assert str(info.value) == (
        "data does not fit its contract: source 'cb': 2 of 3 values of contract column 'can_bo.so_can_bo' (from "
        "\"so_can_bo\") do not convert to INTEGER, e.g. 'ba' — map it with a parsing expression (vn_date(x), "
        "vn_number(x), try_strptime(x, '<format>')) or fix the data")

    con.execute("CREATE TEMP TABLE src_cb2 AS SELECT 'A' AS don_vi, 3 AS so_can_bo")
    tenant = _tenant({"name": "cb2", "kind": "csv", "location": "a.csv", "primary_key": ["don_vi"],
                      "contract": "can_bo", "mapping": {"co_quan": "ten_don_vi"}})
    with pytest.raises(ContractMismatch, match=r"source 'cb2': mapping co_quan: ten_don_vi names a column the "
                                               r"source does not have \(it has: don_vi, so_can_bo\)"):
        build_contract_views(con, tenant, {"cb2"})
    tenant = _tenant({"name": "cb2", "kind": "csv", "location": "a.csv", "primary_key": ["don_vi"],
                      "contract": "can_bo", "mapping": {"co_quan": "upper(ten_don_vi)"}})
    with pytest.raises(ContractMismatch, match=r"mapping of contract column 'can_bo.co_quan' \(\(upper\(ten_don_vi\)"
                                               r"\)\) does not work on the source's columns \(.*ten_don_vi"):
        build_contract_views(con, tenant, {"cb2"})
    assert not con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'contract_can_bo'").fetchone()[0]


# --------------------------------------------------------------------------- baseline expectations


def test_baseline_expectations_catch_what_the_contract_says():
    c = contract("ho_so")
    source = _source(contract="ho_so", primary_key=["ma_ho_so"], mapping={"so_cccd_nguoi_nop": "so_cccd",
                                                                          "so_dien_thoai_nguoi_nop": "sdt"})
    exps = baseline_expectations(c, source, {"ngay_nhan": "VARCHAR"})
    kinds = {(e["type"], e["kwargs"].get("column")) for e in exps}
    assert {("expect_column_values_to_not_be_null", "ma_ho_so"), ("expect_column_values_to_not_be_null", "ngay_nhan"),
            ("expect_column_values_to_be_unique", "ma_ho_so"), ("expect_column_values_to_be_in_set", "trang_thai"),
            ("expect_column_values_to_match_regex", "so_cccd"), ("expect_column_values_to_match_regex", "sdt"),
            ("expect_column_values_to_match_regex", "ngay_nhan")} <= kinds
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES "
                "('H1', '2025-01-02', 'da_tra', '037085012345', '0912345678', 'x'),"
                "('H1', NULL, 'xong', '12345', '0912345678', 'x'),"
                "('H3', 'hôm qua', 'dang_xu_ly', NULL, '12', 'x')) "
                "v(ma_ho_so, ngay_nhan, trang_thai, so_cccd, sdt, linh_vuc)")
    failing = {}
    for check in row_checks(exps):
        failing[(check.expectation_type, check.columns)] = con.execute(
            f"SELECT count(*) FROM (SELECT ({check.predicate}) AS bad FROM t) WHERE bad").fetchone()[0]
    assert failing[("expect_column_values_to_not_be_null", ("ngay_nhan",))] == 1
    assert failing[("expect_column_values_to_be_unique", ("ma_ho_so",))] == 2
    assert failing[("expect_column_values_to_be_in_set", ("trang_thai",))] == 1
    assert failing[("expect_column_values_to_match_regex", ("so_cccd",))] == 1
    assert failing[("expect_column_values_to_match_regex", ("sdt",))] == 1
    assert failing[("expect_column_values_to_match_regex", ("ngay_nhan",))] == 1
    assert all(e["severity"] in ("block", "warn") and e["meta"]["contract"] == "ho_so" for e in exps)


# --------------------------------------------------------------------------- inspect


def test_inspect_prints_the_mapping_of_a_small_csv_source():
    tenant = _tenant({"name": "can_bo_huyen", "kind": "csv", "location": "sources/can_bo.csv",
                      "primary_key": ["don_vi"], "contract": "can_bo",
                      "mapping": {"co_quan": "don_vi", "so_can_bo": "so_nguoi"}})
    paths = TenantPaths.for_tenant(tenant.tenant_id).ensure()
    (paths.sources / "can_bo.csv").write_text("don_vi,so_nguoi,ghi_chu\nUBND xã A,3,\nSở Y tế,năm,x\n",
                                              encoding="utf-8")
    out = inspect_source(tenant, tenant.sources[0])
    lines = out.splitlines()
    assert lines[0] == "source 'can_bo_huyen' (csv): 2 sample rows, 3 columns"
    assert any(line.split() == ["don_vi", "VARCHAR"] for line in lines)
    assert "contract 'can_bo' v1:" in lines
    co_quan = next(line for line in lines if line.startswith("co_quan "))
    so_can_bo = next(line for line in lines if line.startswith("so_can_bo "))
    assert co_quan.split() == ["co_quan", "VARCHAR", "yes", "don_vi", "mapped", "2", "values"]
    assert so_can_bo.split()[:6] == ["so_can_bo", "INTEGER", "yes", "so_nguoi", "CAST", "FAILS"]
    assert so_can_bo.endswith("2 values, 1 do not convert")
    assert lines[-1] == "source columns not used by the contract: ghi_chu"
