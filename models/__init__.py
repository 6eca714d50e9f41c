"""Models trained from warehouse tables only; predictions go to `marts`, versions to `meta.models`.

Adding a model: a module in `models/` with `train(con, tenant, paths, run_id) -> ModelRun`, and one line in
REGISTRY. A tenant lists the models it runs under `models:` in its YAML. A model whose `train` reads another
model's output declares it in its module (`REQUIRES_MODELS = ("inflow_forecast",)`): the models then train in
dependency order (topological, the tenant's listed order among equals), whatever order the tenant lists them in.

One model failing never stops the others: its exception is caught and reported as one line (what failed and
why) in the train step's result and the run summary; a model whose dependency failed or produced nothing is
skipped with the reason ("skipped: dependency inflow_forecast failed"), so it never plans on a stale output.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
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
MAX_REASON_CHARS = 300


@dataclass
class TrainingReport:
    """What happened to each listed model: trained (name → version), failed or skipped (name → one line)."""

    trained: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def metrics(self) -> dict:
        return {"models": self.trained, "n_models_trained": len(self.trained), "models_failed": self.failed,
                "models_skipped": self.skipped, "model_order": self.order}


def dependencies(name: str) -> tuple[str, ...]:
    """The models whose output `name` reads (its module's REQUIRES_MODELS, read without importing it)."""
    from pipelines.crossrefs import model_requirements

    return model_requirements(name)["REQUIRES_MODELS"]


def training_order(names: list[str], deps: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """`names` in dependency order: each model after the listed models it reads (Kahn, stable on list order).

    A dependency the tenant does not list is not trained in this run (e.g. `tonghop train --model staffing`):
    the model then reads that dependency's published output. A cycle is a programming error, raised.
    """
    deps = {n: dependencies(n) for n in names} if deps is None else deps
    pending = list(dict.fromkeys(names))
    order: list[str] = []
    while pending:
        ready = [n for n in pending if all(d in order or d not in pending for d in deps.get(n, ()))]
        if not ready:
            raise ValueError(f"models {', '.join(pending)} depend on each other in a cycle (REQUIRES_MODELS)")
        order.append(ready[0])
        pending.remove(ready[0])
    return order


def one_line(exc: BaseException) -> str:
    """`ExceptionType: first line of its message`, short enough for a run summary read at 2 a.m."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else "(no message)"
    line = f"{type(exc).__name__}: {text}"
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 1] + "…"


def train_models(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths,
                 run_id: str) -> TrainingReport:
    """Train every model the tenant lists, in dependency order; one failure never stops the others."""
    from models.registry import duckdb_memory_limit
    from pipelines.errors import ConfigError

    unknown = [n for n in tenant.models if n not in REGISTRY]
    if unknown:
        raise ConfigError(f"tenant '{tenant.tenant_id}' lists model '{unknown[0]}', which does not exist; "
                          f"known models: {', '.join(sorted(REGISTRY))}")
    report = TrainingReport(order=training_order(list(tenant.models)))
    # DuckDB keeps scanned pages cached up to its memory limit (80 % of RAM by default): at 5M dossiers
    # that alone took ~4 GB; capped, DuckDB spills and the training process stays under 2 GB.
    with duckdb_memory_limit(con, TRAIN_DUCKDB_MEMORY):
        for name in report.order:
            blocked = next((d for d in dependencies(name) if d in report.failed or d in report.skipped
                            or (d in tenant.models and d not in report.trained)), None)
            if blocked is not None:
                why = "failed" if blocked in report.failed else "was not trained"
                report.skipped[name] = f"skipped: dependency {blocked} {why}"
                log.warning("[%s] model '%s' %s", tenant.tenant_id, name, report.skipped[name])
                continue
            log.info("[%s] training model '%s'", tenant.tenant_id, name)
            try:
                result = importlib.import_module(REGISTRY[name]).train(con, tenant, paths, run_id)
            except Exception as exc:  # noqa: BLE001 — any model's failure is reported, the next model still trains
                report.failed[name] = one_line(exc)
                log.error("[%s] model '%s' failed: %s — the other models go on; fix it and run "
                          "`tonghop train --tenant %s --model %s`", tenant.tenant_id, name, report.failed[name],
                          tenant.tenant_id, name)
                _reset(con)
                continue
            if result is not None:
                report.trained[name] = result.version
            else:
                report.skipped[name] = "not trained: no usable data (the log says which table or how much)"
    return report


def _reset(con: duckdb.DuckDBPyConnection) -> None:
    """Leave the connection usable after a failed model: no open transaction, no leftover temp table."""
    import duckdb

    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction was open: the model's own `transaction()` already rolled back
