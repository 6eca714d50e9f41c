"""One line per measured figure, in one format, so `make bench` can rewrite one table from every benchmark.

A benchmark calls `row(...)` for each figure it measured: the line is printed as `BENCHROW {json}` on stdout
(readable in a terminal, parsed by `benchmarks/run_all.py`). The baseline is always measured in the same run.
"""

from __future__ import annotations

import json
import sys


def row(metric: str, baseline: str, baseline_value: float | None, value: float, unit: str,
        command: str, ratio: float | None = None, target: str = "", note: str = "") -> dict:
    """Print one figure. `ratio` defaults to value / baseline_value when both are numbers."""
    if ratio is None and baseline_value:
        ratio = value / baseline_value
    out = {"metric": metric, "baseline": baseline, "baseline_value": baseline_value, "value": value,
           "unit": unit, "ratio": ratio, "target": target, "note": note, "command": command}
    print("BENCHROW " + json.dumps(out, ensure_ascii=False), flush=True)
    return out


def command_line() -> str:
    """How this benchmark was started, for the table's command column."""
    return ".venv/bin/python " + " ".join(["benchmarks/" + sys.argv[0].rsplit("/", 1)[-1], *sys.argv[1:]])
