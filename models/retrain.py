"""Retraining outside the daily pipeline: `train` then `publish`, for all of a tenant's models or one of them.

The retraining DAG (`tonghop_retrain_<tenant>` in dags/tonghop.py: triggered, or on `retrain_schedule`) and `tonghop train` both call these functions, which go
through the same `pipelines.steps` as a full run, so the step is timed and recorded in `meta.step_runs`.
Versions are content-addressed: when the data has not changed since the pipeline's own `train` step,
each model finds its version already recorded and keeps it instead of fitting again.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from models import REGISTRY
from pipelines.config import load_tenant
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig
    from pipelines.runner import RunReport

RETRAIN_STEPS = ("train", "publish")


def tenant_for(tenant_id: str, model: str | None = None) -> TenantConfig:
    """The tenant's configuration, narrowed to one model when `model` is given."""
    cfg = load_tenant(tenant_id)
    if model is None:
        return cfg
    if model not in REGISTRY:
        raise ConfigError(f"unknown model '{model}'; known models: {', '.join(sorted(REGISTRY))}")
    return cfg.model_copy(update={"models": [model]})


def retrain(tenant_id: str, model: str | None = None, run_id: str | None = None) -> RunReport:
    """Train (all or one model) and republish the snapshot; the CLI's `tonghop train`."""
    from pipelines.runner import run

    with forced_fit():  # the operator asked for a fit: the retraining policy does not keep any version
        return run(tenant_for(tenant_id, model), steps=list(RETRAIN_STEPS), run_id=run_id)


def run_retrain_step(tenant_id: str, step: str, run_id: str) -> dict:
    """One step of the retraining DAG in an Airflow worker: same bridge as the pipeline's tasks."""
    from pipelines.airflow_task import run_task_step

    if step not in RETRAIN_STEPS:
        raise ConfigError(f"retraining runs only {', '.join(RETRAIN_STEPS)}, not '{step}'")
    with forced_fit():
        return run_task_step(tenant_id, step, run_id)


# --- retraining policy (issue 16.1: cost follows change) --------------------------------------------------
#
# The pipeline's `train` step does not refit every model because a batch arrived. Per model, in dependency
# order, it refits when one of these holds, and says which:
#   1. forced: `tonghop train` or the retraining DAG (`forced_fit()`);
#   2. no usable fit: never fitted here, or its recorded version, output or artefact is gone;
#   3. its recipe changed: the model's code (its module and the models/ modules it imports), the libraries
#      that fit it (scikit-learn, numpy, scipy, duckdb, polars), the tenant's time zone;
#   4. a model it reads (REQUIRES_MODELS) was refitted in this run;
#   5. a new complete ISO week closed since its fit, on the data's clock (the week of the newest
#      `data_as_of` of the dossiers; the calendar date for a tenant without dossiers);
#   6. its training data changed by at least `TONGHOP_REFIT_SHARE` (default 5 %): rows promoted since the fit
#      (new rows and late updates) in the sources of the contracts it requires, over the rows it was fitted on;
#   7. a check without fitted parameters (`STATELESS = True`, anomalies): any promoted batch since it ran.
# Otherwise the registered version is kept; a model with per-row outputs (`score()` in its module: overdue
# risk scores the dossiers open now, anomalies re-check the new figures) scores the new data with it, so
# its outputs cover today's rows in the same run.

REFIT_SHARE_ENV = "TONGHOP_REFIT_SHARE"
REFIT_SHARE = 0.05
POLICY_TABLE = "meta.model_policy"
_FORCED: ContextVar[bool] = ContextVar("tonghop_forced_fit", default=False)


@contextmanager
def forced_fit() -> Iterator[None]:
    """Inside: every model is refitted (`tonghop train`, the retraining DAG), whatever the policy says."""
    token = _FORCED.set(True)
    try:
        yield
    finally:
        _FORCED.reset(token)


def is_forced() -> bool:
    return _FORCED.get()


def refit_share() -> float:
    from pipelines.settings import env_number

    return env_number(REFIT_SHARE_ENV, REFIT_SHARE, low=0, high=1, low_open=True,
                      meaning="the share of changed training rows that refits a model, 0.05 for 5 %")


@dataclass
class Decision:
    """What the train step does with one model: `refit`, `score` (kept version, new rows scored) or `keep`."""

    action: str
    reason: str
    version: str | None = None


@dataclass
class DataState:
    week: str | None          # Monday of the ISO week of the data's clock
    n_rows: int               # rows promoted in the model's sources (its training data's size)
    loads_until: str | None   # newest promoted batch's load time, as text


