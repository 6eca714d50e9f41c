"""Crash trials in CI (a few; `benchmarks/bench_crash.py` runs ≥ 30): a run killed inside a chosen step, a
failing step, a retried Airflow task and overlapping runs all leave the warehouse and snapshot whole, and the
next run ends with exactly the rows of an uninterrupted run (tests/reliability/crash.py).

One lab per module (1,000 demo dossiers, its own demo portals): a baseline run and one reference run, in this
process; each trial copies the baseline. Only the runs that are killed or overlap are subprocesses.
"""

from __future__ import annotations

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
from tests.reliability.crash import LAB_ROWS, STEPS, TENANT, Lab

pytestmark = pytest.mark.integration
LAB_TOKEN = "test-lgsp-token"
# CI kills one run inside each step (~15 s a trial); within the first half of the step's time in the reference run
# so that a faster machine at kill time still finds the step running (the benchmark draws from 2-90 %).
WITHIN = (0.05, 0.5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    from pipelines.demo.servers import PORT_ENV, TOKEN_ENV, serve_demo_portals

    server, thread = serve_demo_portals(0, rows=LAB_ROWS, seed=37, token=LAB_TOKEN)
    env = {PORT_ENV: str(server.server_address[1]), TOKEN_ENV: LAB_TOKEN, "TONGHOP_LOCK_WAIT": "0",
           "TONGHOP_PII_KEY": "test-key-" + "0" * 40, "GX_ANALYTICS_ENABLED": "false"}
    os.environ.pop("TONGHOP_FAULT_AFTER", None)
    try:
        yield Lab(tmp_path_factory.mktemp("crash"), env).build()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _assert_clean(r: dict) -> None:
    assert r["corrupt"] == 0 and r["partial"] == 0, r
    assert r["next_ok"], r["next_summary"]
    assert (r["lost"], r["duplicated"], r["differing"], r["tracebacks"], r["tmp_left"]) == (0, 0, [], 0, 0), r


@pytest.mark.parametrize("step", STEPS)
def test_kill_inside_a_step_after_a_source_changed(lab, step):
    """SIGKILL a seeded random delay after `step` started: invariants (a)-(d), and the next run names the dead run."""
    r = lab.kill_trial(f"kill_{step}", step, random.Random(f"ci-{step}"), changed=True, within=WITHIN)
    assert r["hit"] == step, f"the kill landed in {r['hit']}, not in {step}: {r}"
    assert r["killed_exit"] == -9, r
    _assert_clean(r)
    assert r["orphan_reported"], r["next_summary"]
    assert f"earlier run kill_{step} of tenant '{TENANT}' died during step '{step}'" in r["next_summary"]
    # Before publish the old snapshot keeps serving, byte for byte.
    if step != "publish":
        assert r["snapshot"] == "old", r


def test_the_checks_catch_a_torn_batch_a_mixed_table_and_a_torn_snapshot(lab):
    """The harness's invariants can fail: half a batch gone from raw, half a staging table gone, half a snapshot."""
    home = lab.trial_home("tampered", changed=False)
    con = duckdb.connect(str(home / TENANT / "warehouse.duckdb"))
    con.execute("DELETE FROM raw.ho_so WHERE rowid % 2 = 0")
    con.execute("DELETE FROM staging.ho_so WHERE rowid % 2 = 0")
    con.close()
    snap = home / TENANT / "serving.duckdb"
    snap.write_bytes(snap.read_bytes()[: snap.stat().st_size // 2])
    r = lab.check_after_break(home, "changed", "tampered")
    assert r["partial"] == 1 and "staging.ho_so" in r["partial_tables"], r
    assert "raw.ho_so: batch base (passed) not whole" in r["partial_tables"], r
    assert r["corrupt"] == 1 and "snapshot" in r["error"], r
    shutil.rmtree(home)


def test_failing_step_after_load_loses_nothing(lab):
    r = lab.fault_trial("fault_load", "extract_load")
    assert not r["broken_ok"] and r["said_failed"], r["broken_summary"]
    assert "nothing was published" in r["broken_summary"] and r["snapshot"] == "old", r
    _assert_clean(r)
    assert "earlier run fault_load of tenant 'ninh-binh' failed at step 'extract_load'" in r["next_summary"]
    assert "abandoned and their rows are fetched again" in r["next_summary"]


def test_failing_train_keeps_the_old_snapshot_and_the_next_run_completes(lab):
    r = lab.fault_trial("fault_train", "train")
    assert not r["broken_ok"] and r["said_failed"] and r["snapshot"] == "old", r
    _assert_clean(r)


def test_overlapping_runs_one_runs_the_others_exit_2_or_wait(lab):
    """Two CLI runs started at once: one runs, the other exits 2 naming it; an Airflow task step started
    meanwhile (its own process) waits for the run to end, then runs. No traceback; the warehouse ends as after
    one run."""
    r = lab.overlap_trial("overlap", airflow_step="transform")
    assert r["exits"] == [0, 2] and r["task_exit"] == 0 and r["tracebacks"] == 0, r
    assert r["busy_message_ok"] and r["task_waited"] and r["exactly_one_ran"], r
    assert (r["lost"], r["duplicated"], r["differing"]) == (0, 0, []), r


def test_airflow_task_retry_is_idempotent(lab):
    """Every task of a DAG run run twice with the same run id (a retry) ends as one uninterrupted run."""
    r = lab.retry_trial("retry")
    assert r["tracebacks"] == 0, r["summary"]
    assert r["same_metrics"] and r["run_end"] == "ok", r
    assert (r["lost"], r["duplicated"], r["differing"]) == (0, 0, []), r


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
