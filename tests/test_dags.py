"""DAG integrity (parametrised over the DagBag) and a real Airflow run of the demo tenant's DAG."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_ROWS, DEMO_TENANT, dags_module, project_path, warehouse_state

MINISTRY = "bo-khoa-hoc-cong-nghe"

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
                                            + [f"tonghop_retrain_{t}" for t in _tenants(with_models=True)]
                                            + ["tonghop_datamap"])  # dags/tonghop_datamap.py: the national map


def test_one_pipeline_run_trains_and_publishes_once(dagbag):
    """The retraining DAG is run by hand (or on the tenant's own `retrain_schedule`): no DAG is scheduled on an
    Asset a pipeline task announces, so a pipeline run never queues a second train + publish."""
    emitted = {a.uri for dag_id, dag in dagbag.dags.items() if "retrain" not in dag.tags
               for t in dag.tasks for a in t.outlets}
    assert f"tonghop://{DEMO_TENANT}/marts" in emitted and f"tonghop://{DEMO_TENANT}/serving" in emitted
    for dag_id, dag in dagbag.dags.items():
        if dag_id == "tonghop_datamap":  # rebuilds the national map after tenants publish: by design, no training
            continue
        listens = _asset_uris(getattr(dag.timetable, "asset_condition", None))
        assert not listens & emitted, f"{dag_id} is scheduled on {listens & emitted}, which a pipeline run updates"
    for tenant in _tenants(with_models=True):
        dag = dagbag.dags[f"tonghop_retrain_{tenant}"]
        assert dag.schedule is None  # by hand, unless the tenant file sets `retrain_schedule`
        assert [t.task_id for t in dag.topological_sort()] == ["train", "publish"]
        assert [a.uri for a in dag.get_task("publish").outlets] == [f"tonghop://{tenant}/serving"]


def _asset_uris(condition) -> set[str]:
    """Every Asset URI in a DAG's schedule condition (AssetAll / AssetAny nest), none for a time schedule."""
    if condition is None:
        return set()
    if hasattr(condition, "uri"):
        return {condition.uri}
    return set().union(*(_asset_uris(c) for c in getattr(condition, "objects", [])))


def test_asset_uris_sees_an_asset_schedule():
    """The check above cannot pass by not seeing: an Asset-scheduled DAG (the old retraining DAG) is caught."""
    from airflow.sdk import DAG

    from pipelines.orchestration import tenant_asset

    old = DAG("old_retrain", schedule=[tenant_asset(DEMO_TENANT, "marts")])
    assert _asset_uris(old.timetable.asset_condition) == {f"tonghop://{DEMO_TENANT}/marts"}


def _next_run(dag, after):
    """When the scheduler would start the run following one at `after`: the DAG as the scheduler sees it
    (serialised and read back into Airflow's core timetable)."""
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.timetables.base import DataInterval, TimeRestriction

    timetable = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable
    info = timetable.next_dagrun_info(last_automated_data_interval=DataInterval(after, after),
                                      restriction=TimeRestriction(earliest=None, latest=None, catchup=True))
    return info.run_after


def test_schedules_fire_at_the_tenants_local_time(dagbag):
    """`0 2 * * *` with `timezone: Asia/Ho_Chi_Minh` is 02:00 in Vietnam = 19:00 UTC the day before."""
    import pendulum

    dag = dagbag.dags[f"tonghop_{DEMO_TENANT}"]
    after = pendulum.datetime(2026, 3, 10, 12, 0, tz="UTC")  # 19:00 on 10 March in Vietnam
    run = _next_run(dag, after)
    assert run == pendulum.datetime(2026, 3, 11, 2, 0, tz="Asia/Ho_Chi_Minh")
    assert run == pendulum.datetime(2026, 3, 10, 19, 0, tz="UTC")
    # the ministry: "30 1 * * *" → 01:30 in Vietnam
    ministry = _next_run(dagbag.dags[f"tonghop_{MINISTRY}"], after)
    assert ministry == pendulum.datetime(2026, 3, 11, 1, 30, tz="Asia/Ho_Chi_Minh")
    assert str(dag.timezone) == "Asia/Ho_Chi_Minh"


def test_retrain_schedule_is_the_tenants_own_cron_in_local_time(tmp_path, monkeypatch):
    import pendulum

    dags = dags_module()
    text = project_path("tenants", f"{DEMO_TENANT}.yaml").read_text(encoding="utf-8")
    tenant = tmp_path / f"{DEMO_TENANT}.yaml"
    tenant.write_text(text + '\nretrain_schedule: "0 3 * * 0"\n', encoding="utf-8")
    pipeline, retrain = dags.build_dags(tenant)
    assert retrain.dag_id == f"tonghop_retrain_{DEMO_TENANT}"
    after = pendulum.datetime(2026, 3, 10, 12, 0, tz="UTC")  # a Tuesday
    assert _next_run(retrain, after) == pendulum.datetime(2026, 3, 15, 3, 0, tz="Asia/Ho_Chi_Minh")  # Sunday

    tenant.write_text(text + '\nretrain_schedule: "weekly"\n', encoding="utf-8")
    broken = dags.build_dags(tenant)
    assert [d.dag_id for d in broken] == [f"tonghop_{DEMO_TENANT}"] and "config-error" in broken[0].tags
    assert "retrain_schedule" in broken[0].get_task("report_config_error").op_args[0]


def test_every_dag_has_tags_retries_pool_and_asset(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.catchup is False
        if dag_id == "tonghop_datamap":  # national, writes no tenant warehouse: no pool (tests/publish)
            continue
        pools = {t.pool for t in dag.tasks}
        assert len(pools) == 1 and next(iter(pools)).startswith("warehouse_"), pools
        # one queue per tenant (Celery workers take from the tenants' queues in turn): tonghop_<tenant>
        assert {t.queue for t in dag.tasks} == {"tonghop_" + next(iter(pools)).removeprefix("warehouse_")}
        for task in dag.tasks:
            # validate too: a failed expectation fails at once (AirflowFailException), an expired token is retried
            expected = 0 if task.task_id == "report_config_error" else 2
            assert task.retries == expected, f"{dag_id}.{task.task_id} retries={task.retries}"
        if "retrain" in dag.tags:
            continue  # its shape: test_one_pipeline_run_trains_and_publishes_once
        publish = dag.get_task("publish")
        assert [a.uri for a in publish.outlets] == [f"tonghop://{dag_id.removeprefix('tonghop_')}/serving"]
        from pipelines.config import load_tenant

        open_data = ["open_data"] if load_tenant(dag_id.removeprefix("tonghop_")).open_data else []
        assert [t.task_id for t in dag.topological_sort()] == [
            "extract_load", "validate", "transform", "train", "publish", *open_data]


def test_broken_tenant_file_becomes_a_failing_dag(tmp_path, monkeypatch):
    """A bad tenant file shows up in Airflow as a failing DAG carrying the config error, not a vanished tenant."""
    tonghop_tenants = dags_module()
    bad = tmp_path / "ha-noi.yaml"
    bad.write_text("tenant_id: ha-noi\nkind: city\n", encoding="utf-8")
    dag = tonghop_tenants.build_dag(bad)
    assert dag.dag_id == "tonghop_ha-noi" and "config-error" in dag.tags
    assert [t.task_id for t in dag.tasks] == ["report_config_error"]


def _airflow(airflow_home: Path, pool: str):
    """A fresh Airflow home (SQLite metadata migrated once per session, the tenant's pool) and a runner for
    `airflow <args>`."""
    env = {**os.environ, **AIRFLOW_ENV, "AIRFLOW_HOME": str(airflow_home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    airflow = shutil.which("airflow", path=env["PATH"])

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0 or not check, (proc.stdout + proc.stderr)[-4000:]
        return proc

    run("pools", "set", pool, "1", "test")
    return run


def _run_states(airflow, dag_id: str) -> list[str]:
    out = airflow("dags", "list-runs", dag_id, "-o", "json").stdout
    start = out.find("[{")  # log lines before the JSON start with "[" too; no run: no record at all
    return [r["state"] for r in json.loads(out[start:])] if start >= 0 else []


@pytest.mark.airflow
def test_demo_dag_runs_green_through_airflow(airflow_home, demo_tenant, _isolated_home):
    """`airflow dags test` runs all five tasks in-process on SQLite metadata; the snapshot appears."""
    airflow = _airflow(airflow_home, demo_tenant.pool)
    airflow("dags", "test", f"tonghop_{DEMO_TENANT}")
    assert _run_states(airflow, f"tonghop_{DEMO_TENANT}") == ["success"]
    snapshot = _isolated_home / DEMO_TENANT / "serving.duckdb"
    state = warehouse_state(snapshot)
    assert state["marts.kpi_tong_quan"][0] == 1
    assert state["marts.ho_so_nguy_co_qua_han"][0] > 0
    assert not any(name.startswith("raw.") for name in state)
    pipeline_run = _snapshot_run_id(snapshot)
    assert _run_states(airflow, f"tonghop_retrain_{DEMO_TENANT}") == []  # the pipeline run queued no retraining

    # The retraining DAG, triggered by hand, runs green in Airflow: same data, code and parameters, so the
    # content-addressed model versions are kept and nothing is refitted — its `publish` then has nothing new
    # to publish and leaves the pipeline run's snapshot in place (cost follows change).
    versions = _model_versions(snapshot)
    before = snapshot.read_bytes()
    airflow("dags", "test", f"tonghop_retrain_{DEMO_TENANT}")
    assert _run_states(airflow, f"tonghop_retrain_{DEMO_TENANT}") == ["success"]
    assert _snapshot_run_id(snapshot) == pipeline_run and snapshot.read_bytes() == before
    assert _model_versions(snapshot) == versions and len(versions) == 4


@pytest.fixture
def ministry_tenant(tmp_path_factory, demo_portals, monkeypatch):
    """The ministry's demo sources (3,000 rows) in this test's home, its API reachable with its key."""
    from pipelines.config import load_tenant
    from pipelines.demo.ministry import api as ministry_api
    from pipelines.demo.ministry import generate_ministry
    from pipelines.demo.servers import PORT_ENV
    from pipelines.settings import TenantPaths

    monkeypatch.setenv(PORT_ENV, str(demo_portals.server_address[1]))
    monkeypatch.setenv(ministry_api.TOKEN_ENV, demo_portals.ministry_token)
    sources = tmp_path_factory.mktemp("ministry_sources")
    generate_ministry(sources, rows=DEMO_ROWS, seed=37)
    cfg = load_tenant(MINISTRY)
    shutil.copytree(sources, TenantPaths.for_tenant(MINISTRY).ensure().sources, dirs_exist_ok=True)
    return cfg


@pytest.mark.airflow
def test_ministry_dag_runs_green_through_airflow(airflow_home, ministry_tenant, _isolated_home):
    """The second tenant (a ministry: API, provincial Excel reports, its own tenant models) through Airflow:
    all five tasks green, a snapshot with the shared-contract marts and its own marts; no retraining DAG."""
    airflow = _airflow(airflow_home, ministry_tenant.pool)
    airflow("dags", "test", f"tonghop_{MINISTRY}")
    assert _run_states(airflow, f"tonghop_{MINISTRY}") == ["success"]
    state = warehouse_state(_isolated_home / MINISTRY / "serving.duckdb")
    assert state["marts.kpi_tong_quan"][0] == 1 and state["marts.ho_so_tuan"][0] > 0  # core marts (contract)
    assert state["marts.tan_so_theo_tinh"][0] > 0  # the ministry's own tenant model
    assert state["staging.ho_so"][0] > 0
    assert "marts.ho_so_nguy_co_qua_han" not in state  # it runs no overdue_risk model
    assert not any(name.startswith("raw.") for name in state)
    assert state["meta.snapshot"][0] == 1


def _snapshot_run_id(snapshot: Path) -> str:
    import duckdb

    with duckdb.connect(str(snapshot), read_only=True) as con:
        return con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0]


def _model_versions(snapshot: Path) -> list[tuple[str, str]]:
    import duckdb

    with duckdb.connect(str(snapshot), read_only=True) as con:
        return con.execute("SELECT model_name, model_version FROM meta.models ORDER BY ALL").fetchall()
