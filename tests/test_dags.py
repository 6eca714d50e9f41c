"""DAG integrity (parametrised over the DagBag) and a real Airflow run of the demo tenant's DAG."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_TENANT, project_path, warehouse_state

AIRFLOW_ENV = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(project_path("dags")),
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    saved = {k: os.environ.get(k) for k in [*AIRFLOW_ENV, "AIRFLOW_HOME"]}
    os.environ.update(AIRFLOW_ENV, AIRFLOW_HOME=str(home))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project_path("dags")))
    yield bag
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def _tenants(with_models: bool = False) -> list[str]:
    from pipelines.config import load_all

    return sorted(t.tenant_id for t in load_all(project_path("tenants")) if t.models or not with_models)


def test_one_dag_per_tenant(dagbag):
    """A pipeline DAG per tenant, plus a retraining DAG per tenant that lists models (the ministry lists none)."""
    assert sorted(dagbag.dag_ids) == sorted([f"tonghop_{t}" for t in _tenants()]
                                            + [f"tonghop_retrain_{t}" for t in _tenants(with_models=True)])


def test_retrain_dag_runs_on_marts_and_republishes(dagbag):
    """Scheduled on the marts asset `transform` emits, never on the serving asset it emits itself (no loop)."""
    for tenant in _tenants(with_models=True):
        dag = dagbag.dags[f"tonghop_retrain_{tenant}"]
        pipeline = dagbag.dags[f"tonghop_{tenant}"]
        assert [a.uri for a in pipeline.get_task("transform").outlets] == [f"tonghop://{tenant}/marts"]
        assert {a.uri for a in _scheduled_on(dag)} == {f"tonghop://{tenant}/marts"}
        assert [t.task_id for t in dag.topological_sort()] == ["train", "publish"]
        assert [a.uri for a in dag.get_task("publish").outlets] == [f"tonghop://{tenant}/serving"]


def _scheduled_on(dag):
    return list(dag.timetable.asset_condition.objects)


def test_every_dag_has_tags_retries_pool_and_asset(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.catchup is False
        pools = {t.pool for t in dag.tasks}
        assert len(pools) == 1 and next(iter(pools)).startswith("warehouse_"), pools
        for task in dag.tasks:
            expected = 0 if task.task_id == "validate" else 2  # validation failures are data, not flakiness
            assert task.retries == expected, f"{dag_id}.{task.task_id} retries={task.retries}"
        if "retrain" in dag.tags:
            continue  # its shape: test_retrain_dag_runs_on_marts_and_republishes
        publish = dag.get_task("publish")
        assert [a.uri for a in publish.outlets] == [f"tonghop://{dag_id.removeprefix('tonghop_')}/serving"]
        assert [t.task_id for t in dag.topological_sort()] == [
            "extract_load", "validate", "transform", "train", "publish"]


def test_broken_tenant_file_becomes_a_failing_dag(tmp_path, monkeypatch):
    """A bad tenant file shows up in Airflow as a failing DAG carrying the config error, not a vanished tenant."""
    sys.path.insert(0, str(project_path("dags")))
    try:
        import tonghop_tenants
    finally:
        sys.path.remove(str(project_path("dags")))
    bad = tmp_path / "ha-noi.yaml"
    bad.write_text("tenant_id: ha-noi\nkind: city\n", encoding="utf-8")
    dag = tonghop_tenants.build_dag(bad)
    assert dag.dag_id == "tonghop_ha-noi" and "config-error" in dag.tags
    assert [t.task_id for t in dag.tasks] == ["report_config_error"]


@pytest.mark.airflow
def test_demo_dag_runs_green_through_airflow(tmp_path, demo_tenant, _isolated_home):
    """`airflow dags test` runs all five tasks in-process on SQLite metadata; the snapshot appears."""
    home = tmp_path / "airflow"
    env = {**os.environ, **AIRFLOW_ENV, "AIRFLOW_HOME": str(home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    airflow = shutil.which("airflow", path=env["PATH"])
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([airflow, "pools", "set", "warehouse_ninh_binh", "1", "test"], env=env, check=True,
                   capture_output=True, timeout=120)
    proc = subprocess.run([airflow, "dags", "test", f"tonghop_{DEMO_TENANT}"], env=env, capture_output=True,
                          text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    runs = subprocess.run([airflow, "dags", "list-runs", f"tonghop_{DEMO_TENANT}", "-o", "json"], env=env,
                          check=True, capture_output=True, text=True, timeout=120)
    states = [r["state"] for r in json.loads(runs.stdout[runs.stdout.index("[{"):])]
    assert states == ["success"], states
    snapshot = _isolated_home / DEMO_TENANT / "serving.duckdb"
    state = warehouse_state(snapshot)
    assert state["marts.kpi_tong_quan"][0] == 1
    assert state["marts.ho_so_nguy_co_qua_han"][0] > 0
    assert not any(name.startswith("raw.") for name in state)
    pipeline_run = _snapshot_run_id(snapshot)

    # The retraining DAG (scheduled on the marts Asset `transform` just updated) also runs green in Airflow:
    # same data, so the content-addressed model versions are kept, and its `publish` replaces the snapshot.
    versions = _model_versions(snapshot)
    proc = subprocess.run([airflow, "dags", "test", f"tonghop_retrain_{DEMO_TENANT}"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    runs = subprocess.run([airflow, "dags", "list-runs", f"tonghop_retrain_{DEMO_TENANT}", "-o", "json"], env=env,
                          check=True, capture_output=True, text=True, timeout=120)
    assert [r["state"] for r in json.loads(runs.stdout[runs.stdout.index("[{"):])] == ["success"]
    assert _snapshot_run_id(snapshot) != pipeline_run
    assert _model_versions(snapshot) == versions and len(versions) == 4


def _snapshot_run_id(snapshot: Path) -> str:
    import duckdb

    with duckdb.connect(str(snapshot), read_only=True) as con:
        return con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0]


def _model_versions(snapshot: Path) -> list[tuple[str, str]]:
    import duckdb

    with duckdb.connect(str(snapshot), read_only=True) as con:
        return con.execute("SELECT model_name, model_version FROM meta.models ORDER BY ALL").fetchall()
