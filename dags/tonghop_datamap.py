"""The national data map: `tonghop_datamap` rebuilds it whenever any tenant publishes.

Scheduled on Assets (any of them): each tenant's `tonghop://<tenant>/serving` (the pipeline's `publish`
task) and `tonghop://<tenant>/open_data` (its open-data publication). The task only calls
`pipelines.publish.datamap.build` — the same function as `tonghop datamap build`; a rebuild of unchanged
catalogues writes nothing and keeps the map's version. One active run at a time: two tenants publishing
together queue one rebuild after the other instead of racing on the output folder.
"""

from __future__ import annotations

from airflow.sdk import DAG, AssetAny, task

from pipelines.config import load_tenant_file, tenant_files
from pipelines.orchestration import DEFAULT_ARGS, START, tenant_asset


@task
def build_datamap() -> dict:
    from pipelines.publish.datamap import build

    result = build()
    print(result.summary())
    return {"version": result.version, "changed": result.changed, "units": result.n_units,
            "databases": result.n_databases, "datasets": result.n_datasets, "duplicates": result.n_duplicates}


def _tenant_ids() -> list[str]:
    ids = []
    for path in tenant_files():
        try:
            ids.append(load_tenant_file(path).tenant_id)
        except Exception:  # noqa: BLE001 — a broken tenant file shows in its own DAG (dags/tonghop.py)
            continue
    return ids


def build_dag() -> DAG | None:
    assets = [tenant_asset(t, product) for t in _tenant_ids() for product in ("serving", "open_data")]
    if not assets:
        return None
    with DAG(dag_id="tonghop_datamap", description="Vietnam data map: every tenant's published catalogues merged",
             schedule=AssetAny(*assets), start_date=START, catchup=False, max_active_runs=1,
             default_args=DEFAULT_ARGS, tags=["tonghop", "datamap"], doc_md=__doc__) as dag:
        build_datamap()
    return dag


datamap_dag = build_dag()
