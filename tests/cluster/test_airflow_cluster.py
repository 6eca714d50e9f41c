"""Airflow as a cluster: PostgreSQL metadata, the LocalExecutor, scheduler + API server + DAG processor as
separate processes (tests/cluster/airflow_cluster.py), the tenant pools made by `tonghop airflow sync-pools`.

One test, the most expensive kind in the suite: it starts everything once and checks, in order, what a
provincial data centre relies on — the pools are created/repaired/pruned by the deployment code, the tenant
DAG (paused at creation, as Airflow does by default) is unpaused by it, a triggered run goes green with each
task in its own process on the tenant's queue and pool, and the run published the tenant's snapshot.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from pipelines.demo.provinces import write_province
from pipelines.settings import TenantPaths
from tests.cluster.airflow_cluster import create_database, local_cluster

# A generated province with the two sources that exercise every step cheaply (database dossiers with their
# planted faults; a CSV roster): Lạng Sơn (code 20), 65 communes.
PROVINCE = 20
ROWS = 1_500


@pytest.mark.airflow
@pytest.mark.integration
def test_tenant_dag_runs_on_postgres_with_local_executor(tmp_path, postgres_server, monkeypatch, _isolated_home):
    tenants = tmp_path / "tenants"
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    tenant = write_province(PROVINCE, tenants, rows=ROWS, sources=["ho_so", "can_bo"])
    dag_id, run_id, pool, queue = f"tonghop_{tenant}", "cluster_test_1", "warehouse_lang_son", "tonghop_lang_son"
    metadata = create_database(postgres_server.dsn, f"airflow_{uuid.uuid4().hex[:8]}")

    with local_cluster(tmp_path / "airflow", metadata) as cluster:
        assert cluster.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{cluster.api_url}/execution/"
        cluster.wait_for_dags([dag_id])
        assert cluster.api("GET", f"dags/{dag_id}")["is_paused"] is True  # Airflow's default for a new DAG
        # What an operator may have left behind: a tenant pool widened by hand, a pool of a removed tenant.
        cluster.api("POST", "pools", {"name": pool, "slots": 3})
        cluster.api("POST", "pools", {"name": "warehouse_gone", "slots": 1})

        out = cluster.tonghop("airflow", "sync-pools", "--prune", "--unpause").stdout
        assert f"updated {pool} (back to 1 slot)" in out and "removed warehouse_gone" in out, out
        assert f"unpaused 2 DAG(s): tonghop_datamap, {dag_id}" in out, out  # the national map too
        pools = {p["name"]: p["slots"] for p in cluster.api("GET", "pools")["pools"]}
        assert pools[pool] == 1 and "warehouse_gone" not in pools
        assert cluster.api("GET", f"dags/{dag_id}")["is_paused"] is False

        cluster.trigger(dag_id, run_id)
        runs = cluster.wait_for_runs([(dag_id, run_id)], timeout=600)
        tis = cluster.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        scheduler_pid = cluster.procs["scheduler"].pid

    assert runs[(dag_id, run_id)]["state"] == "success", [(t["task_id"], t["state"]) for t in tis]
    assert {t["task_id"]: t["state"] for t in tis} == dict.fromkeys(
        ["extract_load", "validate", "transform", "train", "publish"], "success")
    assert {(t["pool"], t["queue"]) for t in tis} == {(pool, queue)}

    # Each task ran in a process of its own (the LocalExecutor's workers run one task runner per task), none
    # of them this test's or the scheduler's: the pids the run control recorded at each step's start.
    paths = TenantPaths.for_tenant(tenant)
    records = [json.loads(line) for line in paths.run_log.read_text(encoding="utf-8").splitlines()]
    starts = {r["step"]: r["pid"] for r in records if r.get("event") == "step_start" and r["run_id"] == run_id}
    assert set(starts) == {"extract_load", "validate", "transform", "train", "publish"}
    assert len(set(starts.values())) == 5 and not {os.getpid(), scheduler_pid} & set(starts.values())
    assert [r["status"] for r in records if r.get("event") == "run_end" and r["run_id"] == run_id] == ["ok"]

    # The run published the tenant's snapshot: its marts, stamped with this Airflow run's id.
    import duckdb

    with duckdb.connect(str(paths.snapshot), read_only=True) as con:
        assert con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0] == run_id
        assert con.execute("SELECT count(*) FROM marts.ho_so_tuan").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM marts.kpi_tong_quan").fetchone()[0] == 1
