"""Shared fixtures: an isolated TONGHOP_HOME per test, the demo tenant, and warehouse fingerprints."""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pipelines.config import load_tenant
from pipelines.settings import PROJECT_ROOT, TenantPaths

# Real components: throwaway PostgreSQL (`postgres_server`) and MariaDB (`mysql_server`) servers, a local
# HTTP server (`http_server`).
pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.mysql", "tests.fixtures.http",
                  "tests.fixtures.snapshots", "tests.fixtures.airflow_db"]

DEMO_TENANT = "ninh-binh"
DEMO_ROWS = 3_000  # enough dossiers for the model's 200-row floor and a realistic weekly chart
DEMO_LGSP_TOKEN = "test-lgsp-token"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data folder and a pseudonymisation key; nothing touches var/."""
    home = tmp_path / "home"
    monkeypatch.setenv("TONGHOP_HOME", str(home))
    monkeypatch.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")
    return home


@pytest.fixture(autouse=True)
def _forget_registered_secrets():
    """Secrets read at run time are masked process-wide from then on (`pipelines.redact.register_secret`): a
    test's token (e.g. 'expired') must not mask words in another test run later by the same worker."""
    from pipelines import redact

    before = set(redact._registered)
    yield
    redact._registered.clear()
    redact._registered.update(before)


@pytest.fixture(scope="session")
def demo_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo province's source files, generated once per session (deterministic)."""
    from pipelines.demo import generate

    out = tmp_path_factory.mktemp("demo_sources")
    generate(out, rows=DEMO_ROWS, seed=37)
    return out


@contextmanager
def serving_demo_portals(rows: int = DEMO_ROWS, token: str = DEMO_LGSP_TOKEN) -> Iterator[Any]:
    """The demo province's LGSP API and CKAN portal (`pipelines.demo.servers`) on a free port while inside."""
    from pipelines.demo.servers import serve_demo_portals

    server, thread = serve_demo_portals(0, rows=rows, seed=37, token=token)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def demo_portals():
    """The demo province's LGSP API and CKAN portal, once per session."""
    with serving_demo_portals() as server:
        yield server


def demo_env(mp: pytest.MonkeyPatch, home: Path, portals) -> None:
    """Point this test at `home` (a data folder built elsewhere, e.g. by a module fixture) and at `portals`."""
    from pipelines.demo.servers import PORT_ENV, TOKEN_ENV

    for k, v in {"TONGHOP_HOME": str(home), "TONGHOP_PII_KEY": "test-key-" + "0" * 40,
                 "GX_ANALYTICS_ENABLED": "false", PORT_ENV: str(portals.server_address[1]),
                 TOKEN_ENV: DEMO_LGSP_TOKEN}.items():
        mp.setenv(k, v)


def copy_demo_tenant(src_home: Path, dst_home: Path) -> TenantPaths:
    """The demo tenant's data folder (warehouse, snapshot, sources…) copied from one home into another."""
    shutil.copytree(src_home / DEMO_TENANT, dst_home / DEMO_TENANT)
    return TenantPaths(dst_home / DEMO_TENANT)


def step_metrics(report, step: str) -> dict:
    """The metrics one step of a run report recorded."""
    return next(r.metrics for r in report.results if r.step == step)


@pytest.fixture
def demo_tenant(demo_sources: Path, demo_portals, monkeypatch: pytest.MonkeyPatch):
    """The demo tenant with its source files copied into this test's home and its web services reachable."""
    from pipelines.demo.servers import PORT_ENV, TOKEN_ENV

    # The tenant's api/ckan locations read the port from the environment (subprocesses, e.g. Airflow, too).
    monkeypatch.setenv(PORT_ENV, str(demo_portals.server_address[1]))
    monkeypatch.setenv(TOKEN_ENV, DEMO_LGSP_TOKEN)
    cfg = load_tenant(DEMO_TENANT)
    paths = TenantPaths.for_tenant(cfg.tenant_id).ensure()
    for f in demo_sources.iterdir():
        shutil.copy(f, paths.sources / f.name)
    return cfg


def project_path(*parts: str) -> Path:
    return PROJECT_ROOT.joinpath(*parts)


def dags_module():
    """`dags/tonghop.py` imported as Airflow's DAG processor imports it (its folder on the path)."""
    sys.path.insert(0, str(project_path("dags")))
    try:
        import tonghop
    finally:
        sys.path.remove(str(project_path("dags")))
    return tonghop


def warehouse_state(path: Path) -> dict[str, tuple[int, int]]:
    """Every table of a DuckDB file as (row count, order-independent content hash): equal means unchanged."""
    import duckdb

    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_type = 'BASE TABLE' ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": con.execute(f'SELECT count(*), coalesce(sum(hash(x)), 0) FROM {s}."{t}" x').fetchone()
                for s, t in tables}
    finally:
        con.close()


def file_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
