"""Inflow forecast on synthetic weekly series with a planted yearly cycle and Tết closures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.calendar import week_calendar
from models.inflow_forecast import PARAMS, Panel, fit_forecast, panel_from_weekly, seasonal_naive

FIRST, LAST = np.datetime64("2022-01-03"), np.datetime64("2025-01-06")  # Mondays; Tết 2025 is 3 weeks later


def _synthetic(n_series: int = 24, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """Poisson counts: a series level × a yearly sine cycle × working days / 5 (so Tết weeks drop to ~0)."""
    rng = np.random.default_rng(seed)
    weeks = np.arange(FIRST, LAST + 1, 7)
    cal = week_calendar(np.concatenate([weeks, LAST + 7 * np.arange(1, 9)]))
    woy = cal["week_of_year"].to_numpy()
    rate_all = (1 + 0.5 * np.sin(2 * np.pi * woy / 52)) * cal["n_working_days"].to_numpy() / 5
    level = rng.uniform(4, 30, n_series)
    rows = []
    for s in range(n_series):
        counts = rng.poisson(level[s] * rate_all[: weeks.size])
        rows += [{"tuan_bat_dau": w, "co_quan": f"Cơ quan {s % 6}", "linh_vuc": f"Lĩnh vực {s // 6}", "n_tiep_nhan": c}
                 for w, c in zip(weeks, counts, strict=True)]
    return pd.DataFrame(rows), level[:, None] * rate_all[None, weeks.size:]


@pytest.fixture(scope="module")
def result():
    weekly, truth = _synthetic()
    panel = panel_from_weekly(weekly)
    return panel, fit_forecast(panel, PARAMS), truth


def test_panel_is_dense_with_nan_before_a_series_starts():
    weekly = pd.DataFrame({"tuan_bat_dau": pd.to_datetime(["2025-01-06", "2025-01-20", "2025-01-20"]),
                           "co_quan": ["A", "A", "B"], "linh_vuc": ["x", "x", "x"], "n_tiep_nhan": [3, 4, 5]})
    panel = panel_from_weekly(weekly)
    # Three consecutive Mondays; A has a silent week (0) in the middle, B had not started before week 3.
    np.testing.assert_array_equal(panel.y, [[3, 0, 4], [np.nan, np.nan, 5]])


def test_seasonal_naive_is_the_same_week_last_year_or_the_last_week():
    y = np.arange(60, dtype=float)[None, :]
    panel = Panel(pd.DataFrame({"co_quan": ["A"], "linh_vuc": ["x"]}), np.arange(60) * 7, y)
    # Origin week 55, 1 ahead → week 56, whose week last year is 56 − 52 = 4.
    assert seasonal_naive(panel, np.array([0]), np.array([55]), np.array([1])).tolist() == [4.0]
    young = Panel(panel.keys, panel.weeks, np.where(np.arange(60) < 20, np.nan, y))
    # Week 4 does not exist for a series that started in week 20: repeat the origin week's 55.
    assert seasonal_naive(young, np.array([0]), np.array([55]), np.array([1])).tolist() == [55.0]


def test_beats_seasonal_naive_on_a_planted_cycle(result):
    _, fitted, _ = result
    m = fitted.metrics
    # Same-week-last-year carries last year's Poisson noise on top of this year's (twice the variance)
    # and misplaces Tết, which moved from 1 Feb 2022 to 22 Jan 2023 and 10 Feb 2024.
    assert m["beats_baseline"] is True
    assert m["mae_model"] < 0.85 * m["mae_seasonal_naive"]
    assert m["n_folds"] == PARAMS["n_folds"]
    # An 80 % range computed on older folds holds roughly 80 % of the newest fold's values.
    assert 0.6 <= m["interval_coverage"] <= 0.95


def test_forecast_knows_tet_and_recovers_the_level(result):
    panel, fitted, truth = result
    total = fitted.forecast.groupby("tuan_truoc")["n_du_bao"].sum()
    expected = truth.sum(axis=0)
    # Week 3 ahead is Mon 27 Jan 2025: Tết closes every office day, the planted rate is 0.
    assert expected[2] == 0
    assert total[3] < 0.2 * total[1]
    # Other weeks: within 20 % of the planted expectation, summed over the 24 series.
    for h in (1, 2, 6, 7, 8):
        assert abs(total[h] - expected[h - 1]) < 0.2 * expected[h - 1], (h, total[h], expected[h - 1])
    assert (fitted.forecast["n_du_bao_thap"] <= fitted.forecast["n_du_bao"]).all()
    assert (fitted.forecast["n_du_bao"] <= fitted.forecast["n_du_bao_cao"]).all()
    assert len(fitted.forecast) == len(panel.keys) * PARAMS["horizon_weeks"]


@pytest.mark.parametrize(("n_weeks", "tier"), [(8, "level"), (20, "level"), (30, "poisson_glm_calendar"),
                                               (70, "poisson_glm")])
def test_any_history_from_8_weeks_forecasts_with_a_model_it_names(n_weeks, tier):
    weekly, _ = _synthetic(n_series=12)
    last = FIRST + 7 * (n_weeks - 1)
    panel = panel_from_weekly(weekly[weekly["tuan_bat_dau"] <= pd.Timestamp(last)])
    assert panel.weeks.size == n_weeks
    fitted = fit_forecast(panel, PARAMS)
    assert fitted.tier == tier and fitted.metrics["tier"] == tier
    fc = fitted.forecast
    assert len(fc) == len(panel.keys) * PARAMS["horizon_weeks"]
    assert np.isfinite(fc[["n_du_bao", "n_du_bao_thap", "n_du_bao_cao"]].to_numpy()).all()
    assert (fc["n_du_bao_thap"] <= fc["n_du_bao"]).all() and (fc["n_du_bao"] <= fc["n_du_bao_cao"]).all()
    # The forecast is near the series' real level (×working days), not zero or exploding.
    level = np.nanmean(panel.y[:, -8:])
    assert 0.5 * level < fc.loc[fc["tuan_truoc"] == 1, "n_du_bao"].mean() < 1.5 * level
    assert fitted.metrics["n_folds"] >= 1  # even 8 weeks are backtested (on partial horizons)


def test_the_model_card_says_when_it_falls_back():
    from models.inflow_forecast import _card

    m = {"tier": "level", "n_weeks": 10}
    card = _card("inflow_forecast-x", m, 5, "2025-01-06 to 2025-03-16")
    assert "FALLBACK: only 10 weeks of history" in card and "too little history to backtest" in card
    assert "2025-01-06 to 2025-03-16" in card and "Limitations" in card
