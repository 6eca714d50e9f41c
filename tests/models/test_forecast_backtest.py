"""The forecast's rolling-origin backtest on the demo generator's dossiers (small: 150k dossiers, no warehouse).

The same check as benchmarks/bench_backtest.py at 5M dossiers, kept cheap: 12 origins 3 weeks apart covering
Tết 2025, against seasonal-naive and against the generator's own expectation (the oracle). Fails if the
margin over seasonal-naive slips below 10 % per series or per agency, if the model drifts away from the
oracle, or if the 80 % ranges stop holding 75–85 % of later values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from models.inflow_forecast import PARAMS, backtest, evaluate, panel_from_weekly
from pipelines.demo.dossiers import expected_weekly_inflow
from tests.models.conftest import DEMO_AS_OF, DEMO_ROWS, DEMO_SEED

LAST_WEEK = np.datetime64("2025-10-27")


@pytest.fixture(scope="module")
def metrics(demo_dossiers):
    frame = demo_dossiers.select("ngay_nhan", "co_quan", "linh_vuc")
    weekly = (frame.with_columns(pl.col("ngay_nhan").dt.truncate("1w").alias("tuan_bat_dau"))
              .group_by("tuan_bat_dau", "co_quan", "linh_vuc").agg(pl.len().cast(pl.Float64).alias("n_tiep_nhan"))
              .to_pandas())
    daily = (frame.group_by("ngay_nhan", "linh_vuc").agg(pl.len().cast(pl.Float64).alias("n"))
             .rename({"ngay_nhan": "ngay"}).to_pandas())
    panel = panel_from_weekly(weekly, LAST_WEEK)
    expected = expected_weekly_inflow(DEMO_ROWS, DEMO_SEED, DEMO_AS_OF).to_pandas()
    expected = expected.merge(panel.keys.reset_index(), on=["co_quan", "linh_vuc"])
    w = ((pd.to_datetime(expected["tuan_bat_dau"]).to_numpy(dtype="datetime64[D]") - panel.weeks[0]).astype(int) // 7)
    ok = w < panel.weeks.size
    oracle = np.zeros(panel.y.shape)
    oracle[expected["index"].to_numpy()[ok], w[ok]] = expected["n_ky_vong"].to_numpy()[ok]
    bt = backtest(panel, PARAMS, oracle, daily)
    bt["agency"] = panel.keys["co_quan"].to_numpy()[bt["s"]]
    tet_2025 = np.datetime64("2025-01-27")
    covers_tet = any(panel.weeks[o] < tet_2025 <= panel.weeks[o] + 7 * PARAMS["horizon_weeks"]
                     for o in bt["origin"].unique())
    return evaluate(bt, PARAMS), covers_tet


def test_twelve_origins_covering_tet(metrics):
    m, covers_tet = metrics
    assert m["n_folds"] == 12 and covers_tet
    assert m["tiers_in_backtest"] == ["poisson_glm"]


def test_beats_seasonal_naive_by_10_percent_per_series_and_per_agency(metrics):
    m, _ = metrics
    assert m["mape_model"] <= 0.9 * m["mape_seasonal_naive"], m
    assert m["agency_mape_model"] <= 0.9 * m["agency_mape_seasonal_naive"], m


def test_close_to_what_the_generator_itself_allows(metrics):
    m, _ = metrics
    # Within 10 % of the generator's own expectation at 150k dossiers, where Poisson noise is most of both errors
    # (1.03 per series, 1.06 per agency now; the 15 % target is checked at 5M by bench_backtest.py).
    assert m["ratio_to_oracle"] <= 1.10, m
    assert m["agency_ratio_to_oracle"] <= 1.10, m


def test_80_percent_ranges_hold_75_to_85_percent_of_later_values(metrics):
    m, _ = metrics
    assert 0.75 <= m["interval_coverage"] <= 0.85, m
    deciles, sizes = m["interval_coverage_by_size_decile"], m["interval_size_by_decile"]
    assert len(deciles) == 10
    # Never too narrow, in any decile.
    assert all(c >= 0.75 for c in deciles), deciles
    # 75–85 % wherever a series gets at least a dossier a week. At 150k dossiers the smaller half of the
    # series get 0.1–0.6 a week: 55–90 % of their weeks are 0, and on whole counts a range either holds
    # 0 only (55–90 % of weeks) or 0 and 1 (88–99 %), so exactly 80 % is out of reach there; those deciles
    # are only kept from being absurdly wide (at 5M every decile is checked: benchmarks/bench_backtest.py).
    checked = [c for c, size in zip(deciles, sizes, strict=True) if size >= 1.0]
    assert len(checked) >= 3, sizes
    assert all(c <= 0.85 for c in checked), (deciles, sizes)
    assert all(c <= 0.95 for c in deciles), (deciles, m["interval_zero_share_by_decile"])
