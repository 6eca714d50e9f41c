"""Dossier inflow forecast: dossiers per agency (cơ quan) and procedure field (lĩnh vực) per week, 1–8 weeks ahead.

One global gradient-boosting model (Poisson loss) over every agency × field series, fed with the series' recent
level per working day, the same weeks last year, the field's province-wide seasonality and the target week's
calendar (working days, public holidays, weeks from Tết, month-end). Judged by a rolling-origin backtest
against the seasonal-naive rule ("same week last year") and a 4-week moving average; 80 % prediction
intervals come from the backtest's own out-of-sample residuals. Nothing asserts that the model wins: the
metrics carry `beats_baseline`, and the model card says so plainly when it does not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.calendar import CALENDAR_FEATURES, week_calendar
from models.registry import ModelRun, data_fingerprint, record, recorded_run, save_artefact, version_for
from pipelines.warehouse import table_exists, transaction

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig
    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.models.inflow_forecast")
NAME = "inflow_forecast"
# The shared contracts a tenant needs for this model (checked by validate-config: pipelines/crossrefs.py).
REQUIRES = ("ho_so",)
OUTPUT_TABLE = "marts.du_bao_ho_so_tuan"
BACKTEST_TABLE = "marts.du_bao_kiem_dinh"
SEASON = 52
PARAMS = {
    "horizon_weeks": 8, "n_folds": 4, "fold_step_weeks": 4, "max_train_rows": 20_000, "min_history_weeks": 4,
    "interval": 0.8, "loss": "poisson", "max_iter": 150, "learning_rate": 0.05, "max_leaf_nodes": 15,
    "min_samples_leaf": 40, "l2_regularization": 1.0, "seed": 0,
}
# Levels are per working day and, except `log_base`, relative to the series' base (its last-13-week level):
# the model learns multiplicative corrections (season, Tết, trend) that hold for big and small counters alike.
FEATURES = ["h", "log_base", "rel_level_4", "rel_level_52", "rel_last_week", "rel_last_year", "rel_last_year_3",
            "rel_level_year_ago", "season_index", "field_season", "n_weeks_history", "field", *CALENDAR_FEATURES]
MIN_BASE = 0.02  # dossiers per working day assumed for a series silent for the last 13 weeks
MAX_CATEGORIES = 250  # HistGradientBoosting's limit on categories; rarer fields share the last code

WEEKLY_SQL = """
    select tuan_bat_dau, co_quan, linh_vuc, sum(n_tiep_nhan)::double as n_tiep_nhan
    from marts.ho_so_tuan
    group by all
