"""Load test: the 34 provinces of 2025 processed end to end through Airflow (LocalExecutor, PostgreSQL metadata).

    .venv/bin/python benchmarks/bench_tenants.py [--tenants 1,4,34] [--rows 2000] [--parallelism 2]

For each N of --tenants, in a fresh temp folder: N real provinces (in code order: 1 Hà Nội, 4 Cao Bằng, …;
each with its own communes and generated data, `pipelines/demo/provinces.py`, tenant files in the temp folder
via TONGHOP_TENANTS_DIR) — then a throwaway PostgreSQL for Airflow's metadata, `airflow db migrate`, the
scheduler (the LocalExecutor that counts its running tasks, pipelines/airflow_executor.py; --parallelism
slots; task_queued_timeout 2 h), API server and DAG processor as separate processes
(tests/cluster/airflow_cluster.py; --airflow-env overrides any setting, e.g. the stock
`AIRFLOW__CORE__EXECUTOR=LocalExecutor` and a 60 s `AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT` reproduce the
expired-token failures with 8 provinces on 1 slot in minutes), `tonghop airflow sync-pools --unpause`, every tenant's DAG triggered at
once, and the time until the last run ends. The national data map's DAG is paused: the figures are the
tenants' pipelines (extract_load → validate → transform → train → publish; the generated provinces list no
models, so `train` fits nothing).

Reported: wall time (first trigger → last run ended, Airflow's own timestamps), each tenant's run time
(start → end of its DAG run; median and max), peak memory (sum of the resident memory of every Airflow process
and task process, sampled every 0.5 s; PostgreSQL not included) and the largest single process, failures
(runs not `success` + task tries beyond the first). Baselines measured in the same invocation: the first
province's pipeline run by `tonghop run` (no Airflow) on the same data; for scaling, N × the 1-tenant wall
time (a serial schedule).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from report import command_line, row  # noqa: E402


def _rss_tree(pids: list[int]) -> tuple[int, int]:
    """(sum, max) resident bytes of the processes and all their descendants."""
    import psutil

    total, biggest, seen = 0, 0, set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            if p.pid in seen:
                continue
            seen.add(p.pid)
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            biggest = max(biggest, rss)
    return total, biggest


class MemorySampler(threading.Thread):
    def __init__(self, pids: list[int], every: float = 0.5):
        super().__init__(daemon=True)
        self.pids, self.every, self.peak, self.peak_one = pids, every, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total, biggest = _rss_tree(self.pids)
            self.peak, self.peak_one = max(self.peak, total), max(self.peak_one, biggest)
            self.stop.wait(self.every)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def generate(n: int, root: Path, rows: int) -> list[str]:
    from pipelines.demo.provinces import province_codes, write_province

    return [write_province(code, root / "tenants", rows=rows) for code in province_codes()[:n]]


def bare_run(tenant: str, env: dict[str, str]) -> float:
    """The tenant's whole pipeline by `tonghop run`, no Airflow: the baseline for one tenant's time."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--tenant", tenant, "--run-id", "bare"], env=env,
                   check=True, capture_output=True, cwd=REPO, timeout=3600)
    return time.perf_counter() - started


