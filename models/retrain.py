"""Retraining outside the daily pipeline: `train` then `publish`, for all of a tenant's models or one of them.

The retraining DAG (`tonghop_retrain_<tenant>` in dags/tonghop.py: triggered, or on `retrain_schedule`) and `tonghop train` both call these functions, which go
through the same `pipelines.steps` as a full run, so the step is timed and recorded in `meta.step_runs`.
Versions are content-addressed: when the data has not changed since the pipeline's own `train` step,
each model finds its version already recorded and keeps it instead of fitting again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models import REGISTRY
from pipelines.config import load_tenant
from pipelines.errors import ConfigError

if TYPE_CHECKING:
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

    return run(tenant_for(tenant_id, model), steps=list(RETRAIN_STEPS), run_id=run_id)


def run_retrain_step(tenant_id: str, step: str, run_id: str) -> dict:
    """One step of the retraining DAG in an Airflow worker: same bridge as the pipeline's tasks."""
    from pipelines.airflow_task import run_task_step

    if step not in RETRAIN_STEPS:
        raise ConfigError(f"retraining runs only {', '.join(RETRAIN_STEPS)}, not '{step}'")
    return run_task_step(tenant_id, step, run_id)
