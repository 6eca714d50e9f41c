"""Benchmark: the inflow forecast's rolling-origin backtest on the demo province (not collected by pytest).

    TONGHOP_PII_KEY=... .venv/bin/python benchmarks/bench_backtest.py [--rows 1000000 5000000] [--home /tmp/tonghop-bench-models]

Builds (once, kept between runs) the demo warehouse like bench_models.py, then backtests the forecast over
12 rolling origins 3 weeks apart (8 weeks ahead each, covering Tết 2025) against seasonal-naive (same week
last year) and against the oracle: the generator's own expectation of every agency × field week from its
parameters (`pipelines.demo.dossiers.expected_weekly_inflow`, no day-to-day noise), which no forecast can
beat on average. Reports weighted MAPE per agency × field and per agency, the gain over seasonal-naive,
the ratio to the oracle, and the 80 % intervals' coverage overall and per series-size decile (each origin
checked with intervals calibrated on older origins only). Figures go to docs/performance.md and docs/models.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from pathlib import Path

from report import command_line, row  # benchmarks/report.py (the script's folder is on sys.path)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
AS_OF, SEED = date(2025, 11, 1), 37  # pipelines.demo.generate's defaults, which bench_models' build uses


def oracle_matrix(panel, rows: int):
    """The generator's expectation aligned with the panel's series and weeks."""
    import numpy as np
    import pandas as pd

    from pipelines.demo.dossiers import expected_weekly_inflow

    expected = expected_weekly_inflow(rows, SEED, AS_OF).to_pandas()
    expected["tuan_bat_dau"] = pd.to_datetime(expected["tuan_bat_dau"]).to_numpy(dtype="datetime64[D]")
    index = panel.keys.reset_index().rename(columns={"index": "s"})
    frame = expected.merge(index, on=["co_quan", "linh_vuc"])
    w = ((frame["tuan_bat_dau"].to_numpy(dtype="datetime64[D]") - panel.weeks[0]).astype(int) // 7)
    ok = (w >= 0) & (w < panel.weeks.size)
    out = np.zeros(panel.y.shape)
    out[frame["s"].to_numpy()[ok], w[ok]] = frame["n_ky_vong"].to_numpy()[ok]
    return out


def backtest_figures(warehouse: Path, rows: int) -> dict:
    import duckdb

    from models.inflow_forecast import DAILY_SQL, PARAMS, WEEKLY_SQL, backtest, evaluate, panel_from_weekly

    con = duckdb.connect(str(warehouse), read_only=True)
    from models.inflow_forecast import last_complete_week

    last_week = last_complete_week(con)
    weekly = con.execute(f"select * from ({WEEKLY_SQL}) where tuan_bat_dau <= '{last_week}'::date").df()
    daily = con.execute(f"select * from ({DAILY_SQL}) where ngay <= '{last_week}'::date + 6").df()
    n_dossiers = con.execute("select count(*) from staging.ho_so").fetchone()[0]
    con.close()
    panel = panel_from_weekly(weekly, last_week)
    oracle = oracle_matrix(panel, n_dossiers)
    started = time.perf_counter()
    bt = backtest(panel, PARAMS, oracle, daily)
    bt["agency"] = panel.keys["co_quan"].to_numpy()[bt["s"]]
    metrics = evaluate(bt, PARAMS)
    metrics["backtest_s"] = time.perf_counter() - started
    # The oracle also knows the one-off dip of the 1 July 2025 reorganisation (pipelines/demo/workdays.py
    # REFORM_DIP), which no forecast from history can: the ratio without the weeks it touches, reported beside.
    import numpy as np

    from pipelines.demo.workdays import REFORM_DIP

    target = panel.weeks[bt["origin"].to_numpy() + bt["h"].to_numpy()]
    touched = (target + 6 >= REFORM_DIP[0].astype("datetime64[D]")) & (target <= REFORM_DIP[1].astype("datetime64[D]"))
    rest = evaluate(bt[~touched], PARAMS)
    metrics["without_reform_weeks"] = {k: rest[k] for k in ("mape_model", "mape_oracle", "ratio_to_oracle",
                                                            "agency_mape_model", "agency_mape_oracle",
                                                            "agency_ratio_to_oracle")}
    metrics["reform_weeks_share_of_points"] = float(np.mean(touched))
    weeks = panel.weeks
    metrics["origins"] = [str(weeks[o]) for o in sorted(bt["origin"].unique())]
    metrics["n_series"], metrics["n_weeks"] = int(len(panel.keys)), int(weeks.size)
    return metrics


def main() -> None:
    import bench_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000_000])
    parser.add_argument("--home", type=Path, default=Path("/tmp/tonghop-bench-models"))  # shared with bench_models
    args = parser.parse_args()
    if not os.environ.get("TONGHOP_PII_KEY"):
        sys.exit("set TONGHOP_PII_KEY (any long secret) to build the benchmark warehouse")
    for rows in args.rows:
        warehouse = bench_models.build(rows, args.home / f"h{rows}")
        m = backtest_figures(warehouse, rows)
        print("RESULT " + json.dumps(m, default=str), flush=True)
        label = f"{rows:,} dossiers, {m['n_folds']} origins {m['origins'][0]}…{m['origins'][-1]}"
        cmd = command_line()
        for grain, name in (("", "agency × field"), ("agency_", "agency")):
            row(f"forecast wMAPE per {name}, {label}", "seasonal-naive wMAPE", m[f"{grain}mape_seasonal_naive"],
                m[f"{grain}mape_model"], "wMAPE", cmd, target="≤ 0.90× seasonal-naive",
                note=f"oracle {m[f'{grain}mape_oracle']:.3f}; model/oracle {m[f'{grain}ratio_to_oracle']:.2f} "
                     f"(target ≤ 1.15); without the reform-dip weeks "
                     f"{m['without_reform_weeks'][f'{grain}ratio_to_oracle']:.2f}")
        deciles = m.get("interval_coverage_by_size_decile", [])
        row(f"forecast 80 % interval coverage, {label}", "nominal", 0.8, m.get("interval_coverage", float("nan")),
            "share", cmd, target="0.75–0.85 overall and per size decile",
            note="per size decile " + ", ".join(f"{c:.2f}" for c in deciles))
        print("\n| grain | model wMAPE | seasonal-naive | gain | oracle | model/oracle |\n|---|---:|---:|---:|---:|---:|")
        for grain, name in (("", "agency × field"), ("agency_", "agency")):
            print(f"| {name} | {m[f'{grain}mape_model']:.2%} | {m[f'{grain}mape_seasonal_naive']:.2%} | "
                  f"{m[f'{grain}gain_vs_seasonal_naive']:.1%} | {m[f'{grain}mape_oracle']:.2%} | "
                  f"{m[f'{grain}ratio_to_oracle']:.3f} |")
        print(f"\ncoverage {m.get('interval_coverage')}, by decile {deciles}")
        print(f"without the reform-dip weeks: {m['without_reform_weeks']}")


if __name__ == "__main__":
    main()