def through_airflow(n: int, rows: int, parallelism: int, keep: bool, extra_env: dict[str, str] | None = None) -> dict:
    from tests.cluster.airflow_cluster import create_database, local_cluster
    from tests.fixtures.postgres import running_postgres

    root = Path(tempfile.mkdtemp(prefix=f"bench-tenants-{n}-"))
    os.environ.update(TONGHOP_HOME=str(root / "home"), TONGHOP_TENANTS_DIR=str(root / "tenants"),
                      TONGHOP_PII_KEY=os.environ.get("TONGHOP_PII_KEY", "bench-key-" + "0" * 40),
                      GX_ANALYTICS_ENABLED="false")
    t0 = time.perf_counter()
    tenants = generate(n, root, rows)
    generated_s = time.perf_counter() - t0
    print(f"[{n} tenants] generated {n} provinces × {rows:,} dossiers in {generated_s:.1f} s", flush=True)
    dag_ids = [f"tonghop_{t}" for t in tenants]
    with running_postgres() as pg:
        metadata = create_database(pg.dsn, "airflow")
        with local_cluster(root / "airflow", metadata, parallelism=parallelism, extra_env=extra_env) as cluster:
            cluster.wait_for_dags([*dag_ids, "tonghop_datamap"], timeout=600)
            out = cluster.tonghop("airflow", "sync-pools", "--unpause").stdout
            print(f"[{n} tenants] {out.splitlines()[0]}", flush=True)
            cluster.api("PATCH", "dags/tonghop_datamap", {"is_paused": True})
            sampler = MemorySampler([p.pid for p in cluster.procs.values()])
            sampler.start()
            for dag_id in dag_ids:
                cluster.trigger(dag_id, "load_test")
            runs = cluster.wait_for_runs([(d, "load_test") for d in dag_ids], timeout=6 * 3600)
            sampler.stop.set()
            sampler.join()
            tis = {d: cluster.api("GET", f"dags/{d}/dagRuns/load_test/taskInstances")["task_instances"]
                   for d in dag_ids}
            tries = {d: [ti["try_number"] for ti in v] for d, v in tis.items()}
            failed_tasks = {d: [(ti["task_id"], ti["state"], ti["try_number"]) for ti in v
                                if ti["state"] not in ("success", "skipped")] for d, v in tis.items()}
            failed_tasks = {d: v for d, v in failed_tasks.items() if v}
            for d, v in sorted(failed_tasks.items()):
                print(f"[{n} tenants] {d}: {v}", flush=True)
            keep = keep or bool(failed_tasks)  # a failure keeps the folder: Airflow's task logs are in it
    if keep:
        print(f"[{n} tenants] kept {root} (Airflow logs in {root / 'airflow' / 'logs'})", flush=True)
    else:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    per_tenant = {d.removeprefix("tonghop_"): _ts(r["end_date"]) - _ts(r["start_date"]) for (d, _), r in runs.items()}
    # a tenant's own span: its first task's start → its run's end (the rest of per_tenant is waiting for a slot)
    active = {d.removeprefix("tonghop_"): _ts(runs[(d, "load_test")]["end_date"])
              - min(_ts(ti["start_date"]) for ti in v if ti.get("start_date")) for d, v in tis.items()}
    return {
        "n": n, "tenants": tenants, "generated_s": generated_s,
        "wall_s": max(_ts(r["end_date"]) for r in runs.values()) - min(_ts(r["queued_at"]) for r in runs.values()),
        "per_tenant_s": per_tenant, "active_s": active,
        "failed_runs": sorted(d for (d, _), r in runs.items() if r["state"] != "success"),
        "retried_tasks": sum(max(t - 1, 0) for ts in tries.values() for t in ts),
        "peak_rss": sampler.peak, "peak_rss_one": sampler.peak_one,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenants", default="1,4,34", help="comma-separated tenant counts, run in this order")
    ap.add_argument("--rows", type=int, default=2000, help="dossiers per province")
    ap.add_argument("--parallelism", type=int, default=2, help="LocalExecutor slots ([core] parallelism)")
    ap.add_argument("--keep", action="store_true", help="keep the temp folders")
    ap.add_argument("--airflow-env", action="append", default=[], metavar="KEY=VALUE",
                    help="an Airflow setting for every component, over the deployment's (e.g. "
                         "AIRFLOW__CORE__EXECUTOR=LocalExecutor AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=60 to "
                         "reproduce the expired-token failures cheaply); repeatable")
    ap.add_argument("--no-bare", action="store_true", help="skip the bare `tonghop run` baseline (and the BENCHROW lines): a reproduction")
    args = ap.parse_args()
    extra_env = dict(kv.split("=", 1) for kv in args.airflow_env)
    counts = [int(x) for x in args.tenants.split(",")]
    cmd = command_line()
    results = []
    for n in counts:
        res = through_airflow(n, args.rows, args.parallelism, args.keep, extra_env)
        results.append(res)
        times = sorted(res["per_tenant_s"].values())
        print(f"[{n} tenants] wall {res['wall_s']:.1f} s; per tenant median {statistics.median(times):.1f} s, "
              f"max {times[-1]:.1f} s; peak memory {res['peak_rss'] / 2**30:.2f} GiB (largest process "
              f"{res['peak_rss_one'] / 2**20:.0f} MiB); failed runs {len(res['failed_runs'])}, retried tasks "
              f"{res['retried_tasks']}", flush=True)
        print("  per tenant: " + ", ".join(f"{t} {s:.0f} s" for t, s in sorted(res["per_tenant_s"].items())),
              flush=True)
        active = sorted(res["active_s"].values())
        print(f"  own span (first task start → run end): median {statistics.median(active):.0f} s, "
              f"min {active[0]:.0f} s, max {active[-1]:.0f} s", flush=True)

    if args.no_bare:  # a reproduction, not a figure: no baseline, no BENCHROW
        return
    # The bare baseline: the first province's pipeline without Airflow, same rows, in a fresh home.
    root = Path(tempfile.mkdtemp(prefix="bench-tenants-bare-"))
    env = {**os.environ, "TONGHOP_HOME": str(root / "home"), "TONGHOP_TENANTS_DIR": str(root / "tenants")}
    os.environ.update(TONGHOP_HOME=env["TONGHOP_HOME"], TONGHOP_TENANTS_DIR=env["TONGHOP_TENANTS_DIR"])
    first = generate(1, root, args.rows)[0]
    try:
        bare_s = bare_run(first, env)
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    print(f"[bare] tonghop run --tenant {first}: {bare_s:.1f} s", flush=True)

    one = next((r for r in results if r["n"] == 1), None)
    for res in results:
        n, times = res["n"], sorted(res["per_tenant_s"].values())
        failures = len(res["failed_runs"]) + res["retried_tasks"]
        note = (f"{args.rows:,} dossiers per province, parallelism {args.parallelism}, PostgreSQL metadata; "
                f"median tenant {statistics.median(times):.0f} s, max {times[-1]:.0f} s")
        if one is not None and n > 1:
            row(f"{n} tenants through Airflow LocalExecutor: wall time", f"{n} × 1-tenant wall (serial)",
                round(n * one["wall_s"], 1), round(res["wall_s"], 1), "s", cmd, note=note)
        else:
            row(f"{n} tenant(s) through Airflow LocalExecutor: wall time", "tonghop run (no Airflow), same tenant",
                round(bare_s, 1), round(res["wall_s"], 1), "s", cmd, note=note)
        row(f"{n} tenants: median per-tenant run time", "tonghop run (no Airflow), one tenant alone",
            round(bare_s, 1), round(statistics.median(times), 1), "s", cmd,
            note=f"max {times[-1]:.0f} s; each tenant waits for a slot: {args.parallelism} run at once")
        row(f"{n} tenants: peak memory, all Airflow + task processes", "largest single process",
            round(res["peak_rss_one"] / 2**20), round(res["peak_rss"] / 2**20), "MiB", cmd)
        row(f"{n} tenants: failures (failed runs + retried tasks)", "", None, failures, "count", cmd,
            target="0", note=", ".join(res["failed_runs"]) or "none")
    print(json.dumps([{k: v for k, v in r.items() if k != "tenants"} for r in results], default=str)[:4000])


if __name__ == "__main__":
    main()
