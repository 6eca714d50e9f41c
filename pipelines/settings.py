"""Where things live: one mapping from environment to paths, not ifs scattered through the code.

`TONGHOP_HOME` (default `<project>/var`) holds every tenant's data folder:
`<home>/<tenant>/warehouse.duckdb` (the writer's file), `<home>/<tenant>/serving.duckdb` (the read-only
snapshot readers use), `<home>/<tenant>/sources/` (demo source files), `<home>/<tenant>/runs.jsonl`
(the run log, kept outside the warehouse so a failed run leaves the warehouse untouched).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TENANTS_DIR = Path(os.environ.get("TONGHOP_TENANTS_DIR", PROJECT_ROOT / "tenants"))
WAREHOUSE_SQL_DIR = PROJECT_ROOT / "warehouse"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


def tonghop_home() -> Path:
    return Path(os.environ.get("TONGHOP_HOME", PROJECT_ROOT / "var")).resolve()


def tenants_dir() -> Path:
    return Path(os.environ.get("TONGHOP_TENANTS_DIR", TENANTS_DIR)).resolve()


@dataclass(frozen=True)
class TenantPaths:
    """Files of one tenant; every writer and reader gets its paths from here."""

    root: Path

    @classmethod
    def for_tenant(cls, tenant_id: str, data_dir: str | None = None) -> TenantPaths:
        if data_dir:
            return cls(Path(os.path.expandvars(data_dir)).expanduser().resolve())
        return cls(tonghop_home() / tenant_id)

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def snapshot(self) -> Path:
        return self.root / "serving.duckdb"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def run_log(self) -> Path:
        return self.root / "runs.jsonl"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def validations(self) -> Path:
        return self.root / "validations"

    @property
    def data_docs(self) -> Path:
        """Great Expectations' Data Docs of this tenant's validations (static HTML, rebuilt by `validate`)."""
        return self.root / "data_docs"

    def ensure(self) -> TenantPaths:
        for p in (self.root, self.sources, self.models, self.validations):
            p.mkdir(parents=True, exist_ok=True)
        return self
