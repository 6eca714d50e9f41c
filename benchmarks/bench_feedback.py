"""Citizen feedback tables: built from a day's change vs rebuilt in full (issue 16.1, feedback part).

    .venv/bin/python benchmarks/bench_feedback.py [--rows 200000] [--pct 1] [--work DIR] [--keep]

Generates the demo province (`--rows` dossiers; its LGSP service serves one feedback item per 10 dossiers),
runs extract_load → validate → transform once (the first build), then changes the served feedback as a day does
(`pipelines.demo.feedback.feedback_changes`: `--pct` % new items and `--pct` % late updates of old ones —
answered, days corrected, re-filed under another field), pulls it (`updated_since`) and transforms: the feedback
tables are maintained from the change (`incremental:` in their .yml). Then the same warehouse with its build
record forgotten is transformed again: every table rebuilt in full from the same data (the baseline of the
ratios), and the two builds of each feedback table are compared (EXCEPT ALL both ways: must be 0 rows).

A table's time is the wall time between its build's log line and the previous one (pipelines/incremental.py logs
one line per table as it finishes). All in one process. Prints BENCHROW lines (benchmarks/report.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import command_line, row  # noqa: E402

TENANT = "ninh-binh"
TABLES = ("staging.phan_anh", "marts.phan_anh_tuan", "marts.phan_anh_ton_dong_tuan")
WHEN = datetime(2025, 11, 3, 9)


class _Timer(logging.Handler):
    """Seconds per table of the transform running now: time since the previous table's (or the start) line."""

    def __init__(self) -> None:
        super().__init__()
        self.last = time.time()
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("built "):
            self.seconds[message.split()[1].rstrip(":")] = record.created - self.last
        self.last = record.created


def _transform(run_id: str) -> tuple[float, dict[str, float], dict]:
    from pipelines.runner import run

    timer = _Timer()
    logger = logging.getLogger("tonghop")
    logger.addHandler(timer)
    try:
        started = time.perf_counter()
        report = run(TENANT, steps=["transform"], run_id=run_id)
        elapsed = time.perf_counter() - started
    finally:
        logger.removeHandler(timer)
    if not report.ok:
        sys.exit(f"transform {run_id} failed: {report.error}")
    return elapsed, timer.seconds, next(r.metrics for r in report.results if r.step == "transform")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--pct", type=float, default=1.0)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_feedback_"))
    os.environ.update({"TONGHOP_HOME": str(work / "home"), "TONGHOP_PII_KEY": "bench-key-" + "0" * 40,
                       "GX_ANALYTICS_ENABLED": "false"})
    logging.getLogger("tonghop").setLevel(logging.INFO)
    import duckdb

    from pipelines.demo import generate
    from pipelines.demo.feedback import feedback_changes
    from pipelines.demo.servers import PORT_ENV, TOKEN_ENV, serve_demo_portals
    from pipelines.runner import run
    from pipelines.settings import TenantPaths

    server, _ = serve_demo_portals(0, rows=args.rows, seed=37, token="bench-token")
    os.environ.update({PORT_ENV: str(server.server_address[1]), TOKEN_ENV: "bench-token"})
    try:
        paths = TenantPaths.for_tenant(TENANT).ensure()
        generate(paths.sources, rows=args.rows, seed=37)
        first = run(TENANT, steps=["extract_load", "validate", "transform"], run_id="first")
        if not first.ok:
            sys.exit(f"first run failed: {first.error}")
        n = len(server.data.feedback)
        k = max(1, round(n * args.pct / 100))
        server.data.feedback, counts = feedback_changes(server.data.feedback, n_new=k, n_late=k, when=WHEN)
        pulled = run(TENANT, steps=["extract_load", "validate"], run_id="day", only_sources=["phan_anh_kien_nghi"])
        if not pulled.ok:
            sys.exit(f"pulling the change failed: {pulled.error}")
        load = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"
        inc_total, inc, inc_metrics = _transform("day")
        if set(inc_metrics.get("incremental", {})) != set(TABLES):
            sys.exit(f"expected {TABLES} maintained from the change, got {inc_metrics.get('incremental')}")
        shutil.copy(paths.warehouse, work / "incremental.duckdb")
        with duckdb.connect(str(paths.warehouse)) as con:
            con.execute("DELETE FROM meta.build_state")
        full_total, full, _ = _transform("full")
        load_after = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            con.execute(f"ATTACH '{work / 'incremental.duckdb'}' AS inc (READ_ONLY)")
            diff = {t: sum(con.execute(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})"
                                       ).fetchone()[0] for a, b in ((t, f"inc.{t}"), (f"inc.{t}", t)))
                    for t in TABLES}
            sizes = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        if any(diff.values()):
            sys.exit(f"incremental build differs from the full rebuild: {diff}")
        cmd = command_line()
        note = (f"{n:,} feedback items, {counts['n_new']:,} new + {counts['n_late']:,} late updates; load "
                f"{load}-{load_after}; equal to the full rebuild (0 rows differ)")
        for t in TABLES:
            row(f"feedback: {t} ({sizes[t]:,} rows) from the change", "full rebuild of the table", full[t], inc[t],
                "s", cmd, note=note)
        row("feedback: the three tables from the change", "their full rebuild", sum(full[t] for t in TABLES),
            sum(inc[t] for t in TABLES), "s", cmd, note=note)
        row("transform step with a feedback change (dossiers kept)", "full transform of the same data",
            full_total, inc_total, "s", cmd, note=note)
    finally:
        server.shutdown()
        if not args.keep and not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
