"""Fixtures of the access tests: the province's published snapshot (session fixture, shared with tests/apps)
installed in this test's home, and a small synthetic snapshot pair for the console's attack corpus."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT
from tests.fixtures.snapshots import MINISTRY


@pytest.fixture
def province_home(province_snapshot, _isolated_home):
    """The demo province's snapshot installed as this test's tenant `ninh-binh`."""
    paths = TenantPaths.for_tenant(DEMO_TENANT)
    paths.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(province_snapshot, paths.snapshot)
    return paths


def _small_snapshot(path, marker: str, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA marts; CREATE SCHEMA meta")
        con.execute(f"""CREATE TABLE marts.ho_so AS SELECT i AS id, 'xa_' || (i % 50) AS ma_xa,
                        (i % 7 = 0) AS qua_han, '{marker}' AS don_vi FROM range({rows}) t(i)""")
        con.execute("CREATE TABLE meta.snapshot AS SELECT 'run1' AS run_id, now() AS published_at")
    finally:
        con.close()


@pytest.fixture(scope="module")
def two_snapshots(tmp_path_factory):
    """(home, province snapshot, ministry snapshot): tiny DuckDB files shaped like the serving snapshots, the
    ministry's carrying a marker the province's console must never show."""
    home = tmp_path_factory.mktemp("console_home")
    province = TenantPaths(home / DEMO_TENANT).snapshot
    ministry = TenantPaths(home / MINISTRY).snapshot
    _small_snapshot(province, "tinh", 20_000)
    _small_snapshot(ministry, "BO-SECRET-MARKER", 100)
    return home, province, ministry
