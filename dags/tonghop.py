"""Tổng Hợp: one factory, every DAG of every tenant file in `tenants/` (`TONGHOP_TENANTS_DIR`).

Each tenant file is read and checked ONCE per parse and yields:

* `tonghop_<tenant>` — the pipeline: extract_load → validate → transform → train → publish. Tasks only call
  `pipelines.steps` (the same functions as `tonghop run`). `transform` announces the Asset
  `tonghop://<tenant>/marts`, `publish` the Asset `tonghop://<tenant>/serving` (for downstream consumers,
  e.g. open data). Scheduled by the tenant's `schedule` at its local `timezone` (02:00 Asia/Ho_Chi_Minh is
  02:00 in Vietnam, not UTC). A tenant with an `open_data:` plan has a last task, `open_data`
  (`pipelines.publish.opendata.run_open_data_task`), skipped when no open dataset's content changed.
* `tonghop_retrain_<tenant>` (tenants that list `models:`) — train → publish, run by hand (`Trigger`) or on
  the tenant's own `retrain_schedule` (cron, local time). It listens to NO Asset: the pipeline's own `train`
  step already fits every model on the data it just transformed, so a retrain fired by the pipeline's marts
  would repeat train + publish after every run for nothing (model versions are content-addressed: same
  data, same versions). Retraining on its own is for a changed model or parameters, or a tenant whose
  pipeline runs rarely; `tonghop train` does the same from the command line.

Every task retries infrastructure failures (2 retries) but fails at once on a failed expectation or a bad
tenant file (`run_step_failing_fast`), and has `weight_rule="upstream"`: a started tenant run finishes
before another starts (docs/performance.md "Tenants at scale").

Every task holds the tenant's one-slot pool `warehouse_<tenant>`, so two writers never open the same
warehouse and a province never holds more than one executor slot; and it goes to the tenant's own queue
`tonghop_<tenant>` (Celery workers take from their queues in turn: one province's backlog cannot starve
another's). Pools are created by `tonghop airflow sync-pools` (pipelines/airflow_admin.py), not here:
DAG files must not touch the metadata database. A tenant file that does not validate (or fails in any other way) yields a one-task pipeline DAG
that fails with the one-line error, so the problem shows in the UI instead of silently dropping the tenant —
and never takes the other tenants' DAGs with it. Parse time stays cheap: YAML and pydantic only; pipeline
and model code (DuckDB, Great Expectations, scikit-learn) are imported inside the tasks.
"""

from __future__ import annotations

import re
from pathlib import Path

from airflow.sdk import DAG, task

from pipelines.airflow_admin import executor_config, tenant_queue
from pipelines.config import load_tenant_file, tenant_files
from pipelines.errors import ConfigError
from pipelines.orchestration import DEFAULT_ARGS, START, tenant_asset, tenant_schedule, tenant_start
from pipelines.redact import redact

STEPS = ("extract_load", "validate", "transform", "train", "publish")


# Started runs finish first: a task's priority is its own weight plus its upstream tasks' (extract_load 1 …
# publish 5), so when a slot frees the scheduler takes a started tenant's next step before another tenant's
# first one, and tenants complete one after another instead of all at the end (docs/performance.md).
WEIGHT_RULE = "upstream"
# Errors that a retry cannot fix: fail the task at once, whatever its retries (a failed expectation, a bad
# tenant file). Everything else — an expired task token, a lost worker, a source briefly down, a warehouse
# held by a CLI run — is retried (DEFAULT_ARGS), `validate` included.


def run_step_failing_fast(tenant_id: str, step: str, run_id: str) -> dict:
    """`run_task_step`, with a data or configuration failure raised as AirflowFailException (no retry)."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipelines.airflow_task import run_task_step
    from pipelines.errors import ConfigError, ValidationBlocked

    try:
        return run_task_step(tenant_id, step, run_id)
    except (ValidationBlocked, ConfigError) as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from None


@task
def run_pipeline_step(tenant_id: str, step: str, **context) -> dict:
    """Run one pipeline step in this worker process and return its metrics (visible as XCom)."""
    return run_step_failing_fast(tenant_id, step, context["run_id"])


@task
def run_retrain_step(tenant_id: str, step: str, **context) -> dict:
    """Run `train` or `publish` for the tenant in this worker process (metrics visible as XCom)."""
    from models.retrain import run_retrain_step as run_step

    return run_step(tenant_id, step, context["run_id"])


@task
def publish_open_data(tenant_id: str, **context) -> dict:
    """Open data after `publish` (pipelines/publish/opendata.py), then the database catalogue and the CKAN push:
    skipped when no open dataset changed (a skipped task announces no `open_data` Asset event)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from pipelines.publish.opendata import run_open_data_task

    result = run_open_data_task(tenant_id, context["run_id"])
    if result["status"] == "skipped":
        raise AirflowSkipException(result["message"])
    return result


