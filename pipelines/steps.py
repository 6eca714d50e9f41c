"""The pipeline's steps. The CLI (`tonghop run`) and the Airflow tasks call exactly these functions.

extract_load → validate → transform → train → publish. Each step takes a `RunContext`, opens the
warehouse itself (never holding it across steps, so Airflow can run each in its own process) and
returns a `StepResult` whose `metrics` feed the run summary.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, TonghopError, TransformError, ValidationBlocked, first_line
from pipelines.redact import redact_obj
from pipelines.settings import EXPECTATIONS_DIR, PROJECT_ROOT, WAREHOUSE_SQL_DIR, TenantPaths
from pipelines.warehouse import (
    PII_KEY_ENV,
    connect,
    now,
    sql_models,
    table_exists,
    transaction,
)

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig

log = logging.getLogger("tonghop.steps")
STEPS = ("extract_load", "validate", "transform", "train", "publish")


@dataclass
class RunContext:
    tenant: TenantConfig
    run_id: str
    paths: TenantPaths = field(init=False)
    only_sources: list[str] | None = None

    def __post_init__(self) -> None:
        self.paths = TenantPaths.for_tenant(self.tenant.tenant_id, self.tenant.data_dir).ensure()


@dataclass
class StepResult:
    step: str
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def extract_load(ctx: RunContext) -> StepResult:
    from pipelines.load import load_sources

    with connect(ctx.paths.warehouse) as con:
        results = load_sources(con, ctx.tenant, ctx.paths, ctx.run_id, ctx.only_sources)
    return StepResult("extract_load", {
        "sources": {r.source: r.status for r in results},
        "n_rows_loaded": sum(r.n_rows_loaded for r in results),
        "n_rows_rejected": sum(r.n_rows_rejected for r in results),
        "n_sources_skipped": sum(r.status == "skipped" for r in results),
        "errors": [r.error for r in results if r.error],
        # cost follows change: sources opened vs found unchanged by their probe alone (pipelines/sources/probe.py)
        "sources_read": sorted(r.source for r in results if r.read and r.status != "skipped"),
        "sources_not_read": sorted(r.source for r in results if not r.read),
        "seconds_per_source": {r.source: round(r.seconds, 2) for r in results},
    })


def validate(ctx: RunContext) -> StepResult:
    """Run each loaded batch's expectation suite inside DuckDB; a blocking failure stops promotion.

    Every batch still `loaded` is validated, this run's or not (e.g. one landed by an Airflow run between two
    of its tasks): a committed batch never stays unpromoted (`pipelines.runcontrol` abandons those of dead runs).

    Engine per batch (expectations/README.md, "Small batches: SQL instead of a GX process"): Great Expectations
    for a batch of more than `TONGHOP_SQLCHECK_MAX_ROWS` rows (default 200,000), for the first batch of a source
    checked with a suite (same fingerprint: the merged expectations) and for a suite SQL cannot compute exactly;
    otherwise `pipelines.quality.sqlcheck` computes the same results in plain DuckDB SQL without importing GX.
    `meta.validations.engine` says which one checked each batch.
    """
    from pipelines.quality.promotion import mark_unchecked_loads, record_batch
    from pipelines.quality.sqlcheck import (
        MAX_ROWS_ENV,
        SqlCheckUnsupported,
        max_rows,
        suite_fingerprint,
        validate_expectations_sql,
    )
    from pipelines.quality.suites import source_expectations

    limit = max_rows()
    # (source, batch_id, outcome, engine, fingerprint); the GX ones are run once the warehouse is closed
    outcomes: list[list[Any]] = []
    gx_pending: list[tuple[int, str, list[dict], str]] = []
    with connect(ctx.paths.warehouse) as con:
        batches = con.execute("SELECT source, batch_id, n_rows_loaded FROM meta.loads WHERE status = 'loaded' "
                              "ORDER BY source, loaded_at", []).fetchall()
        others = sorted({b for _, b, _ in batches if b != ctx.run_id})
        # the raw tables' columns: the contract baseline checks the source columns its mapping reads
        raw_columns = {s: dict(con.execute(f'SELECT column_name, column_type FROM (DESCRIBE raw."{s}")').fetchall())
                       for s in sorted({s for s, _, _ in batches})}
        # suites GX has validated for a source: only those may be checked by SQL (GX accepted them, and their
        # Data Docs page exists)
        gx_validated = set(con.execute("SELECT DISTINCT source, suite_fingerprint FROM meta.validations "
                                       "WHERE engine = 'gx' AND suite_fingerprint IS NOT NULL").fetchall())
        if others:
            log.warning("validating batch(es) %s left 'loaded' by other runs as well", ", ".join(others))
        for source_name, batch_id, n_rows in batches:
            # contract baseline + the source's own suite (pipelines/quality/suites.py, expectations/README.md)
            try:
                checks = source_expectations(ctx.tenant, ctx.tenant.source(source_name), raw_columns[source_name],
                                             EXPECTATIONS_DIR)
            except (LookupError, ValueError) as exc:
                raise ConfigError(f"tenant '{ctx.tenant.tenant_id}': {first_line(exc)}") from None
            if checks is None:
                log.warning("source '%s' has no contract and no expectation suite: promoted unchecked", source_name)
                outcomes.append([source_name, batch_id, None, None, None])
                continue
            suite, expectations = checks
            fingerprint = suite_fingerprint(suite, expectations)
            query = f"SELECT * FROM raw.\"{source_name}\" WHERE _batch_id = '{batch_id}'"
            why_gx = None
            if n_rows > limit:
                why_gx = f"{n_rows:,} rows > {limit:,} ({MAX_ROWS_ENV})"
            elif (source_name, fingerprint) not in gx_validated:
                why_gx = "no Great Expectations validation of this suite on record for the source (first batch, " \
                         "or the suite/contract/columns changed)"
            else:
                started = time.perf_counter()
                try:
                    outcome = validate_expectations_sql(con, query, suite, expectations,
                                                        run_name=f"{ctx.run_id}__{source_name}")
                except SqlCheckUnsupported as exc:
                    why_gx = f"not computed by SQL: {exc}"
                else:
                    log.info("validated raw.%s batch %s with suite '%s' (%d checks) by SQL in DuckDB in %.2f s "
                             "(%s rows; suite validated by Great Expectations before)", source_name, batch_id, suite,
                             len(expectations), time.perf_counter() - started, f"{n_rows:,}")
                    outcomes.append([source_name, batch_id, outcome, "sql", fingerprint])
                    continue
            log.info("validating raw.%s batch %s with suite '%s' (%d checks) by Great Expectations: %s", source_name,
                     batch_id, suite, len(expectations), why_gx)
            gx_pending.append((len(outcomes), suite, expectations, query))
            outcomes.append([source_name, batch_id, None, "gx", fingerprint])
    if gx_pending:
        from pipelines.quality.suites import validate_expectations

        for i, suite, expectations, query in gx_pending:  # GX opens the file read-only itself
            source_name = outcomes[i][0]
            outcomes[i][2] = validate_expectations(
                ctx.paths.warehouse, query, suite, expectations, run_name=f"{ctx.run_id}__{source_name}",
                results_dir=ctx.paths.validations)

    n_passed = n_failed = n_quarantined = 0
    blocked: list[str] = []
    with connect(ctx.paths.warehouse) as con, transaction(con):
        for source_name, batch_id, outcome, engine, fingerprint in outcomes:
            status = "passed"
            # Rows failing `warn` row-level checks go to meta.quarantine and stay out of staging; scores too.
            quality = record_batch(con, ctx.tenant, ctx.tenant.source(source_name), ctx.run_id, batch_id,
                                   outcome, now())
            n_quarantined += quality.n_rows_quarantined
            if outcome is not None:
                con.execute("DELETE FROM meta.validations WHERE batch_id = ? AND source = ?", [batch_id, source_name])
                for i, o in enumerate(outcome.outcomes):
                    con.execute("INSERT INTO meta.validations (run_id, batch_id, source, suite, expectation, "
                                "column_name, severity, is_success, n_elements, n_unexpected, unexpected_pct, "
                                "observed_value, description, validated_at, n_quarantined, engine, suite_fingerprint) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                        ctx.run_id, batch_id, source_name, outcome.suite_name, o.expectation_type, o.column,
                        o.severity, o.success, o.element_count, o.unexpected_count, o.unexpected_percent,
                        o.observed_value, o.description, now(), quality.quarantined_per_check.get(i, 0), engine,
                        fingerprint])
                n_passed += outcome.n_passed
                n_failed += outcome.n_failed
                for o in outcome.warnings:
                    log.warning("source '%s' [warn] %s: %s unexpected", source_name, o.description, o.unexpected_count)
                if not outcome.success:
                    status = "blocked"
                    blocked += [f"{source_name}: {o.description} ({o.unexpected_count} unexpected)"
                                for o in outcome.blocking_failures]
            con.execute("UPDATE meta.loads SET status = ? WHERE batch_id = ? AND source = ?",
                        [status, batch_id, source_name])
        mark_unchecked_loads(con, ctx.run_id)
    if any(engine == "gx" for *_, engine, _ in outcomes):
        _build_data_docs(ctx)  # also (above all) when blocked: the docs show why; they show GX validations only
    if blocked:
        raise ValidationBlocked("blocking expectation(s) failed, batch not promoted, previous snapshot keeps "
                                "serving: " + "; ".join(blocked) + " — fix the source data or the suite, then re-run")
    return StepResult("validate", {"n_checks_passed": n_passed, "n_checks_failed": n_failed,
                                   "n_batches": len(batches), "n_rows_quarantined": n_quarantined,
                                   "n_batches_gx": sum(o[3] == "gx" for o in outcomes),
                                   "n_batches_sql": sum(o[3] == "sql" for o in outcomes)})


DATA_DOCS_MAX_RESULTS = 60  # the newest validation results shown (a result per suite per run)


def _build_data_docs(ctx: RunContext) -> None:
    """Rebuild the tenant's Great Expectations Data Docs (linked from the app's data quality page).

    Documentation, not data: a failure here is logged and the run goes on.
    """
    from pipelines.quality.suites import build_data_docs

    started = time.perf_counter()
    try:
        index = build_data_docs(EXPECTATIONS_DIR, results_dir=ctx.paths.validations, site_dir=ctx.paths.data_docs,
                                max_results=DATA_DOCS_MAX_RESULTS)
    except Exception as exc:  # noqa: BLE001 — GX rendering problems must not stop the data
        log.warning("Data Docs not rebuilt for tenant '%s' (%s); the data quality page shows the checks anyway",
                    ctx.tenant.tenant_id, first_line(exc))
        return
    log.info("Data Docs rebuilt in %.1f s: %s", time.perf_counter() - started, index)


def transform(ctx: RunContext) -> StepResult:
    """Bring `staging` and `marts` up to date with the promoted raw batches, personal data pseudonymised on the way.

    Cost follows change (`pipelines.incremental`): nothing promoted and nothing else changed since the last
    build → nothing is built (said in the step's metrics); new batches of append/merge sources → the large
    models with an `incremental:` spec are maintained from them, the others rebuilt; anything else (first
    build, changed models/config/code) → everything rebuilt.
    """
    from pipelines.contracts import build_contract_views
    from pipelines.dictionary import write_dictionary_table
    from pipelines.incremental import build_models, plan_transform, write_state
    from pipelines.reference.retention import purge_raw

    # The tenant's own models are checked before anything is opened: a bad one fails the step, builds nothing.
    models = sql_models(tenant=ctx.tenant)
    key = os.environ.get(PII_KEY_ENV)
    if not key:
        raise ConfigError(f"environment variable {PII_KEY_ENV} is not set: it keys the pseudonymisation of "
                          "personal data — set it to a long random secret (the same one on every run)")
    with connect(ctx.paths.warehouse) as con, transaction(con):
        con.execute("SET VARIABLE tonghop_pii_key = ?", [key])
        con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
        plan = plan_transform(con, ctx.tenant, models, key)
        if plan.mode == "skip":
            log.info("[%s] transform: nothing to build — %s", ctx.tenant.tenant_id, plan.reason)
            retention = purge_raw(con, ctx.tenant, now())  # the retention clock runs on regardless
            n_documented = con.execute("SELECT count(*) FILTER (WHERE column_description <> '') "
                                       "FROM meta.data_dictionary").fetchone()[0]
            return StepResult("transform", {"build": "skipped", "reason": plan.reason, "tables": {}, "skipped": [],
                                            "n_tables_changed": 0, "n_columns_documented": n_documented,
                                            "retention": retention})
        log.info("[%s] transform (%s): %s", ctx.tenant.tenant_id, plan.mode, plan.reason or "")
        outcome = build_models(con, ctx.tenant, models, plan, ctx.run_id, _source_views, build_contract_views,
                               _build_model)
        n_documented = write_dictionary_table(con, ctx.tenant)  # meta.data_dictionary, again at publish
        # The input key is recorded before the purge: the purge is an input of the next build.
        write_state(con, "transform", ctx.run_id, plan.input_key, outcome.state(plan))
        retention = purge_raw(con, ctx.tenant, now())  # personal data in raw only for retention.raw_days
    return StepResult("transform", {"build": outcome.mode, "reason": plan.reason, "tables": outcome.built,
                                    "skipped": sorted(outcome.skipped), "n_tables_changed": len(outcome.changed),
                                    "n_columns_documented": n_documented, "retention": retention,
                                    "incremental": outcome.incremental})


def _shown_path(path: Path) -> str:
    """A model file as an engineer finds it: relative to the checkout, or to the tenants folder's parent."""
    from pipelines.settings import tenants_dir

    for root in (PROJECT_ROOT, tenants_dir().parent):
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return str(path)


def _build_model(con: duckdb.DuckDBPyConnection, model) -> None:
    """Build one SQL model; a DuckDB error becomes one line naming the model's file, what it reads and the fix.

    The step's transaction rolls back, so the warehouse keeps the previous build of every table."""
    import duckdb

    try:
        con.execute(f"CREATE OR REPLACE TABLE {model.qualified} AS\n{model.sql}")
    except duckdb.Error as exc:
        reads = ", ".join(sorted(model.sources)) or "other tables"
        raise TransformError(
            f"building {model.qualified} ({_shown_path(model.path)}) failed: "
            f"{type(exc).__name__}: {first_line(exc)} — the data it reads ({reads}) holds a value this model "
            "cannot use; check the source's mapping and formats against its contract (tonghop inspect --tenant "
            "<tenant> --source <source>), fix the source or the mapping, then re-run. Nothing was changed."
        ) from None


def _source_views(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, restrict: dict[str, str] | None = None,
                  only: set[str] | None = None, read_from: dict[str, str] | None = None,
                  reference: bool = True) -> set[str]:
    """Temp views `src_<source>`: latest row per key over promoted batches, personal columns pseudonymised.

    A personal column is normalised before it is pseudonymised ('+84 912 345 678' and '0912345678' give one
    token) and its validity flag (`is_<column>_valid`) is computed from the raw value and kept; the raw
    value itself never leaves this view. A source feeding a contract also has every column a personal contract
    column is mapped from pseudonymised, with the contract's kind, declared in `personal_columns` or not.
    Reference tables (`ref_*`, `seed_*`) are registered alongside (`reference=False`: only the variables they
    set; `pipelines.incremental` registers them when a model reading them is rebuilt). `restrict` adds a condition
    per source, `read_from` reads a source's rows from another relation than its raw table (the raw rows of the
    changed keys, copied once by an incremental build).
    """
    from pipelines.contracts import load_contracts, personal_kinds, personal_sql
    from pipelines.quality.rowchecks import exclusion_sql  # quarantined rows are never promoted
    from pipelines.reference.identifiers import personal_column_sql
    from pipelines.reference.register import register_reference, set_reference_variables
    from pipelines.warehouse import columns_of

    if reference:
        register_reference(con, tenant)
    else:
        set_reference_variables(con, tenant)
    available: set[str] = set()
    for source in tenant.sources:
        if (only is not None and source.name not in only) or not table_exists(con, "raw", source.name):
            continue
        if source.contract:
            existing = set(columns_of(con, "raw", source.name))
            replaced, flags = personal_sql(personal_kinds(source, load_contracts().get(source.contract), existing))
        else:
            replaced, flags = personal_column_sql(source.personal_columns)
        replace = ", ".join(replaced)
        keys = ", ".join(f'"{c}"' for c in source.primary_key)
        promoted = f"SELECT batch_id FROM meta.loads WHERE source = '{source.name}' AND status = 'passed'"
        if source.write_disposition == "replace":
            promoted += " ORDER BY loaded_at DESC LIMIT 1"
        con.execute(f"""
            CREATE OR REPLACE TEMP VIEW src_{source.name} AS
            SELECT * {f'REPLACE ({replace})' if replace else ''}{''.join(', ' + f for f in flags)}
            FROM {(read_from or {}).get(source.name) or f'raw."{source.name}"'} AS "{source.name}"
            WHERE _batch_id IN ({promoted})
              AND {exclusion_sql(source.name, source.primary_key, source.personal_columns)}
              {f"AND {restrict[source.name]}" if restrict and source.name in restrict else ""}
            -- newest load wins; two rows of one key in one batch are ordered by their content (the row's
            -- hash), so every rebuild picks the same one
            QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY _loaded_at DESC, hash("{source.name}")) = 1""")
        available.add(source.name)
    return available


def train(ctx: RunContext) -> StepResult:
    """Fit, keep or score each model as the retraining policy says (models/retrain.py), or nothing at all when
    nothing it reads changed. Forced (`tonghop train`, the retraining DAG): every model goes through its fit,
    which keeps a version already fitted on the same data (content-addressed) — the run then changes nothing."""
    from models import train_models
    from models.retrain import is_forced, policy_versions
    from pipelines.incremental import read_state, train_key, write_state

    with connect(ctx.paths.warehouse) as con:
        # Cost follows change: the models already fit the tables as they are (same build, code and config).
        key, last = train_key(con, ctx.tenant), read_state(con, "train")
        unchanged = key is not None and last is not None and last["input_key"] == key
        if unchanged and not is_forced():
            reason = f"data, models and configuration unchanged since run {last['run_id']} trained them"
            log.info("[%s] train: nothing to do — %s", ctx.tenant.tenant_id, reason)
            return StepResult("train", {"models": {}, "n_models_trained": 0, "models_failed": {},
                                        "models_skipped": {}, "model_order": [], "build": "skipped",
                                        "reason": reason})
        before = policy_versions(con)
        report = train_models(con, ctx.tenant, ctx.paths, ctx.run_id)
        same = unchanged and policy_versions(con) == before  # forced on unchanged inputs: every version kept
        if key is not None and not report.failed and not same:  # a model without usable data stays so until the data moves
            write_state(con, "train", ctx.run_id, key, {"skipped": sorted(report.skipped)})
    return StepResult("train", {**report.metrics(), "build": "trained",
                                "reason": "forced: every version kept (same data, code and parameters)" if same
                                else ""})


def publish(ctx: RunContext) -> StepResult:
    from pipelines.incremental import publish_inputs
    from pipelines.warehouse import refresh_snapshot, snapshot_build_key

    with connect(ctx.paths.warehouse) as con:
        key, versions = publish_inputs(con)
        serving, n_serving = snapshot_build_key(ctx.paths.snapshot)
        if key is not None and serving == key:
            # Cost follows change: the snapshot now serving was published from this very build.
            reason = "the snapshot now serving holds this build already (nothing transformed or trained since)"
            log.info("[%s] publish: nothing to do — %s", ctx.tenant.tenant_id, reason)
            return StepResult("publish", _lakehouse(ctx, {"snapshot": str(ctx.paths.snapshot), "n_tables": n_serving,
                                                          "build": "skipped", "reason": reason,
                                                          "n_tables_rewritten": 0, "n_tables_patched": 0,
                                                          "tables_patched": []}))
        refreshed = refresh_snapshot(con, ctx.paths.snapshot, ctx.run_id, ctx.tenant, versions, key)
    counts = refreshed.counts
    metrics = {"snapshot": str(ctx.paths.snapshot), "n_tables": len(counts), "build": refreshed.method,
               "reason": f"{len(refreshed.rewritten)} table(s) rewritten, {len(refreshed.patched)} patched with the "
                         f"build's changes, {len(refreshed.kept)} unchanged kept",
               "n_tables_rewritten": len(refreshed.rewritten), "n_tables_patched": len(refreshed.patched),
               "tables_patched": refreshed.patched}
    return StepResult("publish", _lakehouse(ctx, metrics))


def _lakehouse(ctx: RunContext, metrics: dict[str, Any]) -> dict[str, Any]:
    """Lakehouse mode (pipelines/lakehouse): the serving tables committed to the tenant's Iceberg namespace.
    Also when the snapshot was not refreshed, so a lakehouse commit that failed last time catches up; a
    snapshot the lakehouse already holds costs one catalogue look-up."""
    if ctx.tenant.storage.is_lakehouse:
        from pipelines.lakehouse import publish_tenant

        metrics["lakehouse"] = publish_tenant(ctx.tenant, ctx.paths.snapshot, ctx.run_id).metrics()
    return metrics


STEP_FUNCTIONS = {"extract_load": extract_load, "validate": validate, "transform": transform, "train": train,
                  "publish": publish}


def run_step(ctx: RunContext, step: str) -> StepResult:
    """Run one step, timing it and recording it in `meta.step_runs` once it has succeeded.

    Callers hold the tenant's writer lock (`pipelines.runcontrol`); DuckDB's own lock error (another program
    has the warehouse open) becomes a one-line `WarehouseBusy`. `TONGHOP_FAULT_AFTER=<step>` raises after
    that step's work, before it is recorded — the crash trials' injected failure (tests/reliability).
    """
    import json

    import duckdb

    from pipelines.runcontrol import busy_error

    started_at, started = now(), time.perf_counter()
    try:
        result = STEP_FUNCTIONS[step](ctx)
        if os.environ.get(FAULT_ENV) == step:
            raise InjectedFault(f"fault injected after step '{step}' ({FAULT_ENV}={step})")
        result.seconds = time.perf_counter() - started
        with connect(ctx.paths.warehouse) as con:
            con.execute("INSERT OR REPLACE INTO meta.step_runs VALUES (?, ?, ?, ?, ?)",
                        [ctx.run_id, step, started_at, now(), json.dumps(redact_obj(result.metrics), default=str)])
    except duckdb.IOException as exc:
        busy = busy_error(exc, ctx.paths, ctx.tenant.tenant_id)
        if busy is None:
            raise
        raise busy from None
    return result


FAULT_ENV = "TONGHOP_FAULT_AFTER"


class InjectedFault(TonghopError):
    """The failure `TONGHOP_FAULT_AFTER` injects (crash trials only)."""

    exit_code = 1
