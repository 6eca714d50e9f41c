"""Shared fixtures: an isolated TONGHOP_HOME per test, the demo tenant, and warehouse fingerprints."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from pipelines.config import load_tenant
from pipelines.settings import PROJECT_ROOT, TenantPaths

DEMO_TENANT = "ninh-binh"
DEMO_ROWS = 3_000  # enough dossiers for the model's 200-row floor and a realistic weekly chart


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data folder and a pseudonymisation key; nothing touches var/."""
    home = tmp_path / "home"
    monkeypatch.setenv("TONGHOP_HOME", str(home))
    monkeypatch.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "false")
    return home


@pytest.fixture(scope="session")
def demo_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo province's source files, generated once per session (deterministic)."""
    from pipelines.demo import generate

    out = tmp_path_factory.mktemp("demo_sources")
    generate(out, rows=DEMO_ROWS, seed=37)
    return out


@pytest.fixture
def demo_tenant(demo_sources: Path):
    """The demo tenant with its source files copied into this test's home."""
    cfg = load_tenant(DEMO_TENANT)
    paths = TenantPaths.for_tenant(cfg.tenant_id).ensure()
    for f in demo_sources.iterdir():
        shutil.copy(f, paths.sources / f.name)
    return cfg


def project_path(*parts: str) -> Path:
    return PROJECT_ROOT.joinpath(*parts)


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
