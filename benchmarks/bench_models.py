"""Benchmark: train every model of the demo province at 1M and 5M dossiers (not collected by pytest).

    TONGHOP_PII_KEY=... .venv/bin/python benchmarks/bench_models.py [--rows 1000000 5000000] [--home /tmp/bench]

For each size it builds (once) the demo warehouse with the sources the models read, then trains all the
tenant's models from scratch in a fresh process (so imports and peak memory are that process's own) and
reports wall time per model and its peak RSS (VmHWM). The bare baseline, measured in the same run on the same file, is
DuckDB scanning staging.ho_so into the weekly agency × field counts the forecast starts from: the time
below which no model trained on this warehouse can go. Figures go to docs/performance.md ("## Models").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from report import command_line, row  # benchmarks/report.py (the script's folder is on sys.path)

MODEL_SOURCES = {"ho_so", "chi_so_xa_hoi_so", "can_bo"}

TRAIN_CHILD = r"""
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import duckdb
import sklearn.ensemble, skops.io  # noqa: the libraries every run imports, timed with the imports, not the first model
from models import REGISTRY
import importlib
from pipelines.config import load_tenant
from pipelines.settings import TenantPaths
cfg = load_tenant("ninh-binh")
paths = TenantPaths.for_tenant(cfg.tenant_id).ensure()
con = duckdb.connect(str(paths.warehouse))
con.execute("DELETE FROM meta.models")  # train from scratch: no version is already recorded
out = {"import_s": time.perf_counter() - t0, "loadavg_start": open("/proc/loadavg").read().split()[:3]}
from models import TRAIN_DUCKDB_MEMORY
con.execute(f"SET memory_limit = '{TRAIN_DUCKDB_MEMORY}'")  # as models.train_models does
for name in cfg.models:
    t, c = time.perf_counter(), time.process_time()
    run = importlib.import_module(REGISTRY[name]).train(con, cfg, paths, "bench")
    out[name] = {"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                 "metrics": run.metrics if run else None}
out["total_s"], out["total_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
out["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
# VmHWM is this process image's own peak; ru_maxrss would carry over the parent's peak across exec.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
out["peak_rss_mb"] = int(hwm.split()[1]) / 1024
con.close()
print("BENCH " + json.dumps(out, default=str))
"""

BASELINE_CHILD = r"""
import duckdb, json, sys, time
con = duckdb.connect(sys.argv[1], read_only=True)
t, c = time.perf_counter(), time.process_time()
n = con.execute("select count(*) from (select date_trunc('week', ngay_nhan), co_quan, linh_vuc, count(*) "
                "from staging.ho_so group by all)").fetchone()[0]
print("BASE " + json.dumps({"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - c, "n_groups": n}))
"""


WARM_CHILD = r"""
import duckdb, models, models.inflow_forecast, models.overdue_risk, models.staffing, models.anomalies  # noqa
import sklearn.ensemble, sklearn.calibration, sklearn.linear_model, skops.io, scipy.optimize  # noqa
"""


def _env(home: Path) -> dict[str, str]:
    # Python's bytecode cached beside the warehouse, as in any installed deployment: this sandbox sets
    # PYTHONDONTWRITEBYTECODE=1, which made every fresh process compile scikit-learn & co. (~20 s of CPU under load).
    env = {**os.environ, "TONGHOP_HOME": str(home), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
           "PYTHONPYCACHEPREFIX": str(home / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def build(rows: int, home: Path) -> Path:
    """Generate the demo province and run extract_load → transform once (kept between benchmark runs)."""
    from pipelines.config import load_tenant
    from pipelines.demo import generate
    from pipelines.runner import run
    from pipelines.settings import TenantPaths

    os.environ["TONGHOP_HOME"] = str(home)
    cfg = load_tenant("ninh-binh")
    cfg = cfg.model_copy(update={"sources": [s for s in cfg.sources if s.name in MODEL_SOURCES]})
    paths = TenantPaths.for_tenant(cfg.tenant_id).ensure()
    if not all((paths.root / s.location).exists() for s in cfg.sources if s.location):
        generate(paths.sources, rows=rows)
    report = run(cfg, steps=["extract_load", "validate", "transform"])
    if not report.ok:
        sys.exit(report.summary())
    return paths.warehouse


def built(rows: int, home: Path) -> Path:
    """The warehouse a previous `build` left under `home` (for --reuse), or exit saying how to build it."""
    warehouse = home / "ninh-binh" / "warehouse.duckdb"
    if not warehouse.is_file():
        sys.exit(f"no warehouse at {warehouse}: run once without --reuse to build the {rows:,}-dossier demo there")
    return warehouse


def measure(rows: int, root: Path, reuse: bool = False) -> dict:
    home = root / f"h{rows}"
    started = time.perf_counter()
    warehouse = built(rows, home) if reuse else build(rows, home)
    build_s = time.perf_counter() - started
    subprocess.run([sys.executable, "-c", WARM_CHILD], env=_env(home), check=True,  # fills the bytecode cache, untimed
                   cwd=Path(__file__).resolve().parent.parent)
    base = subprocess.run([sys.executable, "-c", BASELINE_CHILD, str(warehouse)], env=_env(home),
                          capture_output=True, text=True, check=True)
    baseline = json.loads(base.stdout.split("BASE ", 1)[1])
    child = subprocess.run([sys.executable, "-c", TRAIN_CHILD], env=_env(home), capture_output=True, text=True,
                           cwd=Path(__file__).resolve().parent.parent)
    if child.returncode:
        sys.exit(child.stderr[-3000:])
    result = json.loads(child.stdout.split("BENCH ", 1)[1])
    return {"rows": rows, "build_s": build_s, "baseline": baseline, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--home", type=Path, default=Path("/tmp/tonghop-bench-models"))
    parser.add_argument("--reuse", action="store_true",
                        help="use the warehouses already built under --home as they are (no extract/transform run)")
    args = parser.parse_args()
    if not os.environ.get("TONGHOP_PII_KEY"):
        sys.exit("set TONGHOP_PII_KEY (any long secret) to build the benchmark warehouse")
    results = []
    for rows in args.rows:
        results.append(measure(rows, args.home, args.reuse))
        print("RESULT " + json.dumps(results[-1], default=str), flush=True)
        r = results[-1]
        row(f"train every model of the demo, {rows:,} dossiers", "bare DuckDB weekly scan", r["baseline"]["seconds"],
            r["total_s"], "s", command_line(),
            note=f"peak RSS {r['peak_rss_mb']:,.0f} MB; CPU {r['total_cpu_s']:.1f} s (bare {r['baseline']['cpu_s']:.2f} s); "
                 f"load {' '.join(r['loadavg_start'])}")
    print("\n| dossiers | load average | bare DuckDB weekly scan wall / CPU | imports | inflow_forecast | overdue_risk "
          "| staffing | anomalies | total train wall / CPU | × bare (wall, CPU) | peak RSS |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        base, base_cpu = r["baseline"]["seconds"], r["baseline"]["cpu_s"]
        cells = [f"{r[m]['seconds']:.1f} / {r[m]['cpu_s']:.1f} s"
                 for m in ("inflow_forecast", "overdue_risk", "staffing", "anomalies")]
        load = f"{' '.join(r['loadavg_start'])} → {' '.join(r['loadavg_end'])}"
        print(f"| {r['rows']:,} | {load} | {base:.2f} / {base_cpu:.2f} s | {r['import_s']:.1f} s | " + " | ".join(cells)
              + f" | {r['total_s']:.1f} / {r['total_cpu_s']:.1f} s | {r['total_s'] / base:.0f}×, "
              f"{r['total_cpu_s'] / max(base_cpu, 1e-9):.0f}× | {r['peak_rss_mb']:,.0f} MB |")
    if len(results) > 1:
        a, b = results[0], results[-1]
        print(f"\nscaling {a['rows']:,} → {b['rows']:,} dossiers ({b['rows'] / a['rows']:.0f}× rows): total train "
              f"{b['total_s'] / a['total_s']:.2f}×, peak RSS {b['peak_rss_mb'] / a['peak_rss_mb']:.2f}×")
    print("\n" + json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
