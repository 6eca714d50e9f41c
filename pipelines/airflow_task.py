"""The bridge from an Airflow task to a pipeline step: load the tenant, run the step, raise on failure.

Airflow-specific only in that it maps our errors to task failures with readable log lines. Each task
process goes through `pipelines.runcontrol` like `tonghop run` does: it takes the tenant's writer lock for
its step (waiting for a CLI run in progress, up to `TONGHOP_LOCK_WAIT` or 600 s, then failing with the
run it waited for), resolves runs that died, and records the step — the first task seen of a DAG run
records the run's start, `publish` (or a failing step) its end. A retry of a task (same run id) resumes
the run: every step is idempotent for its run id.
"""

from __future__ import annotations

import logging
import time
import warnings

from pipelines.config import load_tenant
from pipelines.errors import TonghopError
from pipelines.redact import install_log_redaction
from pipelines.runcontrol import controlled
from pipelines.steps import STEPS, RunContext, run_step

log = logging.getLogger("tonghop.airflow")


def run_task_step(tenant_id: str, step: str, run_id: str, last_step: str = STEPS[-1]) -> dict:
    install_log_redaction()  # task log lines never carry a secret
    for noisy in ("great_expectations",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = load_tenant(tenant_id)
    ctx = RunContext(cfg, run_id)
    with controlled(ctx.paths, cfg.tenant_id, run_id, "airflow") as rc:
        for orphan in rc.orphans:
            log.warning("[%s] earlier %s", tenant_id, orphan.sentence(tenant_id))
        if not rc.has_started():
            rc.start_run([s for s in STEPS if STEPS.index(s) >= STEPS.index(step)] if step in STEPS else [step])
        rc.start_step(step)
        started = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # skops inspects every loaded module; Airflow answers each lookup with a deprecation warning.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                result = run_step(ctx, step)
        except BaseException as exc:
            text = str(exc) if isinstance(exc, TonghopError) else f"{type(exc).__name__}: {exc}"[:300]
            rc.end_step(step, "failed", time.perf_counter() - started, error=text)
            rc.end_run("failed", step=step)
            raise
        rc.end_step(step, "success", result.seconds, metrics=result.metrics)
        if step == last_step:
            rc.end_run("ok")
    log.info("[%s] %s done in %.1f s: %s", tenant_id, step, result.seconds, result.metrics)
    return {"seconds": round(result.seconds, 3), **{k: v for k, v in result.metrics.items()
                                                   if isinstance(v, int | float | str)}}
