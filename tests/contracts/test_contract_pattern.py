"""A contract column's `pattern` is checked on every source feeding it: a row whose reporting period is written
another way ('2025-Q2' for 'Quý 2/2025') is quarantined with the format named, the good rows go on, and the
core staging/marts build (before `pattern`, the mart's cast stopped the whole run with a DuckDB exception)."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.config import load_tenant
from pipelines.runner import run
from pipelines.settings import TenantPaths

pytestmark = pytest.mark.integration
TENANT = "thu-nghiem-ky"
YAML = f"""
tenant_id: {TENANT}
display_name: Tỉnh Thử nghiệm kỳ báo cáo
kind: province
admin_code: "97"
sources:
  - name: xhs
    kind: csv
    location: sources/xhs.csv
    options: {{types: {{ma_xa: VARCHAR}}}}
    primary_key: [ma_xa, ky_bao_cao]
    contract: chi_so_xa_hoi_so
    mapping: {{ma_xa: ma_xa, ten_xa: ten_xa, ky_bao_cao: ky_bao_cao, cap_quang_ho_gia_dinh: cap_quang}}
"""
CSV = ("ma_xa,ten_xa,ky_bao_cao,cap_quang\n"
       "00004,Phường Ba Đình,Quý 2/2025,81.5\n"
       "00008,Phường Ngọc Hà,Quý 2/2025,77.0\n"
       "00025,Phường Giảng Võ,2025-Q2,90.0\n")


def test_a_period_in_another_format_is_quarantined_and_the_rest_builds(tmp_path, monkeypatch):
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    (tenants / f"{TENANT}.yaml").write_text(YAML, encoding="utf-8")
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    cfg = load_tenant(TENANT)
    paths = TenantPaths.for_tenant(TENANT).ensure()
    (paths.sources / "xhs.csv").write_text(CSV, encoding="utf-8")

    report = run(cfg, steps=["extract_load", "validate", "transform", "publish"], run_id="r1")
    assert report.ok, report.summary()
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("SELECT n_rows_read, n_rows_promoted, n_rows_quarantined FROM meta.loads "
                           "WHERE source = 'xhs'").fetchall() == [(3, 2, 1)]
        [(failed,)] = con.execute("SELECT failed_expectations FROM meta.quarantine WHERE source = 'xhs'").fetchall()
        assert any("ky_bao_cao must match the contract's format" in f for f in failed), failed
        periods = con.execute("SELECT DISTINCT ma_xa, nam, quy FROM staging.xa_hoi_so ORDER BY 1").fetchall()
    assert periods == [("00004", 2025, 2), ("00008", 2025, 2)]