def recipe(name: str, tenant: TenantConfig) -> str:
    """The model's code (its module + the models/ modules it imports), library versions, the tenant's time zone."""
    import hashlib
    import importlib.util
    import re

    from models.registry import library_versions
    from pipelines.reference.pii import NO_DIGITS

    h = hashlib.sha256()
    seen: set[str] = set()
    pending = [REGISTRY[name]]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin).read_text(encoding="utf-8")
        h.update(module.encode() + b"\0" + source.encode())
        pending += [f"models.{m}" for m in re.findall(r"\bmodels\.(\w+)", source) if m != "retrain"]
    # Not the tenant's model list: `tonghop train --model X` narrows it, and must not make the next run refit X.
    h.update(json.dumps([library_versions(), tenant.timezone], sort_keys=True).encode())
    # digits as letters (as the registry's versions): meta.model_policy is published with the snapshot
    return h.hexdigest().translate(NO_DIGITS)


def _stateless(name: str) -> bool:
    return bool(getattr(importlib.import_module(REGISTRY[name]), "STATELESS", False))


def model_sources(name: str, tenant: TenantConfig) -> list[str]:
    """The tenant's sources feeding the contracts the model requires (all sources when it declares none, or
    when it is a check without fitted parameters: those read every batch's counts)."""
    from pipelines.crossrefs import model_requirements

    if _stateless(name):
        return [s.name for s in tenant.sources]
    declared = model_requirements(name)
    contracts = set(declared["REQUIRES"]) | set(declared["REQUIRES_ANY"])
    chosen = [s.name for s in tenant.sources if s.contract in contracts or s.name in contracts]
    return chosen or [s.name for s in tenant.sources]


def data_state(con: duckdb.DuckDBPyConnection, sources: list[str], tenant: TenantConfig) -> DataState:
    """The data's clock (week) and the size and newest load of the promoted batches of `sources`."""
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from pipelines.warehouse import table_exists

    day = None
    if table_exists(con, "staging", "ho_so"):
        day = con.execute("SELECT max(data_as_of) FROM staging.ho_so").fetchone()[0]
    if not isinstance(day, date):
        day = datetime.now(ZoneInfo(tenant.timezone)).date()
    monday = day - timedelta(days=day.weekday())
    # A replace source's staging holds only its newest batch: only that one counts towards the size.
    n_rows, until = con.execute(
        "WITH p AS (SELECT l.*, row_number() OVER (PARTITION BY source ORDER BY loaded_at DESC) AS newest "
        "FROM meta.loads l WHERE status = 'passed' AND list_contains(?, source)) "
        "SELECT coalesce(sum(n_rows_promoted) FILTER (WHERE newest = 1 OR NOT list_contains(?, source)), 0), "
        "max(loaded_at)::VARCHAR FROM p",
        [sources, _replace_sources(tenant, sources)]).fetchone()
    return DataState(monday.isoformat(), int(n_rows or 0), until)


def _replace_sources(tenant: TenantConfig, sources: list[str]) -> list[str]:
    return [s.name for s in tenant.sources if s.name in sources and s.write_disposition == "replace"]


def changed_rows(con: duckdb.DuckDBPyConnection, sources: list[str], since: str | None) -> int:
    """Rows promoted in `sources` after the load time `since` (new rows and late updates alike)."""
    if since is None:
        return 0
    return int(con.execute("SELECT coalesce(sum(n_rows_promoted), 0) FROM meta.loads WHERE status = 'passed' "
                           "AND list_contains(?, source) AND loaded_at > ?::TIMESTAMPTZ", [sources, since]
                           ).fetchone()[0])


def _newer_batches(con: duckdb.DuckDBPyConnection, sources: list[str], since: str | None) -> int:
    if since is None:
        return 1
    return int(con.execute("SELECT count(*) FROM meta.loads WHERE status = 'passed' AND list_contains(?, source) "
                           "AND loaded_at > ?::TIMESTAMPTZ", [sources, since]).fetchone()[0])


def _ensure_policy_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {POLICY_TABLE} (model_name VARCHAR PRIMARY KEY, model_version VARCHAR, "
                "recipe VARCHAR, data_week VARCHAR, n_rows_at_fit BIGINT, loads_at_fit VARCHAR, "
                "loads_at_score VARCHAR, fitted_run VARCHAR, scored_run VARCHAR)")
    con.execute(f"ALTER TABLE {POLICY_TABLE} ADD COLUMN IF NOT EXISTS inputs VARCHAR")