"""


@dataclass
class Panel:
    """Weekly counts as a dense matrix: one row per series, one column per week; NaN before a series starts."""

    keys: pd.DataFrame  # co_quan, linh_vuc (one row per series)
    weeks: np.ndarray   # datetime64[D] Mondays, consecutive
    y: np.ndarray       # (n_series, n_weeks) float

    @property
    def field_codes(self) -> np.ndarray:
        codes = pd.Categorical(self.keys["linh_vuc"]).codes.astype(float)
        return np.minimum(codes, MAX_CATEGORIES)


def panel_from_weekly(weekly: pd.DataFrame, last_week: np.datetime64 | None = None) -> Panel:
    """Long weekly counts (tuan_bat_dau, co_quan, linh_vuc, n_tiep_nhan) → Panel up to `last_week` inclusive."""
    frame = weekly.copy()
    frame["tuan_bat_dau"] = pd.to_datetime(frame["tuan_bat_dau"]).to_numpy(dtype="datetime64[D]")
    if last_week is not None:
        frame = frame[frame["tuan_bat_dau"] <= pd.Timestamp(last_week)]
    first = frame["tuan_bat_dau"].min().to_datetime64().astype("datetime64[D]")
    last = frame["tuan_bat_dau"].max().to_datetime64().astype("datetime64[D]")
    weeks = np.arange(first, last + 1, 7)
    keys = frame[["co_quan", "linh_vuc"]].drop_duplicates().sort_values(["co_quan", "linh_vuc"]).reset_index(drop=True)
    s = frame.merge(keys.reset_index(), on=["co_quan", "linh_vuc"])["index"].to_numpy()
    w = ((frame["tuan_bat_dau"].to_numpy(dtype="datetime64[D]") - first).astype(int) // 7)
    y = np.zeros((len(keys), weeks.size))
    np.add.at(y, (s, w), frame["n_tiep_nhan"].to_numpy(dtype=float))
    started = np.maximum.accumulate(y > 0, axis=1)
    y[~started] = np.nan
    return Panel(keys, weeks, y)


class Features:
    """Builds the design matrix for (series, origin week, horizon) triplets from cumulative sums: O(rows)."""

    def __init__(self, panel: Panel, horizon: int):
        self.panel = panel
        n_s, n_w = panel.y.shape
        all_weeks = np.concatenate([panel.weeks, panel.weeks[-1] + 7 * np.arange(1, horizon + 1)])
        self.calendar = week_calendar(all_weeks)
        self.wd = np.maximum(self.calendar["n_working_days"].to_numpy(), 1.0)
        valid = ~np.isnan(panel.y)
        yz = np.nan_to_num(panel.y)
        zero = np.zeros((n_s, 1))
        self.cy = np.hstack([zero, yz.cumsum(axis=1)])
        self.cv = np.hstack([zero, valid.cumsum(axis=1)])
        self.cwd = np.hstack([zero, (valid * self.wd[:n_w]).cumsum(axis=1)])
        self.valid, self.yz = valid, yz
        # Each field's province-wide weekly total per working day, for a pooled (less noisy) seasonal index.
        codes = panel.field_codes.astype(int)
        totals = np.zeros((codes.max() + 1 if codes.size else 1, n_w))
        np.add.at(totals, codes, yz)
        self.field_rate = totals / self.wd[:n_w]
        self.field_cum = np.hstack([np.zeros((totals.shape[0], 1)), self.field_rate.cumsum(axis=1)])
        self.codes = codes

    def open_days(self, week_index: np.ndarray) -> np.ndarray:
        """Working days (Monday–Friday, minus public holidays) of each week index, future weeks included."""
        return self.calendar["n_working_days"].to_numpy()[week_index]

    def _window(self, cum: np.ndarray, s: np.ndarray, end: np.ndarray, k: int) -> np.ndarray:
        start = np.maximum(end - k + 1, 0)
        return cum[s, end + 1] - cum[s, start]

    def _level(self, s: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
        wd = self._window(self.cwd, s, t, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(wd > 0, self._window(self.cy, s, t, k) / wd, np.nan)

    def base(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Dossiers per working day over the last 13 weeks (else the last 52, else MIN_BASE)."""
        level = self._level(s, t, 13)
        level = np.where(np.nan_to_num(level) > 0, level, self._level(s, t, 52))
        return np.maximum(np.nan_to_num(level), MIN_BASE)

    def exposure(self, s: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Expected dossiers if nothing changed: base rate × working days of the target week."""
        return self.base(s, t) * self.open_days(t + h)

    def build(self, s: np.ndarray, t: np.ndarray, h: np.ndarray) -> pd.DataFrame:
        n_w = self.panel.y.shape[1]
        target = t + h
        ly = target - SEASON
        has_ly = (ly >= 0) & self.valid[s, np.clip(ly, 0, n_w - 1)]
        ly_c = np.clip(ly, 0, n_w - 1)
        last_year = np.where(has_ly, self.yz[s, ly_c] / self.wd[ly_c], np.nan)
        lo, hi = np.clip(ly - 1, 0, n_w - 1), np.clip(ly + 1, 0, n_w - 1)
        wd3 = self.cwd[s, hi + 1] - self.cwd[s, lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            last_year_3 = np.where(has_ly & (wd3 > 0), (self.cy[s, hi + 1] - self.cy[s, lo]) / wd3, np.nan)
            # Last year, from the origin's 13-week level to the target week (around it, ±1 week): how much
            # the season moved the series — and its whole field, pooled over agencies, which is less noisy.
            f = self.codes[s]
            origin_ly = np.clip(t - SEASON, 0, n_w - 1)
            a = np.clip(origin_ly - 12, 0, n_w - 1)
            field_level = (self.field_cum[f, origin_ly + 1] - self.field_cum[f, a]) / (origin_ly - a + 1)
            field_target = (self.field_cum[f, hi + 1] - self.field_cum[f, lo]) / (hi - lo + 1)
            field_season = np.where((t - SEASON >= 0) & (field_level > 0), field_target / field_level, np.nan)
        base = self.base(s, t)
        year_ago = t - SEASON
        level_year_ago = np.where(year_ago >= 0, self._level(s, np.clip(year_ago, 0, n_w - 1), 13), np.nan)
        level_year_ago[level_year_ago == 0] = np.nan  # silent a year ago: no seasonal index, not infinity
        frame = pd.DataFrame({
            "h": h.astype(float), "log_base": np.log(base),
            "rel_level_4": self._level(s, t, 4) / base, "rel_level_52": self._level(s, t, 52) / base,
            "rel_last_week": self.yz[s, t] / self.wd[t] / base,
            "rel_last_year": last_year / base, "rel_last_year_3": last_year_3 / base,
            "rel_level_year_ago": level_year_ago / base, "season_index": last_year_3 / level_year_ago,
            "field_season": field_season,
            "n_weeks_history": np.minimum(self.cv[s, t + 1], 104.0),
            "field": self.panel.field_codes[s],
        })
        cal = self.calendar.iloc[target].reset_index(drop=True)
        return pd.concat([frame, cal], axis=1)[FEATURES]


def seasonal_naive(panel: Panel, s: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The obvious rule: the same week last year; a series younger than a year repeats its last week."""
    n_w = panel.y.shape[1]
    ly = t + h - SEASON
    same_week = panel.y[s, np.clip(ly, 0, n_w - 1)]
    return np.where((ly >= 0) & ~np.isnan(same_week), same_week, np.nan_to_num(panel.y[s, t]))


def moving_average(panel: Panel, s: np.ndarray, t: np.ndarray, k: int = 4) -> np.ndarray:
    window = np.stack([panel.y[s, np.maximum(t - i, 0)] for i in range(k)])
    return np.nanmean(np.where(np.isnan(window), np.nan, window), axis=0)


def _triplets(panel: Panel, origins: np.ndarray, horizon: int, last_target: int, min_history: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (series, origin, horizon) with at least `min_history` observed weeks and target ≤ last_target."""
    valid = ~np.isnan(panel.y)
    history = valid.cumsum(axis=1)
    s_list, t_list, h_list = [], [], []
    for h in range(1, horizon + 1):
        ts = origins[origins + h <= last_target]
        if not ts.size:
            continue
        ok = history[:, ts] >= min_history
        s_idx, t_pos = np.nonzero(ok)
        s_list.append(s_idx)
        t_list.append(ts[t_pos])
        h_list.append(np.full(s_idx.size, h))
    if not s_list:
        empty = np.array([], dtype=int)
        return empty, empty, empty
    return np.concatenate(s_list), np.concatenate(t_list), np.concatenate(h_list)


def _fit(features: Features, panel: Panel, last_target: int, params: dict):
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    origins = np.arange(panel.y.shape[1])
    s, t, h = _triplets(panel, origins, params["horizon_weeks"], last_target, params["min_history_weeks"])
    open_days = features.open_days(t + h)
    s, t, h = s[open_days > 0], t[open_days > 0], h[open_days > 0]
    if s.size > params["max_train_rows"]:
        # A uniform sample keeps every period and series represented; fixed seed keeps reruns identical.
        keep = np.sort(np.random.default_rng(params["seed"]).choice(s.size, params["max_train_rows"], replace=False))
        s, t, h = s[keep], t[keep], h[keep]
    if s.size < 50:
        return None
    model = HistGradientBoostingRegressor(
        loss=params["loss"], max_iter=params["max_iter"], learning_rate=params["learning_rate"],
        max_leaf_nodes=params["max_leaf_nodes"], min_samples_leaf=params["min_samples_leaf"],
        l2_regularization=params["l2_regularization"], categorical_features=[FEATURES.index("field")],
        early_stopping=False, random_state=params["seed"])
    # One thread: the training set is small, and OpenMP threads spinning against a busy scheduler or
    # Airflow worker made each fit 10-30 times slower here.
    # Poisson with exposure = base rate × working days: the model learns the ratio to "nothing changed",
    # and a week the offices are closed for Tết or National Day is forecast at zero by construction.
    exposure = features.exposure(s, t, h)
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(features.build(s, t, h), panel.y[s, t + h] / exposure, sample_weight=exposure)
    return model


def _predict(model, features: Features, s: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
    if not s.size:
        return np.array([])
    return model.predict(features.build(s, t, h)) * features.exposure(s, t, h)


def backtest(panel: Panel, params: dict = PARAMS) -> pd.DataFrame:
    """Rolling-origin backtest: at each origin, fit on what was known then and forecast the next weeks.

    Returns one row per (fold, series, horizon) with the actual count and the three forecasts.
    """
    horizon, n_w = params["horizon_weeks"], panel.y.shape[1]
    features = Features(panel, horizon)
    frames = []
    for k in range(params["n_folds"]):
        origin = n_w - 1 - horizon - k * params["fold_step_weeks"]
        if origin < params["min_history_weeks"] + horizon:
            break
        model = _fit(features, panel, origin, params)
        if model is None:
            break
        s, t, h = _triplets(panel, np.array([origin]), horizon, n_w - 1, 1)
        frames.append(pd.DataFrame({
            "fold": k, "origin": origin, "s": s, "h": h, "actual": panel.y[s, t + h],
            "model": _predict(model, features, s, t, h),
            "seasonal_naive": seasonal_naive(panel, s, t, h),
            "moving_avg_4": moving_average(panel, s, t),
        }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _scale(pred: np.ndarray) -> np.ndarray:
    # Counts vary roughly like a Poisson: residuals divided by sqrt(mean) are comparable across series sizes.
    return np.sqrt(np.maximum(pred, 0.0) + 0.5)


def interval(pred: np.ndarray, q_lo: np.ndarray, q_hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The range around each forecast. For a series that is 0 most weeks the upper quantile can sit below
    the mean; the range is widened to hold the forecast itself, and never goes below 0 dossiers."""
    scale = _scale(pred)
    return np.clip(pred + q_lo * scale, 0.0, pred), np.maximum(pred + q_hi * scale, pred)


def interval_quantiles(bt: pd.DataFrame, level: float) -> pd.DataFrame:
    """Per horizon, the lower/upper quantiles of scaled backtest residuals (actual − forecast) / sqrt(forecast)."""
    z = (bt["actual"] - bt["model"]) / _scale(bt["model"].to_numpy())
    alpha = (1 - level) / 2
    return z.groupby(bt["h"]).quantile([alpha, 1 - alpha]).unstack().set_axis(["q_lo", "q_hi"], axis=1)


def evaluate(bt: pd.DataFrame, level: float = PARAMS["interval"]) -> dict:
    """MAE and weighted MAPE (Σ|error| / Σactual: weeks with zero dossiers make plain MAPE undefined)."""
    metrics: dict = {"n_backtest_points": int(len(bt)), "n_folds": int(bt["fold"].nunique())}
    actual_sum = bt["actual"].sum()
    for method in ("model", "seasonal_naive", "moving_avg_4"):
        err = (bt[method] - bt["actual"]).abs()
        metrics[f"mae_{method}"] = float(err.mean())
        metrics[f"mape_{method}"] = float(err.sum() / actual_sum) if actual_sum else None
    # Agency level (fields summed): the grain staffing decisions use.
    agency = bt.groupby(["fold", "h", "agency"])[["actual", "model", "seasonal_naive"]].sum()
    for method in ("model", "seasonal_naive"):
        metrics[f"agency_mae_{method}"] = float((agency[method] - agency["actual"]).abs().mean())
    metrics["beats_baseline"] = bool(metrics["mae_model"] < metrics["mae_seasonal_naive"]
                                     and (metrics["mape_model"] or 0) < (metrics["mape_seasonal_naive"] or 0))
    metrics["beats_moving_avg_4"] = bool(metrics["mae_model"] < metrics["mae_moving_avg_4"])
    # Honest interval coverage: quantiles from the older folds, checked on the newest one.
    if metrics["n_folds"] > 1:
        q = interval_quantiles(bt[bt["fold"] > 0], level)
        newest = bt[bt["fold"] == 0].join(q, on="h")
        lo, hi = interval(newest["model"].to_numpy(), newest["q_lo"].to_numpy(), newest["q_hi"].to_numpy())
        metrics["interval_coverage"] = float(((newest["actual"] >= lo) & (newest["actual"] <= hi)).mean())
    return metrics


@dataclass
class ForecastResult:
    forecast: pd.DataFrame  # co_quan, linh_vuc, tuan_bat_dau, tuan_truoc, n_du_bao, n_du_bao_thap, n_du_bao_cao
    backtest: pd.DataFrame
    metrics: dict
    model: object


def fit_forecast(panel: Panel, params: dict = PARAMS) -> ForecastResult | None:
    """Backtest, then refit on everything and forecast the weeks after the panel's last week."""
    bt = backtest(panel, params)
    if bt.empty:
        return None
    bt["agency"] = panel.keys["co_quan"].to_numpy()[bt["s"]]
    metrics = evaluate(bt, params["interval"])
    horizon, n_w = params["horizon_weeks"], panel.y.shape[1]
    features = Features(panel, horizon)
    model = _fit(features, panel, n_w - 1, params)
    # Forecast only series alive in the last year: an agency that stopped receiving a field is not re-opened.
    recent = np.nansum(panel.y[:, max(0, n_w - SEASON):], axis=1) > 0
    series = np.flatnonzero(recent & ~np.isnan(panel.y[:, -1]))
    s = np.repeat(series, horizon)
    h = np.tile(np.arange(1, horizon + 1), series.size)
    t = np.full(s.size, n_w - 1)
    pred = _predict(model, features, s, t, h)
    q = interval_quantiles(bt, params["interval"]).reindex(range(1, horizon + 1)).fillna(0.0)
    low, high = interval(pred, q["q_lo"].to_numpy()[h - 1], q["q_hi"].to_numpy()[h - 1])
    forecast = pd.DataFrame({
        "co_quan": panel.keys["co_quan"].to_numpy()[s],
        "linh_vuc": panel.keys["linh_vuc"].to_numpy()[s],
        "tuan_bat_dau": (panel.weeks[-1] + 7 * h).astype("datetime64[ns]"),
        "tuan_truoc": h.astype(int),
        "n_du_bao": pred,
        "n_du_bao_thap": low,
        "n_du_bao_cao": high,
    })
    return ForecastResult(forecast, bt, metrics, model)


def backtest_summary(bt: pd.DataFrame) -> pd.DataFrame:
    """MAE and weighted MAPE per method and horizon (tuan_truoc = 0: all horizons together)."""
    rows = []
    for h, part in [(0, bt), *bt.groupby("h")]:
        for method in ("model", "seasonal_naive", "moving_avg_4"):
            err = (part[method] - part["actual"]).abs()
            rows.append({"phuong_phap": method, "tuan_truoc": int(h), "mae": float(err.mean()),
                         "mape": float(err.sum() / part["actual"].sum()) if part["actual"].sum() else None,
                         "n_diem": int(len(part))})
    return pd.DataFrame(rows)


def last_complete_week(con: duckdb.DuckDBPyConnection) -> np.datetime64 | None:
    """The last Monday whose working week (to Friday) the data covers: a half-filled week would look like a dip."""
    as_of = con.execute("select max(data_as_of) from staging.ho_so").fetchone()[0]
    if as_of is None:
        return None
    as_of = np.datetime64(as_of, "D")
    monday = as_of - ((as_of.astype("int64") + 3) % 7)
    return monday if as_of >= monday + 4 else monday - 7


def _card(version: str, m: dict, n_series: int) -> str:
    verdict = ("beats" if m["beats_baseline"] else "does NOT beat") + " the same-week-last-year rule"
    return (f"Inflow forecast ({version}): dossiers per agency and field for each of the next "
            f"{PARAMS['horizon_weeks']} weeks, {n_series:,} series, with {PARAMS['interval']:.0%} ranges. "
            f"Backtest over {m['n_folds']} past origins: MAE {m['mae_model']:.2f} vs {m['mae_seasonal_naive']:.2f} "
            f"dossiers/week for same-week-last-year and {m['mae_moving_avg_4']:.2f} for the 4-week average; "
            f"weighted MAPE {m['mape_model']:.1%} vs {m['mape_seasonal_naive']:.1%}: the model {verdict}. "
            f"Ranges held the actual value {m.get('interval_coverage', float('nan')):.0%} of the time on the "
            "newest backtest origin. Knows public holidays and Tết; does not know about new procedures or "
            "reorganisations until they show in the data.")


def train(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths, run_id: str) -> ModelRun | None:
    if not table_exists(con, "marts", "ho_so_tuan"):
        log.warning("no marts.ho_so_tuan for tenant '%s': inflow_forecast not trained", tenant.tenant_id)
        return None
    last_week = last_complete_week(con)
    if last_week is None:
        log.warning("staging.ho_so is empty for tenant '%s': inflow_forecast not trained", tenant.tenant_id)
        return None
    query = f"select * from ({WEEKLY_SQL}) where tuan_bat_dau <= '{last_week}'::date"
    fp = data_fingerprint(con, query)
    version = version_for(NAME, fp, PARAMS)
    if (done := recorded_run(con, NAME, version, OUTPUT_TABLE)) is not None:
        log.info("inflow_forecast %s already trained on this data: kept", version)
        return done
    weekly = con.execute(query).df()
    if weekly.empty:
        log.warning("no complete week of dossiers for tenant '%s': inflow_forecast not trained", tenant.tenant_id)
        return None
    panel = panel_from_weekly(weekly, last_week)
    result = fit_forecast(panel, PARAMS)
    if result is None:
        log.warning("too little history (%d weeks) to backtest inflow_forecast", panel.weeks.size)
        return None
    metrics = {**result.metrics, "n_series": int(len(panel.keys)), "n_weeks": int(panel.weeks.size),
               "last_week": str(panel.weeks[-1])}
    artefact = save_artefact(result.model, paths.models, version)
    card = _card(version, metrics, int(result.forecast[["co_quan", "linh_vuc"]].drop_duplicates().shape[0]))
    forecast = result.forecast.assign(tuan_goc=panel.weeks[-1].astype("datetime64[ns]"), model_version=version)
    summary = backtest_summary(result.backtest).assign(model_version=version)
    with transaction(con):
        con.register("forecast_df", forecast)
        con.execute(f"""create or replace table {OUTPUT_TABLE} as
            select tuan_bat_dau::date as tuan_bat_dau, co_quan, linh_vuc, tuan_truoc, tuan_goc::date as tuan_goc,
                   n_du_bao, n_du_bao_thap, n_du_bao_cao, model_version
            from forecast_df order by tuan_bat_dau, co_quan, linh_vuc""")
        con.unregister("forecast_df")
        con.register("summary_df", summary)
        con.execute(f"create or replace table {BACKTEST_TABLE} as select * from summary_df")
        con.unregister("summary_df")
        run = ModelRun(NAME, version, fp, {**PARAMS, "features": FEATURES,
                                           "mape": "weighted: sum |error| / sum actual"},
                       metrics, artefact, card)
        record(con, run, run_id)
    log.info("inflow_forecast %s: MAE %.3f vs seasonal-naive %.3f (beats_baseline=%s)", version,
             metrics["mae_model"], metrics["mae_seasonal_naive"], metrics["beats_baseline"])
    return run
