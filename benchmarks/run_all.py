"""`make bench`: run every benchmark and rewrite the summary table of docs/performance.md.

Each benchmark runs as its own process (so imports and memory do not leak between them) and prints its
figures as `BENCHROW {json}` lines (`benchmarks/report.py`). The table between the markers
`<!-- bench:begin -->` and `<!-- bench:end -->` is replaced; the prose sections below it stay as written.
`--quick` uses small sizes (a smoke run, minutes); the default sizes are the ones the issues name.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# (script, full-size arguments, quick arguments)
BENCHMARKS: list[tuple[str, list[str], list[str]]] = [
    ("bench_sources.py", ["--repeat", "3"], ["--rows", "1000000", "--pg-rows", "100000", "--repeat", "1"]),
    ("bench_quality.py", ["--rows", "10000000", "--repeat", "2"], ["--rows", "1000000", "--repeat", "1"]),
    ("bench_models.py", ["--rows", "1000000"], ["--rows", "200000"]),
    ("bench_backtest.py", ["--rows", "1000000"], ["--rows", "200000"]),
    ("bench_apps.py", ["--rows", "1000000"], ["--rows", "100000", "--repeat", "2"]),
    ("bench_crash.py", ["--trials", "30", "--overlaps", "5"], ["--trials", "6", "--overlaps", "2"]),
    ("bench_dag_parse.py", [], []),
    ("bench_publish.py", ["--rows", "10000000", "--repeat", "2"], ["--rows", "1000000", "--repeat", "1"]),
    ("bench_datamap.py", [], []),
    ("bench_access.py", ["--rows", "10000000"], ["--rows", "1000000", "--repeat", "3"]),
    ("bench_tenants.py", ["--tenants", "1,4,34"], ["--tenants", "1,2", "--rows", "1000"]),
    ("bench_lakehouse.py", ["--rows", "1000000,5000000"], ["--rows", "200000", "--repeat", "1"]),
    ("bench_incremental.py", ["--rows", "1000000"], ["--rows", "20000"]),
]
# Each benchmark's latest figures, so `--only` refreshes some rows and keeps the others (with their date).
LATEST = ROOT / "benchmarks" / "latest.json"


def run_one(script: str, args: list[str]) -> tuple[list[dict], str | None]:
    path = ROOT / "benchmarks" / script
    if not path.exists():
        return [], f"{script} not found"
    cmd = [sys.executable, str(path), *args]
    print(f"==> {script} {' '.join(args)}", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    rows: list[dict] = []
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("BENCHROW "):
            rows.append(json.loads(line[len("BENCHROW "):]))
        tail = (tail + [line.rstrip()])[-20:]
        print("    " + line.rstrip(), flush=True)
    code = proc.wait()
    print(f"    ({script}: {time.perf_counter() - started:.0f} s, exit {code})", flush=True)
    if code != 0:
        return rows, f"{script} exited {code}: " + " / ".join(tail[-3:])
    return rows, None


def fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def table(rows: list[dict], failures: list[str]) -> str:
    lines = [BEGIN, "",
             f"Written by `make bench` ({os.cpu_count()} cores); each row says when it was measured. Ratios are "
             "against the baseline measured in the same run (for times lower is better, unless the metric says "
             "throughput). `make bench BENCH=quick` rows are marked quick (small sizes).", "",
             "| metric | baseline (same run) | value | ratio | target | measured | command |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        base = r["baseline"] + (f": {fmt(r['baseline_value'])} {r['unit']}" if r.get("baseline_value") is not None else "")
        value = f"{fmt(r['value'])} {r['unit']}" + (f" ({r['note']})" if r.get("note") else "")
        q = r.get("ratio")
        ratio = (f"{q:.2f}×" if q >= 0.1 else f"{q:.2g}×") if isinstance(q, int | float) else "—"
        lines.append(f"| {r['metric']} | {base} | {value} | {ratio} | {r.get('target') or ''} | "
                     f"{r.get('measured', '')} | `{r['command']}` |")
    for f in failures:
        lines.append(f"| **not measured** | | {f} | | | | |")
    lines += ["", END]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    parser.add_argument("--only", nargs="*", help="script names to run (default: all)")
    parser.add_argument("--render", action="store_true", help="rewrite the table from benchmarks/latest.json only")
    args = parser.parse_args()
    os.environ.setdefault("TONGHOP_PII_KEY", "bench-" + "0" * 40)
    latest: dict[str, list[dict]] = json.loads(LATEST.read_text(encoding="utf-8")) if LATEST.exists() else {}
    failures: list[str] = []
    n_new = 0
    for script, full, quick in BENCHMARKS:
        if args.render or (args.only and script not in args.only):
            continue
        got, failure = run_one(script, quick if args.quick else full)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d") + (" (quick)" if args.quick else "")
        if got and not failure:
            latest[script] = [{**r, "measured": stamp} for r in got]
            n_new += len(got)
        if failure:
            failures.append(failure)
    LATEST.write_text(json.dumps(latest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    rows = [r for script, _, _ in BENCHMARKS for r in latest.get(script, [])]
    text = DOC.read_text(encoding="utf-8")
    new = table(rows, failures)
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + new + text[text.index(END) + len(END):]
    else:
        head, _, rest = text.partition("\n\n")
        text = f"{head}\n\n## Summary (rewritten by `make bench`)\n\n{new}\n\n{rest}"
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {len(rows)} figures ({n_new} measured now) to {DOC.relative_to(ROOT)}"
          + (f"; {len(failures)} failed" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
