"""The bridge from an Airflow task to a pipeline step: load the tenant, run the step, raise on failure.

Airflow-specific only in that it maps our errors to task failures with readable log lines.
"""

from __future__ import annotations

import logging
import warnings

from pipelines.config import load_tenant
from pipelines.steps import RunContext, run_step

log = logging.getLogger("tonghop.airflow")


def run_task_step(tenant_id: str, step: str, run_id: str) -> dict:
    for noisy in ("great_expectations",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ctx = RunContext(load_tenant(tenant_id), run_id)
    with warnings.catch_warnings():
        # skops inspects every loaded module; Airflow answers each lookup with a deprecation warning.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        result = run_step(ctx, step)
    log.info("[%s] %s done in %.1f s: %s", tenant_id, step, result.seconds, result.metrics)
    return {"seconds": round(result.seconds, 3), **{k: v for k, v in result.metrics.items()
                                                   if isinstance(v, int | float | str)}}
