"""Models trained from warehouse tables only; predictions go to `marts`, versions to `meta.models`.

Adding a model: a module in `models/` with `train(con, tenant, paths, run_id) -> ModelRun`, and one line in
REGISTRY. A tenant lists the models it runs under `models:` in its YAML.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig
    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.models")
TRAIN_DUCKDB_MEMORY = "1GB"

REGISTRY: dict[str, str] = {
    "overdue_risk": "models.overdue_risk",
    "inflow_forecast": "models.inflow_forecast",
    "staffing": "models.staffing",
    "anomalies": "models.anomalies",
}


def train_models(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths,
                 run_id: str) -> dict[str, str]:
    """Train every model the tenant lists; returns model name → version."""
    from models.registry import duckdb_memory_limit
    from pipelines.errors import ConfigError

    trained: dict[str, str] = {}
    # DuckDB keeps scanned pages cached up to its memory limit (80 % of RAM by default): at 5M dossiers
    # that alone took ~4 GB; capped, DuckDB spills and the training process stays under 2 GB.
    with duckdb_memory_limit(con, TRAIN_DUCKDB_MEMORY):
        for name in tenant.models:
            if name not in REGISTRY:
                raise ConfigError(f"tenant '{tenant.tenant_id}' lists model '{name}', which does not exist; "
                                  f"known models: {', '.join(sorted(REGISTRY))}")
            log.info("[%s] training model '%s'", tenant.tenant_id, name)
            result = importlib.import_module(REGISTRY[name]).train(con, tenant, paths, run_id)
            if result is not None:
                trained[name] = result.version
    return trained
