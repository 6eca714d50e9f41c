"""Crash trials at scale: SIGKILL at seeded random points of every step, injected exceptions, overlapping runs.

    .venv/bin/python benchmarks/bench_crash.py [--trials 30] [--overlaps 5] [--seed 11]

Builds the demo province (3,000 dossiers) once, a baseline home after one full run, and the reference
state of an uninterrupted run over a changed source; then each kill trial copies the baseline, runs
`tonghop run` in a subprocess and kills it inside one step's measured time window (steps taken in turn,
source changed in half of them), checks the warehouse and snapshot, runs again and compares every
staging/marts table with the reference (`tests/reliability/crash.py`). Then one exception trial per step
(`TONGHOP_FAULT_AFTER`) and `--overlaps` pairs of runs started at once. Prints one line per trial and the
figures as BENCHROW lines (`benchmarks/report.py`); importable: `run(trials) -> list[dict]`.
The baseline column is the uninterrupted run's time (the cost of a trial is one killed run plus one good run).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from report import command_line, row  # noqa: E402

from tests.reliability.crash import STEPS, Lab  # noqa: E402


def run(trials: int = 30, overlaps: int = 5, seed: int = 11, command: str | None = None,
        faults: tuple[str, ...] = STEPS) -> list[dict]:
    from pipelines.demo import generate
    from pipelines.demo.servers import PORT_ENV, TOKEN_ENV, serve_demo_portals

    command = command or f".venv/bin/python benchmarks/bench_crash.py --trials {trials} --overlaps {overlaps}"
    server, _ = serve_demo_portals(0, rows=3_000, seed=37)
    env = {**os.environ, PORT_ENV: str(server.server_address[1]), TOKEN_ENV: server.token,
           "TONGHOP_PII_KEY": os.environ.get("TONGHOP_PII_KEY") or "bench-key-" + "0" * 40,
           "GX_ANALYTICS_ENABLED": "false", "TONGHOP_LOCK_WAIT": "0"}
    env.pop("TONGHOP_FAULT_AFTER", None)
    rng = random.Random(seed)
    results: list[dict] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench_crash_") as tmp:
            root = Path(tmp)
            generate(root / "sources_v1", rows=3_000, seed=37)
            lab = Lab(root, env).build(root / "sources_v1")
            good_s = lab.windows["changed"]["publish"][1]
            print(f"step windows (s after launch): {lab.windows}", flush=True)
            for i in range(trials):
                step = STEPS[i % len(STEPS)]
                r = lab.kill_trial(f"kill{i:02d}", step, rng, changed=(i // len(STEPS)) % 2 == 0)
                results.append(r)
                _print(r)
            for step in faults:
                r = lab.fault_trial(f"fault_{step}", step)
                results.append(r)
                _print(r)
            for i in range(overlaps):
                r = lab.overlap_trial(f"overlap{i}")
                results.append(r)
                _print(r)
    finally:
        server.shutdown()
        server.server_close()
    return summarise(results, good_s, command)


def _print(r: dict) -> None:
    keys = ("trial", "kind", "scenario", "target", "hit", "delay", "exit", "exits", "next_exit", "corrupt",
            "partial", "lost", "duplicated", "tracebacks", "differing", "orphan_reported", "error")
    print("  " + " ".join(f"{k}={r[k]}" for k in keys if k in r), flush=True)


def summarise(results: list[dict], good_s: float, command: str) -> list[dict]:
    kills = [r for r in results if r["kind"] == "kill"]
    faults = [r for r in results if r["kind"] == "exception"]
    overlaps = [r for r in results if r["kind"] == "overlap"]
    hits = collections.Counter(r["hit"] for r in kills)
    bad_next = sum(r.get("next_exit", 0) != 0 for r in results)
    differing = sum(bool(r.get("differing")) for r in results)
    print(f"\nkill trials: {len(kills)}   per step hit: {dict(hits)}")
    print(f"exception trials: {len(faults)}   overlapping runs: {len(overlaps)} "
          f"(exactly one ran: {sum(r['exactly_one_ran'] for r in overlaps)})")
    figures = {
        "corrupt": sum(r.get("corrupt", 0) for r in results),
        "partial_visible": sum(r.get("partial", 0) for r in results),
        "lost_rows": sum(r.get("lost", 0) for r in results),
        "duplicated_rows": sum(r.get("duplicated", 0) for r in results),
        "tables_differing": differing,
        "tracebacks": sum(r.get("tracebacks", 0) for r in results),
        "next_run_not_ok": bad_next,
        "orphan_not_reported": sum(1 for r in kills if r["hit"] in STEPS and not r["orphan_reported"]),
        "overlap_not_exactly_one": sum(not r["exactly_one_ran"] or not r["busy_message_ok"] for r in overlaps),
        "leftover_tmp_files": sum(r.get("tmp_left", 0) for r in results),
    }
    for k, v in figures.items():
        print(f"{k}: {v}")
    n = len(results)
    rows = [row("crash trials: kill/exception/overlap trials run", "uninterrupted run (s)", round(good_s, 1),
                n, "trials", command, ratio=None,
                note=f"kills {len(kills)} (hits {dict(hits)}), exceptions {len(faults)}, overlaps {len(overlaps)}")]
    for k, v in figures.items():
        rows.append(row(f"crash trials: {k.replace('_', ' ')}", "must be 0", 0, v, "count", command, ratio=None,
                        target="0"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30, help="kill trials (steps in turn)")
    ap.add_argument("--overlaps", type=int, default=5, help="pairs of runs started at once")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--faults", default=",".join(STEPS), help="steps to inject an exception after")
    args = ap.parse_args()
    rows = run(args.trials, args.overlaps, args.seed, command=command_line(),
               faults=tuple(s for s in args.faults.split(",") if s))
    bad = [r for r in rows[1:] if r["value"]]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
