"""Cost follows change: a full run vs a run with nothing new vs a run with 1 % new dossiers (issue 16.1).

    .venv/bin/python benchmarks/bench_incremental.py [--rows 1000000] [--new-pct 1] [--late-pct 0.2]
                                                     [--sources DIR] [--work DIR] [--keep]

Generates the demo province (`--rows` dossiers; or copies the demo sources already generated in `--sources`),
serves its LGSP/CKAN portals, then runs the tenant's whole pipeline (`tonghop run`: extract_load → validate →
transform → train → publish), each run in its own process so that its peak memory (max RSS) is its own:

1. **full** — the first run on an empty data folder (the baseline of the ratios);
2. **nothing new** — the same sources again: nothing is promoted, so transform, train and publish must skip;
3. **1 % new** — `--new-pct` % new dossiers and `--late-pct` % late updates of old ones appended to the
   one-stop-shop database (`pipelines.demo.increment`), read incrementally on `ngay_cap_nhat`, on the data's
   last day (an hour after its newest update): the same ISO week, so the retraining policy keeps the models
   (overdue risk scores the new open dossiers with its kept version) — six daily runs of seven;
4. **1 % new, week closed** — as many again, the next Monday: a new ISO week closed on the data's clock, so
   the models are refitted (the weekly refit, one daily run of seven).

Every run is a fresh process, as an Airflow task is. Python's bytecode is cached for them in the working folder
(`PYTHONPYCACHEPREFIX`; `PYTHONDONTWRITEBYTECODE` unset), as in any installed deployment, and a first child
only imports the modules (untimed) — this sandbox sets PYTHONDONTWRITEBYTECODE=1, which made every process
compile every module it imports (Great Expectations alone: ~10 s CPU) and blurred what a run costs.

Then the snapshot alternatives on the final warehouse: writing every table into a new file (the old publish)
vs copying the serving file (reflink / copy_file_range) and replacing only the changed tables (measured by
the 1 %-new run's publish step), and the bare file copy. Prints BENCHROW lines (benchmarks/report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from report import command_line, row  # noqa: E402

TENANT = "ninh-binh"


def child(run_id: str) -> int:
    """One pipeline run in this process; prints its timings and peak memory as one JSON line."""
    import resource

    if run_id == "warm":  # fills the bytecode cache: the modules every run imports, untimed
        import great_expectations  # noqa: F401
        import sklearn.ensemble  # noqa: F401

        import models.inflow_forecast  # noqa: F401
        import models.overdue_risk  # noqa: F401
        import pipelines.quality.suites  # noqa: F401
        import pipelines.runner  # noqa: F401
        return 0
    from pipelines.runner import run

    started = time.perf_counter()
    report = run(TENANT, run_id=run_id)
    seconds = time.perf_counter() - started
    print(report.summary(), file=sys.stderr, flush=True)
    out = {"ok": report.ok, "seconds": seconds, "steps": {r.step: r.seconds for r in report.results},
           "builds": {r.step: r.metrics.get("build") for r in report.results},
           "decisions": next((r.metrics.get("model_decisions") for r in report.results if r.step == "train"), None),
           "not_read": next((r.metrics.get("sources_not_read") for r in report.results if r.step == "extract_load"),
                            None),
           "max_rss_mb": _peak_rss_mb(resource)}
    print("CHILD " + json.dumps(out), flush=True)
    return 0 if report.ok else 1


def _peak_rss_mb(resource) -> float:
    """This process's own peak RSS: VmHWM of its memory map. Not `ru_maxrss`, which on Linux keeps the peak of
    the image it was forked from: at 10M dossiers the parent holds the demo portals' data (~7 GB), and every
    child then 'peaked' at 7.6 GB, a nothing-new run included."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(run_id: str, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", run_id], env=env, capture_output=True, text=True,
                          cwd=REPO)
    sys.stderr.write(proc.stderr[-3000:])
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD ")]
    if proc.returncode or not lines:
        raise SystemExit(f"run {run_id} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1][6:])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--new-pct", type=float, default=1.0)
    p.add_argument("--late-pct", type=float, default=0.2)
    p.add_argument("--sources", type=Path, help="demo sources already generated with the same --rows (copied)")
    p.add_argument("--work", type=Path, help="working folder (default: a new temp folder, removed at the end)")
    p.add_argument("--keep", action="store_true", help="keep the working folder")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child)

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_incremental_"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TONGHOP_HOME": str(work), "GX_ANALYTICS_ENABLED": "false",
           "TONGHOP_PII_KEY": os.environ.get("TONGHOP_PII_KEY", "bench-key-" + "0" * 40),
           "PYTHONPYCACHEPREFIX": str(work / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ.update(env)
    from pipelines.demo import generate
    from pipelines.demo.increment import add_dossier_changes
    from pipelines.demo.ministry.api import TOKEN_ENV as MINISTRY_TOKEN_ENV
    from pipelines.demo.servers import PORT_ENV, TOKEN_ENV, serve_demo_portals
    from pipelines.settings import TenantPaths

    paths = TenantPaths.for_tenant(TENANT).ensure()
    try:
        t = time.perf_counter()
        if args.sources:
            shutil.copytree(args.sources, paths.sources, dirs_exist_ok=True)
        else:
            generate(paths.sources, rows=args.rows, seed=37)
        print(f"sources of {args.rows:,} dossiers ready in {time.perf_counter() - t:.0f} s", flush=True)
        server, _ = serve_demo_portals(0, rows=args.rows, seed=37)
        env.update({PORT_ENV: str(server.server_address[1]), TOKEN_ENV: server.token,
                    MINISTRY_TOKEN_ENV: server.ministry_token})
        runs = {}
        subprocess.run([sys.executable, __file__, "--child", "warm"], env=env, cwd=REPO, check=True)
        runs["full"] = run_child("bench_full", env)
        print("full:", runs["full"], flush=True)
        runs["nothing"] = run_child("bench_nothing_new", env)
        print("nothing new:", runs["nothing"], flush=True)
        n_new, n_late = int(args.rows * args.new_pct / 100), int(args.rows * args.late_pct / 100)
        last = _last_update(paths.sources / "mot_cua.sqlite")
        same_week = last + timedelta(hours=1)  # the data's last day: no ISO week closes
        next_monday = datetime.combine(last.date() + timedelta(days=7 - last.weekday()), datetime.min.time()) \
            + timedelta(hours=9)
        changed = add_dossier_changes(paths.sources / "mot_cua.sqlite", n_new=n_new, n_late=n_late, when=same_week)
        runs["new"] = run_child("bench_one_pct", env)
        print(f"{args.new_pct:g} % new ({changed}, {same_week}):", runs["new"], flush=True)
        changed_week = add_dossier_changes(paths.sources / "mot_cua.sqlite", n_new=n_new, n_late=n_late,
                                           when=next_monday, tag="n2")
        runs["week"] = run_child("bench_one_pct_week", env)
        print(f"{args.new_pct:g} % new after a week closed ({changed_week}, {next_monday}):", runs["week"],
              flush=True)
        server.shutdown()

        # Snapshot alternatives on the final warehouse (same process, one after the other).
        import duckdb

        from pipelines.incremental import publish_inputs
        from pipelines.warehouse import copy_file, refresh_snapshot

        alt = work / "alt"
        alt.mkdir(exist_ok=True)
        con = duckdb.connect(str(paths.warehouse))
        try:
            key, versions = publish_inputs(con)
            t = time.perf_counter()
            refresh_snapshot(con, alt / "serving.duckdb", "bench_new_file", None, versions, key)
            new_file_s = time.perf_counter() - t
        finally:
            con.close()
        t = time.perf_counter()
        how = copy_file(paths.snapshot, alt / "copy.duckdb")
        copy_s = time.perf_counter() - t
        size_mb = paths.snapshot.stat().st_size / 1e6

        cmd = command_line()
        full, nothing, new = runs["full"], runs["nothing"], runs["new"]
        rows = f"{args.rows:,} dossiers"
        row(f"nothing-new run, {rows} (transform, train, publish skipped)", "full run, same data",
            round(full["seconds"], 1), round(nothing["seconds"], 1), "s", cmd, target="< 5 %",
            note=f"steps {_steps(nothing)}; peak {nothing['max_rss_mb']:.0f} MB")
        row(f"{args.new_pct:g} % new dossiers + {args.late_pct:g} % late updates, {rows}",
            "full run, same data", round(full["seconds"], 1), round(new["seconds"], 1), "s", cmd, target="< 10 %",
            note=f"{changed['n_new']:,} new + {changed['n_late']:,} updated; steps {_steps(new)}; "
                 f"peak {new['max_rss_mb']:.0f} MB")
        week = runs["week"]
        row(f"{args.new_pct:g} % new dossiers + {args.late_pct:g} % late updates the run after an ISO week closed "
            f"(weekly refit), {rows}", "full run, same data", round(full["seconds"], 1), round(week["seconds"], 1),
            "s", cmd, target="< 10 %", note=f"{changed_week['n_new']:,} new + {changed_week['n_late']:,} updated; "
                                             f"steps {_steps(week)}; peak {week['max_rss_mb']:.0f} MB")
        for name, r in runs.items():
            print(f"{name}: models {r.get('decisions')}; not read {r.get('not_read')}", flush=True)
        row(f"full run peak memory, {rows}", "4 GB budget", 4096, round(full["max_rss_mb"]), "MB", cmd,
            target="< 4 GB", note=f"steps {_steps(full)}; DuckDB memory_limit "
                                  f"{os.environ.get('TONGHOP_DUCKDB_MEMORY', '2GB')}")
        peak = max(r["max_rss_mb"] for r in runs.values())
        row(f"peak memory of any run (full, nothing new, 1 % new, week closed), {rows}", "4 GB budget", 4096,
            round(peak), "MB", cmd, target="< 4 GB",
            note="; ".join(f"{k} {r['max_rss_mb']:.0f} MB" for k, r in runs.items()))
        row(f"snapshot refresh after {args.new_pct:g} % new (copy + replace changed tables), {rows}",
            "every table into a new file (previous publish)", round(new_file_s, 2),
            round(new["steps"].get("publish", 0.0), 2), "s", cmd,
            note=f"{size_mb:.0f} MB snapshot; bare file copy ({how}) {copy_s:.2f} s")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _last_update(db: Path) -> datetime:
    """The newest `ngay_cap_nhat` of the demo's one-stop-shop database (the data's clock)."""
    import sqlite3

    con = sqlite3.connect(str(db))
    try:
        (last,) = con.execute("SELECT max(ngay_cap_nhat) FROM ho_so").fetchone()
    finally:
        con.close()
    return datetime.fromisoformat(str(last))


def _steps(r: dict) -> str:
    return ", ".join(f"{s} {v:.1f} s" + (" (skipped)" if r["builds"].get(s) == "skipped" else "")
                     for s, v in r["steps"].items())


if __name__ == "__main__":
    sys.exit(main())
