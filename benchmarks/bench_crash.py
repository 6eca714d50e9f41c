"""Crash trials at scale: SIGKILL inside every step, injected exceptions, overlapping runs, an Airflow retry.

    .venv/bin/python benchmarks/bench_crash.py [--trials 30] [--overlaps 5] [--seed 11] [--rows 1000]

Builds the demo province once (`tests/reliability/crash.py`: a baseline home after one full run, the reference
states and step durations of uninterrupted runs over unchanged and changed input), then:

- `--trials` kill trials, the five steps in turn (source changed in every other round): `tonghop run` in a
  subprocess, watched through its run records until the target step starts, SIGKILLed after a seeded random
  delay within that step's duration in the reference run; the step actually running is read from the records
  while the process is stopped. Every step must be hit at least once.
- one exception trial per step (`TONGHOP_FAULT_AFTER`), in process;
- `--overlaps` pairs of `tonghop run` started at the same instant, plus one more pair joined by an Airflow
  task step (`run_task_step`, `transform`) in a third process, which must wait for the CLI run;
- one Airflow retry: every task of a DAG run run twice with the same run id.

After each break the warehouse must open, show no partial batch, the snapshot must be the old or the new one,
and the next good run must end with exactly the reference rows, table by table. Prints one line per trial and
the figures as BENCHROW lines (`benchmarks/report.py`); importable: `run(trials) -> list[dict]`. Counts must be 0;
the time rows compare a trial's wall time with an uninterrupted run's (the sum of its steps, measured in the lab).
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from report import command_line, row  # noqa: E402

from tests.reliability.crash import LAB_ROWS, STEPS, Lab  # noqa: E402


def run(trials: int = 30, overlaps: int = 5, seed: int = 11, command: str | None = None,
        faults: tuple[str, ...] = STEPS, rows: int = LAB_ROWS) -> list[dict]:
    from pipelines.demo.servers import PORT_ENV, TOKEN_ENV, serve_demo_portals

    command = command or f".venv/bin/python benchmarks/bench_crash.py --trials {trials} --overlaps {overlaps}"
    logging.basicConfig(level=logging.ERROR)  # the in-process runs' warnings (orphans found…) are expected
    server, _ = serve_demo_portals(0, rows=rows, seed=37)
    env = {PORT_ENV: str(server.server_address[1]), TOKEN_ENV: server.token,
           "TONGHOP_PII_KEY": os.environ.get("TONGHOP_PII_KEY") or "bench-key-" + "0" * 40,
           "GX_ANALYTICS_ENABLED": "false", "TONGHOP_LOCK_WAIT": "0"}
    os.environ.pop("TONGHOP_FAULT_AFTER", None)
    rng = random.Random(seed)
    results: list[dict] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench_crash_") as tmp:
            lab = Lab(Path(tmp), env, rows=rows).build(measure_same=True)
            good_s = sum(lab.seconds["changed"].values())
            print(f"lab built in {time.perf_counter() - started:.0f} s; step seconds of a good run: "
                  f"{lab.seconds}", flush=True)
            for i in range(trials):
                step = STEPS[i % len(STEPS)]
                results.append(_print(_timed(lab.kill_trial, f"kill{i:02d}", step, rng,
                                            changed=(i // len(STEPS)) % 2 == 0)))
            for step in faults:
                results.append(_print(_timed(lab.fault_trial, f"fault_{step}", step)))
            for i in range(overlaps):
                results.append(_print(_timed(lab.overlap_trial, f"overlap{i}")))
            results.append(_print(_timed(lab.overlap_trial, "overlap_airflow", airflow_step="transform")))
            results.append(_print(_timed(lab.retry_trial, "retry")))
    finally:
        server.shutdown()
        server.server_close()
    print(f"all trials in {time.perf_counter() - started:.0f} s", flush=True)
    return summarise(results, good_s, command)


def _timed(trial, *args, **kwargs) -> dict:  # noqa: ANN001 — a Lab trial method
    started = time.perf_counter()
    r = trial(*args, **kwargs)
    r["seconds"] = time.perf_counter() - started
    return r


def _print(r: dict) -> dict:
    if not r.get("next_ok", True) or r.get("tracebacks"):
        r.setdefault("error", (r.get("next_summary") or r.get("summary") or "").strip().splitlines()[-3:])
    keys = ("trial", "kind", "with", "scenario", "target", "hit", "delay", "exits", "snapshot", "next_ok",
            "corrupt", "partial", "lost", "duplicated", "tracebacks", "differing", "orphan_reported",
            "partial_tables", "error")
    print("  " + " ".join(f"{k}={r[k]}" for k in keys if k in r), flush=True)
    return r


def summarise(results: list[dict], good_s: float, command: str) -> list[dict]:
    kills = [r for r in results if r["kind"] == "kill"]
    faults = [r for r in results if r["kind"] == "exception"]
    overlaps = [r for r in results if r["kind"] == "overlap"]
    retries = [r for r in results if r["kind"] == "retry"]
    hits = collections.Counter(r["hit"] for r in kills)
    hits_text = ", ".join(f"{s} {hits.get(s, 0)}" for s in STEPS) + "".join(
        f", {k} {v}" for k, v in hits.items() if k not in STEPS)
    print(f"\nkill trials: {len(kills)}   per step hit: {hits_text}")
    print(f"exception trials: {len(faults)}   overlapping runs: {len(overlaps)} "
          f"(exactly one ran: {sum(r['exactly_one_ran'] for r in overlaps)})   retry trials: {len(retries)}")
    figures = {
        "steps never hit by a kill": sum(hits.get(s, 0) == 0 for s in STEPS),
        "corrupt (warehouse or snapshot)": sum(r.get("corrupt", 0) for r in results),
        "partial batch visible": sum(r.get("partial", 0) for r in results),
        "rows lost": sum(r.get("lost", 0) for r in results),
        "rows duplicated": sum(r.get("duplicated", 0) for r in results),
        "tables differing from the uninterrupted run": sum(bool(r.get("differing")) for r in results),
        "tracebacks (all trials)": sum(r.get("tracebacks", 0) for r in results),
        "tracebacks in overlapping runs": sum(r.get("tracebacks", 0) for r in overlaps),
        "next run not OK": sum(not r.get("next_ok", True) for r in results),
        "dead run not reported": sum(1 for r in kills if r["hit"] in STEPS and not r["orphan_reported"]),
        "overlaps where not exactly one ran": sum(not r["exactly_one_ran"] or not r["busy_message_ok"]
                                                  for r in overlaps),
        "retry not idempotent": sum(bool(r["differing"]) or r["run_end"] != "ok" or not r["same_metrics"]
                                    for r in retries),
        "leftover temp snapshot files": sum(r.get("tmp_left", 0) for r in results),
    }
    for k, v in figures.items():
        print(f"{k}: {v}")
    good = round(good_s, 1)
    rows = [row("crash trials: kill trials (SIGKILL inside a step)", "—", None, len(kills), "trials", command,
                note=f"steps hit: {hits_text}"),
            row("crash trials: exception trials", "—", None, len(faults), "trials", command,
                note="TONGHOP_FAULT_AFTER=<step>, one per step"),
            row("crash trials: overlapping runs", "—", None, len(overlaps), "pairs", command,
                note=f"{len(overlaps)} pairs of CLI runs started at once, the last joined by an Airflow task step"),
            row("crash trials: Airflow retry trials", "—", None, len(retries), "trials", command,
                note="every task of a DAG run run twice with the same run id")]
    for kind, group in (("kill", kills), ("exception", faults), ("overlap", overlaps)):
        if group:
            mean = sum(r["seconds"] for r in group) / len(group)
            rows.append(row(f"crash trials: wall time per {kind} trial (broken run + checks + next run)",
                            "uninterrupted run (sum of its steps, s)", good, round(mean, 1), "s", command))
    for k, v in figures.items():
        rows.append(row(f"crash trials: {k}", "uninterrupted run: 0", 0, v, "count", command, ratio=None,
                        target="0"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30, help="kill trials (steps in turn)")
    ap.add_argument("--overlaps", type=int, default=5, help="pairs of CLI runs started at once")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--rows", type=int, default=LAB_ROWS, help="demo dossiers in the lab's sources")
    ap.add_argument("--faults", default=",".join(STEPS), help="steps to inject an exception after")
    args = ap.parse_args()
    rows = run(args.trials, args.overlaps, args.seed, command=command_line(),
               faults=tuple(s for s in args.faults.split(",") if s), rows=args.rows)
    bad = [r for r in rows if r["target"] == "0" and r["value"]]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
