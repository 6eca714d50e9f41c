"""Tổng Hợp model retraining: one DAG per tenant that lists models, run when its marts change.

`transform` in the tenant's pipeline DAG updates the Asset `tonghop://<tenant>/marts`; this DAG then runs
`train` (every model in the tenant's `models:`) and `publish`, which updates `tonghop://<tenant>/serving`
(this DAG does not listen to that one, so there is no loop). Both tasks hold the tenant's one-slot pool
`warehouse_<tenant>`, so retraining never opens the warehouse while the pipeline writes it. Model versions
are content-addressed, so when the pipeline's own `train` step has already fitted this data, retraining
keeps those versions and only republishes. Tasks call `models.retrain`, like `tonghop train`.
Parse time stays cheap: YAML and pydantic only; scikit-learn is imported inside the task.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG, task

from pipelines.config import load_tenant_file, tenant_files
from pipelines.orchestration import DEFAULT_ARGS, START, tenant_asset


@task
def run_retrain_step(tenant_id: str, step: str, **context) -> dict:
    """Run `train` or `publish` for the tenant in this worker process (metrics visible as XCom)."""
    from models.retrain import run_retrain_step as run_step

    return run_step(tenant_id, step, context["run_id"])


def build_retrain_dag(path: Path) -> DAG | None:
    """The tenant's retraining DAG, or None when the file does not validate (its pipeline DAG reports
    the error) or the tenant lists no models."""
    try:
        cfg = load_tenant_file(path)
    except Exception:  # noqa: BLE001 — any bad file: its pipeline DAG carries the error, other tenants go on
        return None
    if not cfg.models:
        return None
    try:
        return _build(cfg)
    except Exception:  # noqa: BLE001 — e.g. a schedule Airflow refuses: the pipeline DAG reports it
        return None


def _build(cfg) -> DAG:
    with DAG(
        dag_id=f"tonghop_retrain_{cfg.tenant_id}",
        description=f"Retrain the models of {cfg.display_name} when its marts change",
        schedule=[tenant_asset(cfg.tenant_id, "marts")],
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["tonghop", "retrain", cfg.tenant_id],
        doc_md=__doc__,
    ) as dag:
        train = run_retrain_step.override(task_id="train", pool=cfg.pool)(cfg.tenant_id, "train")
        publish = run_retrain_step.override(task_id="publish", pool=cfg.pool,
                                            outlets=[tenant_asset(cfg.tenant_id, "serving")])(cfg.tenant_id, "publish")
        train >> publish
    return dag


for _path in tenant_files():  # TONGHOP_TENANTS_DIR, default tenants/
    _dag = build_retrain_dag(_path)
    if _dag is not None:
        globals()[_dag.dag_id] = _dag