@task(retries=0)
def report_config_error(message: str) -> None:
    raise ConfigError(message)


def build_dags(path: Path) -> list[DAG]:
    """The tenant's pipeline DAG and, when it lists models, its retraining DAG; a bad file: one failing DAG."""
    try:
        cfg = load_tenant_file(path)
        dags = [_pipeline(cfg)]
        if cfg.models:
            dags.append(_retrain(cfg))
        return dags
    except Exception as exc:  # noqa: BLE001 — one bad file must not empty the DagBag for every tenant
        return [_broken(path, exc)]


def build_dag(path: Path) -> DAG:
    """The tenant's pipeline DAG (or its failing stand-in)."""
    return build_dags(path)[0]


def _broken(path: Path, exc: Exception) -> DAG:
    message = str(exc) if isinstance(exc, ConfigError) else f"{path}: {type(exc).__name__}: {exc}"
    # the dag_id comes from the file name: keep it to the characters Airflow accepts
    with DAG(dag_id=f"tonghop_{re.sub(r'[^A-Za-z0-9_.-]', '_', path.stem)[:200]}", schedule=None,
             start_date=START, catchup=False, tags=["tonghop", "config-error"], default_args=DEFAULT_ARGS,
             doc_md=__doc__) as broken:
        report_config_error(redact(message.splitlines()[0] if message else type(exc).__name__)[:1000])
    return broken


def _tenant_dag(cfg, dag_id: str, description: str, cron: str | None, tag: str) -> DAG:
    """What both of a tenant's DAGs share: its local-time schedule, one active run, tags, retries."""
    return DAG(dag_id=dag_id, description=description, schedule=tenant_schedule(cron, cfg.timezone),
               start_date=tenant_start(cfg.timezone), catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
               tags=["tonghop", tag, cfg.tenant_id], doc_md=__doc__)


def _pipeline(cfg) -> DAG:
    with _tenant_dag(cfg, f"tonghop_{cfg.tenant_id}", f"Pipeline of {cfg.display_name}", cfg.schedule,
                     cfg.kind) as dag:
        previous, queue, pod = None, tenant_queue(cfg.tenant_id), executor_config(cfg.tenant_id)
        for step in STEPS:
            outlets = {"publish": [tenant_asset(cfg.tenant_id, "serving")],
                       "transform": [tenant_asset(cfg.tenant_id, "marts")]}.get(step, [])
            # Every step retries infrastructure failures; a failed expectation fails at once (run_step_failing_fast).
            current = run_pipeline_step.override(task_id=step, pool=cfg.pool, queue=queue, outlets=outlets,
                                                 weight_rule=WEIGHT_RULE, executor_config=pod)(cfg.tenant_id, step)
            if previous is not None:
                previous >> current
            previous = current
        if cfg.open_data is not None:  # reads the snapshot only; the pool keeps it behind this tenant's writers
            previous >> publish_open_data.override(task_id="open_data", pool=cfg.pool, queue=queue,
                                                   weight_rule=WEIGHT_RULE, executor_config=pod,
                                                   outlets=[tenant_asset(cfg.tenant_id, "open_data")])(cfg.tenant_id)
    return dag


def _retrain(cfg) -> DAG:
    with _tenant_dag(cfg, f"tonghop_retrain_{cfg.tenant_id}",
                     f"Retrain the models of {cfg.display_name} (by hand or on its retrain_schedule)",
                     cfg.retrain_schedule, "retrain") as dag:
        queue, pod = tenant_queue(cfg.tenant_id), executor_config(cfg.tenant_id)
        train = run_retrain_step.override(task_id="train", pool=cfg.pool, queue=queue, weight_rule=WEIGHT_RULE,
                                          executor_config=pod)(cfg.tenant_id, "train")
        publish = run_retrain_step.override(task_id="publish", pool=cfg.pool, queue=queue, weight_rule=WEIGHT_RULE,
                                            executor_config=pod,
                                            outlets=[tenant_asset(cfg.tenant_id, "serving")])(cfg.tenant_id, "publish")
        train >> publish
    return dag


for _path in tenant_files():
    for _dag in build_dags(_path):
        globals()[_dag.dag_id] = _dag