def inputs(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """What the model's fit read besides its sources' rows, as a digest: the definitions the warehouse was last
    built under (transform's fingerprint parts: SQL models, contracts, configuration, pipeline code, packages,
    key — not the tenant's list of models, which `tonghop train --model X` narrows)
    and the version of every model whose output it reads. Recorded at the fit and compared at every run, so a
    rebuild under other definitions, or an upstream model refitted in a run that died (or in `tonghop train
    --model <upstream>`), refits it in the next run."""
    from models import dependencies
    from pipelines.incremental import digest, read_state
    from pipelines.warehouse import table_exists

    built = read_state(con, "transform") if table_exists(con, "meta", "build_state") else None
    versions = dict(con.execute(f"SELECT model_name, model_version FROM {POLICY_TABLE} "
                                "WHERE list_contains(?, model_name)", [list(dependencies(name))]).fetchall())
    parts = {k: v for k, v in (built or {}).get("parts", {}).items() if k != "model_list"}
    return digest(parts, sorted(versions.items()))


def decide(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, name: str, refitted: set[str]) -> Decision:
    """Refit, score with the kept version, or keep — and why (one line for the run summary)."""
    if is_forced():
        return Decision("refit", "forced (tonghop train / retraining DAG)")
    _ensure_policy_table(con)
    row = con.execute(f"SELECT model_version, recipe, data_week, n_rows_at_fit, loads_at_fit, loads_at_score, "
                      f"inputs FROM {POLICY_TABLE} WHERE model_name = ?", [name]).fetchone()
    if row is None:
        return Decision("refit", "no fit recorded by the retraining policy yet")
    version, fitted_recipe, fitted_week, n_at_fit, loads_at_fit, loads_at_score, fitted_inputs = row
    if not _usable(con, name, version):
        return Decision("refit", f"its version {version} is no longer usable (record, output or artefact gone)")
    if recipe(name, tenant) != fitted_recipe:
        return Decision("refit", "its code, libraries or model settings changed since its fit")
    from models import dependencies

    upstream = sorted(d for d in dependencies(name) if d in refitted)
    if upstream:
        return Decision("refit", f"the model it reads ({', '.join(upstream)}) was refitted in this run")
    if inputs(con, name) != fitted_inputs:
        return Decision("refit", "the warehouse was rebuilt under other definitions (SQL models, contracts, "
                                 "configuration, code or key), or a model it reads has another version, since its fit")
    sources = model_sources(name, tenant)
    if _stateless(name):
        every = [s.name for s in tenant.sources]
        if _newer_batches(con, every, loads_at_fit):
            return Decision("refit", "a check without fitted parameters: recomputed on every new promoted batch")
        return Decision("keep", "no promoted batch since it last ran", version)
    now = data_state(con, sources, tenant)
    if now.week != fitted_week:
        return Decision("refit", f"a new ISO week closed since its fit (data week of {now.week}, fitted on the "
                                 f"week of {fitted_week})")
    changed = changed_rows(con, sources, loads_at_fit)
    share = changed / max(int(n_at_fit or 0), 1)
    limit = refit_share()
    if changed and share >= limit:
        return Decision("refit", f"its training data changed by {share:.1%} (≥ {limit:.1%}: {changed:,} rows "
                                 "promoted since its fit)")
    new_since_score = changed_rows(con, sources, loads_at_score or loads_at_fit)
    why = (f"same ISO week, training data changed by {share:.2%} < {limit:.1%} since its fit"
           if changed else "no promoted change in its sources since its fit")
    if new_since_score and hasattr(importlib.import_module(REGISTRY[name]), "score"):
        return Decision("score", why, version)
    return Decision("keep", why + ("" if new_since_score else "; nothing new to score"), version)


def _usable(con: duckdb.DuckDBPyConnection, name: str, version: str | None) -> bool:
    from models.registry import recorded_run

    module = importlib.import_module(REGISTRY[name])
    table = getattr(module, "OUTPUT_TABLE", None)
    if version is None or table is None:
        return False
    return recorded_run(con, name, version, table) is not None


def policy_versions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each model's version as the policy last recorded it (fitted or kept)."""
    _ensure_policy_table(con)
    return dict(con.execute(f"SELECT model_name, model_version FROM {POLICY_TABLE}").fetchall())


def record_fit(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, name: str, version: str, run_id: str) -> None:
    """After a fit: what the policy compares the next runs with."""
    _ensure_policy_table(con)
    state = data_state(con, model_sources(name, tenant), tenant)
    con.execute(f"INSERT OR REPLACE INTO {POLICY_TABLE} (model_name, model_version, recipe, data_week, n_rows_at_fit, "
                "loads_at_fit, loads_at_score, fitted_run, scored_run, inputs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [name, version, recipe(name, tenant), state.week, state.n_rows, state.loads_until,
                 state.loads_until, run_id, None, inputs(con, name)])


def record_score(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, name: str, run_id: str) -> None:
    """After scoring with the kept version: the new rows are covered up to the newest promoted batch."""
    state = data_state(con, model_sources(name, tenant), tenant)
    con.execute(f"UPDATE {POLICY_TABLE} SET loads_at_score = ?, scored_run = ? WHERE model_name = ?",
                [state.loads_until, run_id, name])
