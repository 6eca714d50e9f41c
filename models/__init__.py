"""Models trained from warehouse tables only; predictions go to `marts`, versions to `meta.models`.

Adding a model: a module in `models/` with `train(con, tenant, paths, run_id) -> ModelRun`, and one line in
REGISTRY. A tenant lists the models it runs under `models:` in its YAML. A model whose `train` reads another
model's output declares it in its module (`REQUIRES_MODELS = ("inflow_forecast",)`): the models then train in
dependency order (topological, the tenant's listed order among equals), whatever order the tenant lists them in.

Not every run refits: `models.retrain.decide` (the retraining policy) refits a model when it is forced, its
code/libraries changed, a model it reads was refitted, a new ISO week closed or its training data changed by
5 % or more; otherwise the registered version is kept and, for a model with per-row outputs (a `score(con,
tenant, paths, run_id, version)` function in its module), the new data is scored with it. The step's metrics
say per model what was done and why (`model_decisions`).

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
    scored: dict[str, str] = field(default_factory=dict)   # name → kept version that scored the new data
    kept: dict[str, str] = field(default_factory=dict)     # name → kept version, nothing run
    decisions: dict[str, str] = field(default_factory=dict)  # name → "refit: why" / "scored with X: why"

    def metrics(self) -> dict:
        return {"models": self.trained, "n_models_trained": len(self.trained), "models_failed": self.failed,
                "models_skipped": self.skipped, "model_order": self.order, "models_scored": self.scored,
                "models_kept": self.kept, "model_decisions": self.decisions}


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
    from models.retrain import Decision, decide, record_fit, record_score
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
                            or (d in tenant.models and d not in {**report.trained, **report.scored,
                                                                 **report.kept})), None)
            if blocked is not None:
                why = "failed" if blocked in report.failed else "was not trained"
                report.skipped[name] = f"skipped: dependency {blocked} {why}"
                log.warning("[%s] model '%s' %s", tenant.tenant_id, name, report.skipped[name])
                continue
            try:
                try:
                    decision = decide(con, tenant, name, set(report.trained))
                except Exception as exc:  # noqa: BLE001 — the policy only saves work: without it, fit as before
                    log.warning("[%s] retraining policy unavailable for '%s' (%s): fitted", tenant.tenant_id,
                                name, one_line(exc))
                    _reset(con)
                    decision = Decision("refit", f"retraining policy unavailable ({one_line(exc)})")
                module = importlib.import_module(REGISTRY[name])
                if decision.action == "keep":
                    report.kept[name] = decision.version
                    report.decisions[name] = f"kept version {decision.version}: {decision.reason}"
                    log.info("[%s] model '%s' %s", tenant.tenant_id, name, report.decisions[name])
                    continue
                if decision.action == "score":
                    log.info("[%s] scoring the new data with model '%s' %s (%s)", tenant.tenant_id, name,
                             decision.version, decision.reason)
                    kept = module.score(con, tenant, paths, run_id, decision.version)
                    if kept is not None:
                        _remember(record_score, con, tenant, name, run_id)
                        report.scored[name] = decision.version
                        n = kept.metrics.get("n_open_scored")
                        report.decisions[name] = (f"scored with version {decision.version}"
                                                  + (f" ({n:,} open rows scored)" if n is not None else "")
                                                  + f", not refitted: {decision.reason}")
                        continue
                    decision = Decision("refit", "its kept version could not score the new data")
                log.info("[%s] training model '%s' (%s)", tenant.tenant_id, name, decision.reason)
                result = module.train(con, tenant, paths, run_id)
                if result is not None:
                    _remember(record_fit, con, tenant, name, result.version, run_id)
                    report.decisions[name] = f"refit ({decision.reason}): version {result.version}"
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


def _remember(record, con: duckdb.DuckDBPyConnection, tenant: TenantConfig, name: str, *args) -> None:
    """The policy's record of a fit or a scoring; if it cannot be written the next run simply fits again."""
    try:
        record(con, tenant, name, *args)
    except Exception as exc:  # noqa: BLE001 — the model's own output is written already
        log.warning("[%s] retraining policy could not record '%s' (%s): the next run fits it again",
                    tenant.tenant_id, name, one_line(exc))
        _reset(con)


def _reset(con: duckdb.DuckDBPyConnection) -> None:
    """Leave the connection usable after a failed model: no open transaction, no leftover temp table."""
    import duckdb

    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction was open: the model's own `transaction()` already rolled back
