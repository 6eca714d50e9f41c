"""Run a tenant's pipeline outside Airflow (CLI, tests): the same step functions, in order, with a summary.

The whole run holds the tenant's writer lock and is recorded in `<tenant>/runs.jsonl` (start, each step,
end) by `pipelines.runcontrol`, which also finds runs that died and resolves what they left behind.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipelines.config import TenantConfig, load_tenant
from pipelines.errors import TonghopError
from pipelines.runcontrol import Orphan, WarehouseBusy, controlled
from pipelines.settings import TenantPaths
from pipelines.steps import STEPS, RunContext, StepResult, run_step

log = logging.getLogger("tonghop.run")


@dataclass
class RunReport:
    tenant_id: str
    run_id: str
    results: list[StepResult] = field(default_factory=list)
    failed_step: str | None = None
    error: str | None = None
    orphans: list[Orphan] = field(default_factory=list)
    published: bool = False  # the snapshot now serving is this run's (a failure after publish's rename)

    @property
    def ok(self) -> bool:
        return self.failed_step is None

    def summary(self) -> str:
        """The closing lines a data engineer reads: what moved, what was checked, how long each step took."""
        m: dict = {}
        for r in self.results:
            m.update(r.metrics)
        lines = [f"Run {self.run_id} of tenant '{self.tenant_id}': {'OK' if self.ok else 'FAILED'}"]
        lines += [f"  earlier {o.sentence(self.tenant_id)}" for o in self.orphans]
        if "n_rows_loaded" in m:
            lines.append(f"  rows loaded: {m['n_rows_loaded']:,}   rejected at load: {m['n_rows_rejected']:,}"
                         f"   sources skipped: {m['n_sources_skipped']}"
                         + (f"   unchanged by their probe (not read): {len(m['sources_not_read'])}"
                            if m.get("sources_not_read") else ""))
        if "n_checks_passed" in m:
            lines.append(f"  checks passed: {m['n_checks_passed']}   failed: {m['n_checks_failed']}"
                         f"   rows quarantined: {m.get('n_rows_quarantined', 0):,}")
        by_step = {r.step: r.metrics for r in self.results}
        idle = [r.step for r in self.results if r.metrics.get("build") == "skipped"]
        if idle:  # cost follows change (pipelines/incremental.py): said, never silent
            lines.append(f"  nothing new: {', '.join(idle)} skipped — {by_step[idle[0]].get('reason', '')}")
        if by_step.get("transform", {}).get("build") in ("full", "incremental"):
            t = by_step["transform"]
            lines.append(f"  tables built: {len(t['tables'])} ({t['build']}: {t['reason']}; "
                         f"{len(t.get('incremental') or {})} maintained from the change, "
                         f"{t.get('n_tables_changed', 0)} changed)")
        elif "tables" in m and "transform" not in idle:
            lines.append(f"  tables built: {len(m['tables'])}")
        if "n_models_trained" in m and "train" not in idle:
            lines.append(f"  models trained: {m['n_models_trained']}"
                         + (f"   kept and scored: {len(m['models_scored'])}" if m.get("models_scored") else "")
                         + (f"   kept: {len(m['models_kept'])}" if m.get("models_kept") else ""))
            # the retraining policy (models/retrain.py): refit and why, or the version kept and why not refit
            lines += [f"  model {name}: {what}" for name, what in m.get("model_decisions", {}).items()]
            lines += [f"  model {name} FAILED: {why}" for name, why in m.get("models_failed", {}).items()]
            lines += [f"  model {name} {why}" for name, why in m.get("models_skipped", {}).items()]
        if "snapshot" in m and "publish" not in idle:
            lines.append(f"  snapshot published: {m['snapshot']} ({by_step['publish'].get('reason', '')})")
        lines.append("  time per step: " + ", ".join(f"{r.step} {r.seconds:.1f} s" for r in self.results))
        if not self.ok:
            lines.append(f"  failed at step '{self.failed_step}': {self.error}")
            lines.append("  the snapshot was published before the failure: it is this run's, complete" if self.published
                         else "  nothing was published: the previous snapshot keeps serving")
        return "\n".join(lines)


def _snapshot_run_id(paths: TenantPaths) -> str | None:
    """The run that published the snapshot now serving (None if there is none or it cannot be read)."""
    import duckdb

    try:
        with duckdb.connect(str(paths.snapshot), read_only=True) as con:
            return con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0]
    except (duckdb.Error, OSError, TypeError):
        return None


def new_run_id() -> str:
    return f"cli__{datetime.now(UTC):%Y%m%dT%H%M%S}__{uuid.uuid4().hex[:6]}"


def run(tenant: TenantConfig | str, steps: list[str] | None = None, run_id: str | None = None,
        only_sources: list[str] | None = None, wait: float | None = None) -> RunReport:
    """Run the named steps (default: all) for a tenant; stops at the first failing step.

    Holds the tenant's writer lock throughout: a second run waits up to `wait` s (default
    `TONGHOP_LOCK_WAIT`, else 0) and then raises `WarehouseBusy` (exit 2) naming the run in progress.
    """
    cfg = load_tenant(tenant) if isinstance(tenant, str) else tenant
    chosen = list(steps or STEPS)
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        raise TonghopError(f"unknown step(s) {unknown}; steps are: {', '.join(STEPS)}")
    run_id = run_id or new_run_id()
    paths = TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).ensure()
    with controlled(paths, cfg.tenant_id, run_id, "cli", wait=wait) as rc:
        ctx = RunContext(cfg, run_id, only_sources=only_sources)
        report = RunReport(cfg.tenant_id, ctx.run_id, orphans=rc.orphans)
        ordered = [s for s in STEPS if s in chosen]
        rc.start_run(ordered)
        for i, step in enumerate(ordered, 1):
            log.info("[%s] step %d/%d: %s", cfg.tenant_id, i, len(ordered), step)
            rc.start_step(step)
            started = time.perf_counter()
            try:
                result = run_step(ctx, step)
            except TonghopError as exc:
                report.failed_step, report.error = step, str(exc)
                report.published = step == "publish" and _snapshot_run_id(paths) == run_id
                rc.end_step(step, "failed", time.perf_counter() - started, error=str(exc))
                rc.end_run("failed", step=step)
                if isinstance(exc, WarehouseBusy):
                    raise
                return report
            except BaseException as exc:
                # A bug, not a data problem: still recorded as this run's end before it propagates.
                rc.end_step(step, "failed", time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"[:300])
                rc.end_run("failed", step=step)
                raise
            report.results.append(result)
            rc.end_step(step, "success", result.seconds, metrics=result.metrics)
        rc.end_run("ok")
    return report
