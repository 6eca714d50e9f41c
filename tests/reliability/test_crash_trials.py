"""Crash trials in CI (a few; `benchmarks/bench_crash.py` runs ≥ 30): a run killed at a random point of a step,
a failing step, a retried Airflow task and two overlapping runs all leave the warehouse and snapshot whole,
and the next run ends with exactly the rows of an uninterrupted run (tests/reliability/crash.py)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys

import duckdb
import pytest

from pipelines import runcontrol
from pipelines.cli import main
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_LGSP_TOKEN
from tests.reliability.crash import STEPS, TENANT, Lab, compare, content_state

pytestmark = pytest.mark.integration
N_KILLS = int(os.environ.get("TONGHOP_CRASH_TRIALS", "3"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory, demo_sources, demo_portals) -> Lab:
    from pipelines.demo.servers import PORT_ENV, TOKEN_ENV

    env = {**os.environ, PORT_ENV: str(demo_portals.server_address[1]), TOKEN_ENV: DEMO_LGSP_TOKEN,
           "TONGHOP_PII_KEY": "test-key-" + "0" * 40, "GX_ANALYTICS_ENABLED": "false", "TONGHOP_LOCK_WAIT": "0"}
    env.pop("TONGHOP_FAULT_AFTER", None)
    return Lab(tmp_path_factory.mktemp("crash"), env).build(demo_sources)


def _assert_clean(r: dict) -> None:
    assert r["corrupt"] == 0 and r["partial"] == 0, r
    assert r["next_exit"] == 0, r["next_summary"]
    assert (r["lost"], r["duplicated"], r["differing"], r["tracebacks"], r["tmp_left"]) == (0, 0, [], 0, 0), r


def test_kill_at_random_points(lab):
    rng = random.Random(7)
    # The loss the issue found: a source changed, the run killed after its load committed (validate); plus
    # the other steps in turn, over changed and unchanged input.
    plan = [("validate", True), ("publish", True), ("extract_load", False), ("train", True), ("transform", False)]
    for i, (step, changed) in enumerate(plan[:N_KILLS]):
        r = lab.kill_trial(f"kill{i}", step, rng, changed)
        _assert_clean(r)
        if r["hit"] in STEPS:  # killed inside a step: the next run found the dead run and said so
            assert r["orphan_reported"], r["next_summary"]


def test_failing_step_after_load_loses_nothing(lab):
    r = lab.fault_trial("fault", "extract_load")
    assert r["exit"] == 1 and r["said_failed"], r
    _assert_clean(r)
    assert "earlier run fault of tenant 'ninh-binh' failed at step 'extract_load'" in r["next_summary"]
    assert "abandoned and their rows are fetched again" in r["next_summary"]


def test_overlapping_runs_one_runs_the_other_exits_2(lab):
    r = lab.overlap_trial("overlap")
    assert r["exactly_one_ran"] and r["busy_message_ok"] and r["tracebacks"] == 0, r
    assert (r["lost"], r["duplicated"], r["differing"]) == (0, 0, []), r


def test_airflow_task_retry_is_idempotent(lab, monkeypatch):
    """Every task of a DAG run run twice with the same run id (a retry) ends as one uninterrupted run."""
    from pipelines.airflow_task import run_task_step

    home = lab.trial_home("airflow", changed=True)
    for k, v in lab.env.items():
        if k.startswith(("TONGHOP", "NB_", "GX_")):
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("TONGHOP_HOME", str(home))
    for step in STEPS:
        first = run_task_step(TENANT, step, "scheduled__2025-12-01")
        again = run_task_step(TENANT, step, "scheduled__2025-12-01")
        assert set(first) == set(again)
    cmp = compare(content_state(home / TENANT / "warehouse.duckdb"), lab.ref["changed"])
    assert (cmp["lost"], cmp["duplicated"], cmp["differing"]) == (0, 0, [])
    assert compare(content_state(home / TENANT / "serving.duckdb"), lab.ref["changed"])["differing"] == []
    ends = [json.loads(x) for x in (home / TENANT / "runs.jsonl").read_text().splitlines()]
    assert [e["status"] for e in ends if e.get("event") == "run_end"
            and e["run_id"] == "scheduled__2025-12-01"][-1] == "ok"


def test_analyst_holding_the_warehouse_gets_a_readable_exit_2(lab, monkeypatch, capsys):
    home = lab.trial_home("analyst", changed=False)
    monkeypatch.setenv("TONGHOP_HOME", str(home))
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); time.sleep(120)", str(home / TENANT / "warehouse.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert main(["run", "--tenant", TENANT]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert f"is open in process {holder.pid}" in err and "close that program's connection" in err, err
    assert "Traceback" not in err and "IOException" not in err


def test_second_run_waits_then_names_the_run_in_progress(tmp_path, monkeypatch, capsys):
    """The lock itself (no pipeline): a holder in another process; --wait 0.5 then exit 2 with its run id."""
    monkeypatch.setenv("TONGHOP_HOME", str(tmp_path / "home"))
    paths = TenantPaths.for_tenant(TENANT).ensure()
    code = ("import sys, time; from pipelines.runcontrol import WriterLock; from pipelines.settings import "
            "TenantPaths; WriterLock(TenantPaths.for_tenant('ninh-binh'), 'ninh-binh', 'run-A').acquire(); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "TONGHOP_HOME": str(tmp_path / "home")})
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["run", "--tenant", TENANT, "--wait", "0.5"]) == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert f"run run-A of tenant '{TENANT}' is in progress since" in err and f"(pid {holder.pid} on" in err
    assert "(waited 0.5 s)" in err and "Traceback" not in err
    # The holder is gone: the kernel released its lock, the next taker gets it at once.
    lock = runcontrol.WriterLock(paths, TENANT, "run-B").acquire(0)
    lock.release()


def test_watermark_counts_promoted_batches_only(tmp_path):
    from pipelines.load import stored_watermark

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA meta; CREATE TABLE meta.loads (batch_id VARCHAR, source VARCHAR, status VARCHAR, "
                "watermark VARCHAR, loaded_at TIMESTAMPTZ)")
    src = type("S", (), {"name": "ho_so"})()
    rows = [("a", "passed", "2025-10-01"), ("b", "unchanged", "2025-10-01"), ("c", "loaded", "2025-11-01"),
            ("d", "unchanged", "2025-11-01"), ("e", "blocked", "2025-11-02"), ("f", "abandoned", "2025-11-03")]
    for i, (b, status, wm) in enumerate(rows):
        con.execute("INSERT INTO meta.loads VALUES (?, 'ho_so', ?, ?, TIMESTAMPTZ '2025-11-01' + to_hours(?))",
                    [b, status, wm, i])
    # `c` was never validated (its run died); `d` carried its watermark forward: neither counts.
    assert stored_watermark(con, src, "new") == "2025-10-01"
    con.execute("UPDATE meta.loads SET status = 'passed' WHERE batch_id = 'c'")
    assert stored_watermark(con, src, "new") == "2025-11-01"


def test_leftover_snapshot_temp_files_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    snap = tmp_path / "serving.duckdb"
    left = [tmp_path / f".serving.duckdb.{dead}.tmp", tmp_path / f".serving.duckdb.{dead}.tmp.wal"]
    mine = tmp_path / f".serving.duckdb.{os.getppid()}.tmp"  # a live process's file stays
    for p in [*left, mine]:
        p.write_bytes(b"x")
    assert sorted(runcontrol.remove_dead_temp_files(snap)) == sorted(left)
    assert mine.exists() and not any(p.exists() for p in left)
    shutil.rmtree(tmp_path, ignore_errors=True)
