"""Rows the loader holds back for schema drift count as quarantined: rows read = promoted + quarantined."""

from __future__ import annotations

import sqlite3

import duckdb

from pipelines.config import SourceConfig, TenantConfig
from pipelines.runner import run
from pipelines.settings import TenantPaths


def test_drift_quarantined_rows_keep_the_promotion_invariant(_isolated_home):
    paths = TenantPaths.for_tenant("thu-nghiem").ensure()
    db = sqlite3.connect(paths.sources / "cu.sqlite")
    db.execute("CREATE TABLE ho_so (ma_ho_so TEXT, so_trang INTEGER, ngay_cap_nhat TEXT)")
    db.executemany("INSERT INTO ho_so VALUES (?, ?, ?)",
                   [(f"C{i:04d}", i, f"2025-06-{i:02d} 10:00:00") for i in range(1, 21)])
    db.commit()
    source = SourceConfig(name="cu", kind="sqlite", location="sources/cu.sqlite", options={"table": "ho_so"},
                          primary_key=["ma_ho_so"], incremental_column="ngay_cap_nhat", on_drift="quarantine")
    tenant = TenantConfig(tenant_id="thu-nghiem", display_name="Tỉnh Thử Nghiệm", kind="province",
                          admin_code="99", sources=[source])
    assert run(tenant, steps=["extract_load", "validate"], run_id="r1").ok
    # A page count typed as text no longer fits the column's BIGINT: that row is held back at load.
    db.execute("INSERT INTO ho_so VALUES ('C0021', '12 trang', '2025-06-21 10:00:00')")
    db.execute("INSERT INTO ho_so VALUES ('C0022', '7', '2025-06-22 10:00:00')")
    db.commit()
    db.close()
    report = run(tenant, steps=["extract_load", "validate"], run_id="r2")
    assert report.ok, report.summary()
    assert "rejected at load: 1" in report.summary() and "rows quarantined: 1" in report.summary()
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        loads = con.execute("SELECT run_id, n_rows_read, n_rows_loaded, n_rows_rejected, n_rows_promoted, "
                            "n_rows_quarantined, status FROM meta.loads ORDER BY run_id").fetchall()
    assert loads == [("r1", 20, 20, 0, 20, 0, "passed"), ("r2", 2, 1, 1, 1, 1, "passed")]
