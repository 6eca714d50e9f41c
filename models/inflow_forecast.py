"""Dossier inflow forecast: dossiers per agency (cơ quan) and procedure field (lĩnh vực) per week, 1–8 weeks ahead.

Each agency × field series is its field's daily profile times the series' own level (its share of the field
over the last year, pooled across the agency × field table), so big and small counters share one seasonal
shape. The field profile is
e^(a_f + s_f,month) × a daily profile shared by every field, from two small penalised Poisson fits (see
`Design`): the fields' composition (levels and each field's own months, empirical-Bayes shrunk by that
field's spread) from field × month totals in which whatever hits every field alike cancels, and the shared
daily profile (weekday, month-end, one smoothed effect per day around Tết, declared national events such
as the 1 July 2025 reorganisation, trend, and with two years a shared month effect) from the province's
daily totals, weighted by their measured day-to-day swing. Shorter histories fall back to simpler models, named
in the model card:
- ≥ 52 weeks: the full model above (`poisson_glm`);
- 26–51 weeks: the same without month effects or trend, which cannot be told apart yet (`poisson_glm_calendar`);
- fewer: each series' level per working day over its last 13 weeks × the target week's working days (`level`).

Judged by a rolling-origin backtest (12 origins, 3 weeks apart, 8 weeks ahead each) against the
seasonal-naive rule ("same week last year") and a 4-week moving average. 80 % intervals: the spread of a
count with a shock shared by every series (variance μ + φμ², φ from the backtest, larger in weeks with
fewer open days), widened per series-size decile by split-conformal quantiles of the backtest's scaled
residuals; coverage is checked on origins later than the residuals it was calibrated on. Nothing asserts
that the model wins: the metrics carry `beats_baseline`, and the model card says so plainly when it does not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.calendar import EVENTS, event_windows, tet_offsets
from models.registry import (
    ModelRun,
    data_fingerprint,
    record,
    recorded_run,
    save_artefact,
    training_window,
    version_for,
)
from pipelines.reference.calendar import WEEKMASK, holiday_days
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
    "horizon_weeks": 8, "n_folds": 12, "fold_step_weeks": 3, "interval": 0.8,
    "level_weeks": 52, "short_level_weeks": 13, "min_weeks_glm": 26, "min_weeks_season": 52,
    "min_origin_weeks": 4, "n_size_bins": 10, "min_calibration_points": 200,
    # Prior SDs (log scale) of the penalised fits: vague for the calendar, Tết's day-to-day step (a starting
    # value, then learnt by empirical Bayes), its overall size, a declared event's effect and the trend per
    # year; month effects start at `month_sd_start` and are learnt the same way (per field, and shared).
    # The trend's prior is tight (±5 % a year, 1 SD): under two years of history a trend cannot be told from
    # a season shared by every field or from a run of busy months, and an extrapolated one does the most harm
    # (a demo seed whose 2024 ended busy fitted +24 %/yr and forecast Feb–Mar 2025 7–16 % high; docs/models.md).
    "prior_sd_calendar": 10.0, "tet_step_sd": 0.1, "tet_step_eb": True, "tet_sd": 1.0, "event_sd": 1.0,
    "trend_sd": 0.05, "month_sd_start": 0.5, "eb_iterations": 6, "min_weeks_common_months": 104,
}
TIERS = {"poisson_glm": "Poisson GLM: each field's months, weekday, Tết days, month-end, national events, trend",
         "poisson_glm_calendar": "Poisson GLM without month effects or trend (under a year of history)",
         "level": "each series' recent level per working day × working days (under 26 weeks of history)"}
Z80 = 1.2815515655446004

DAILY_SQL = """
    select ngay_nhan as ngay, linh_vuc, count(*)::double as n
    from staging.ho_so
    group by all
"""
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
        return pd.Categorical(self.keys["linh_vuc"]).codes.astype(int)


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


def tier_for(n_weeks: int, params: dict = PARAMS) -> str:
    """Which model a history of `n_weeks` weeks supports (see the module docstring)."""
    if n_weeks >= params["min_weeks_season"]:
        return "poisson_glm"
    return "poisson_glm_calendar" if n_weeks >= params["min_weeks_glm"] else "level"


TET_DAYS = (-35, 49)  # days from the first day of Tết the model learns an effect for (one per day, smoothed)


def penalised_poisson(X: np.ndarray, y: np.ndarray, offset: np.ndarray, weight: np.ndarray, penalty: np.ndarray,
                      beta: np.ndarray | None = None, max_iter: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Poisson log-link fit by penalised Newton steps: maximises Σ w·(y·η − e^η) − ½ βᵀPβ, η = offset + Xβ.

    `penalty` is the precision matrix P of a Gaussian prior centred on 0. Returns (β, inverse Hessian: the
    posterior covariance, in units of the weighted likelihood).
    """
    beta = np.zeros(X.shape[1]) if beta is None else beta.copy()
    hessian = penalty
    for _ in range(max_iter):
        mu = np.exp(np.clip(offset + X @ beta, -30.0, 30.0))
        grad = X.T @ (weight * (y - mu)) - penalty @ beta
        hessian = (X * (weight * mu)[:, None]).T @ X + penalty
        step = np.linalg.solve(hessian, grad)
        biggest = np.max(np.abs(step)) if step.size else 0.0
        beta = beta + (step if biggest <= 2.0 else step * (2.0 / biggest))
        if biggest < 1e-7:
            break
    return beta, np.linalg.inv(hessian)


@dataclass
class Fitted:
    """One origin's fitted profile: log e^(a_f + s_f,month) × the common daily profile (see Design.fit)."""

    field_level: np.ndarray   # a_f (n_fields)
    field_month: np.ndarray   # s_f,m (n_fields × 12): each field's own months, shrunk by its own spread
    common: np.ndarray        # β of the common daily design (Design.common_columns)
    columns: list[str]
    origin_day: int
    tier: str
    dispersion: float         # κ: a day's total varies as μ + κμ² (the day's shared shock)

    def as_artefact(self) -> dict:
        return {"field_level": self.field_level, "field_month": self.field_month, "common": self.common,
                "columns": list(self.columns), "origin_day": int(self.origin_day), "tier": self.tier,
                "dispersion": float(self.dispersion)}


class Design:
    """Every day of the panel plus the horizon, and the two fits behind each origin's forecast.

    Counts per field and office day are modelled as e^(a_f + s_f,month) × a daily profile shared by every
    field. Two fits, each where its information is:
    - the fields' composition (a_f, s_f,m) from month × field totals with a free effect per month of the
      history, so whatever hits every field alike that month (Tết, holidays, a busy week) cancels out; each
      field's month effects are shrunk by an empirical-Bayes prior whose spread is learnt from that field
      (a field without seasonality gets ~0, a school-transfer field keeps its summer);
    - the shared daily profile from the province's daily totals (offset by the composition): weekday, the
      last 3 working days of a month and its last Saturday, each day from 35 before to 48 after Tết (one
      effect per day, smoothed as a random walk, so one past Tết teaches every offset whatever weekday it
      fell on), declared national events (models/calendar.py EVENTS, learnt once days after them exist), a
      common month effect (empirical-Bayes shrunk, with two years of history) and a trend. Day-to-day swings
      shared by every field are far larger than Poisson noise at the province level, so each day is weighted
      as a count of variance μ + κμ² (κ measured): the priors then weigh against the real noise.
    Public holidays are closed days (forecast 0). Without daily counts (`daily` None), each week's count is
    spread evenly over its working days and the weekday effects are then flat.
    """

    def __init__(self, panel: Panel, horizon: int, params: dict = PARAMS, daily: pd.DataFrame | None = None):
        self.panel, self.params = panel, params
        n_w = panel.weeks.size
        self.all_weeks = np.concatenate([panel.weeks, panel.weeks[-1] + 7 * np.arange(1, horizon + 1)])
        self.days = np.arange(self.all_weeks[0], self.all_weeks[-1] + 7)
        self.day_week = np.arange(self.days.size) // 7
        years = self.days.astype("datetime64[Y]").astype(int) + 1970
        hol = holiday_days(int(years.min()) - 1, int(years.max()) + 1)
        weekday = (self.days.astype("int64") + 3) % 7  # 0 = Monday
        self.workday = np.is_busday(self.days, weekmask=WEEKMASK, holidays=hol)
        self.open = (weekday < 6) & ~np.isin(self.days, hol)  # Saturdays may open (a morning counter)
        self.wd = np.bincount(self.day_week, weights=self.workday, minlength=self.all_weeks.size)
        next_month = (self.days.astype("datetime64[M]") + 1).astype("datetime64[D]")
        left = np.busday_count(self.days, next_month, weekmask=WEEKMASK, holidays=hol)
        self.month = self.days.astype("datetime64[M]").astype(int) % 12
        self.month_index = self.days.astype("datetime64[M]").astype(int)
        self.month_index -= self.month_index.min()
        self.tet_offset = tet_offsets(self.days)
        self.events = event_windows(self.days)
        self.base = np.hstack([
            np.ones((self.days.size, 1)),
            np.eye(6)[np.minimum(weekday, 5)][:, 1:],                           # Tuesday … Saturday vs Monday
            (self.workday & (left <= 3))[:, None],                               # last 3 working days of a month
            ((weekday == 5) & (next_month - self.days <= 7))[:, None],           # last Saturday of a month
        ]).astype(float)
        self.base_names = ["intercept", "tue", "wed", "thu", "fri", "sat", "month_end", "last_saturday"]
        self.codes = panel.field_codes
        self.agency_codes = pd.Categorical(panel.keys["co_quan"]).codes.astype(int)
        self.n_fields = int(self.codes.max()) + 1 if self.codes.size else 0
        self.field_y = np.zeros((self.n_fields, n_w))
        np.add.at(self.field_y, self.codes, np.nan_to_num(panel.y))
        self.field_alive = np.zeros((self.n_fields, n_w), dtype=bool)
        np.logical_or.at(self.field_alive, self.codes, ~np.isnan(panel.y))
        self.field_day = self._daily(daily)

    def _daily(self, daily: pd.DataFrame | None) -> np.ndarray:
        """Dossiers per field and day (n_fields × days of the panel's weeks)."""
        n_days = self.panel.weeks.size * 7
        out = np.zeros((self.n_fields, n_days))
        if daily is not None and len(daily):
            fields = pd.Categorical(daily["linh_vuc"], categories=pd.Categorical(self.panel.keys["linh_vuc"]).categories)
            d = (pd.to_datetime(daily["ngay"]).to_numpy(dtype="datetime64[D]") - self.days[0]).astype(int)
            ok = (fields.codes >= 0) & (d >= 0) & (d < n_days)
            np.add.at(out, (fields.codes[ok], d[ok]), daily["n"].to_numpy(dtype=float)[ok])
            return out
        # Weekly counts only: spread each field's week evenly over its working days.
        per_day = self.field_y / np.maximum(self.wd[: self.panel.weeks.size], 1.0)
        return per_day[:, self.day_week[:n_days]] * self.workday[:n_days]

    def common_columns(self, day: np.ndarray, origin_day: int, tier: str) -> tuple[np.ndarray, list[str]]:
        """The shared daily design of `day` (indices into self.days); the trend is in years from the origin."""
        lo, hi = TET_DAYS
        tet = np.zeros((day.size, hi - lo))
        off = self.tet_offset[day]
        inside = (off >= lo) & (off < hi)
        tet[np.flatnonzero(inside), off[inside] - lo] = 1.0
        cols = [self.base[day], tet, self.events[day]]
        names = [*self.base_names, *(f"tet{d:+d}" for d in range(lo, hi)), *(e.name for e in EVENTS)]
        if tier == "poisson_glm":
            cols.append(((day - origin_day) / 365.25)[:, None])
            names.append("trend")
            # A month effect shared by every field is told apart from the trend only with two of each month.
            if origin_day >= 7 * self.params["min_weeks_common_months"]:
                cols.append(np.eye(12)[self.month[day]])
                names += [f"month{m + 1}" for m in range(12)]
        return np.hstack(cols), names

    def _prior(self, names: list[str], tau_month: float, tet_step: float) -> np.ndarray:
        """Prior precision of the common design: vague for the calendar, a smooth random walk across Tết days."""
        p = self.params
        prior = np.eye(len(names)) / p["prior_sd_calendar"] ** 2
        idx = {n: i for i, n in enumerate(names)}
        tet = [idx[n] for n in names if n.startswith("tet")]
        walk = np.diff(np.eye(len(tet)), axis=0)  # day-to-day changes of the Tết effect
        prior[np.ix_(tet, tet)] += walk.T @ walk / tet_step ** 2 + np.eye(len(tet)) / p["tet_sd"] ** 2
        for e in EVENTS:
            prior[idx[e.name], idx[e.name]] = 1.0 / p["event_sd"] ** 2
        for m in (n for n in names if n.startswith("month")):
            prior[idx[m], idx[m]] = 1.0 / tau_month ** 2
        if "trend" in idx:
            prior[idx["trend"], idx["trend"]] = 1.0 / p["trend_sd"] ** 2
        return prior

    def _composition(self, last_day: int, tier: str) -> tuple[np.ndarray, np.ndarray]:
        """a_f and s_f,m from field × month-of-history totals with a free effect per month of history."""
        n_f = self.n_fields
        alive = self.field_alive[:, self.day_week[:last_day]] & self.open[None, :last_day]
        counts = self.field_day[:, :last_day] * alive
        mi = self.month_index[:last_day]
        n_m = int(mi.max()) + 1
        y = np.zeros((n_f, n_m))
        exposure = np.zeros((n_f, n_m))
        np.add.at(y.T, mi, counts.T)
        np.add.at(exposure.T, mi, alive.T.astype(float))
        open_days = np.bincount(mi, weights=self.open[:last_day].astype(float), minlength=n_m)
        f, m = np.nonzero(exposure > 0)
        if f.size == 0:
            return np.zeros(n_f), np.zeros((n_f, 12))
        cal_month = (np.arange(n_m) + self.days[0].astype("datetime64[M]").astype(int)) % 12
        seasonal = tier == "poisson_glm"
        n_cols = n_m + n_f + (n_f * 12 if seasonal else 0)
        X = np.zeros((f.size, n_cols))
        X[np.arange(f.size), m] = 1.0
        X[np.arange(f.size), n_m + f] = 1.0
        if seasonal:
            X[np.arange(f.size), n_m + n_f + f * 12 + cal_month[m]] = 1.0
        offset = np.log(exposure[f, m] / np.maximum(open_days[m], 1.0))
        # The field levels are free up to a shared constant: month-of-history effects carry the total.
        base_prec = np.r_[np.full(n_m, 1e-6), np.full(n_f, 1e-2)]
        tau2 = np.full(n_f, self.params["month_sd_start"] ** 2)
        beta = None
        for _ in range(self.params["eb_iterations"] if seasonal else 1):
            prec = np.r_[base_prec, np.repeat(1.0 / tau2, 12)] if seasonal else base_prec
            beta, cov = penalised_poisson(X, y[f, m], offset, np.ones(f.size), np.diag(prec), beta)
            if not seasonal:
                break
            s = beta[n_m + n_f:].reshape(n_f, 12)
            v = np.diag(cov)[n_m + n_f:].reshape(n_f, 12)
            seen = np.zeros((n_f, 12), dtype=bool)
            seen[f, cal_month[m]] = True
            # EM update of each field's month-effect variance (months the field was seen in).
            tau2 = np.array([max(((s[i] ** 2 + v[i])[seen[i]]).mean() if seen[i].any() else 1e-6, 1e-6)
                             for i in range(n_f)])
        level = beta[n_m: n_m + n_f]
        months = beta[n_m + n_f:].reshape(n_f, 12) if seasonal else np.zeros((n_f, 12))
        return level, months

    def fit(self, origin: int, tier: str) -> Fitted:
        """Both fits on every day up to the end of week `origin` (closed days left out)."""
        from threadpoolctl import threadpool_limits

        # One BLAS thread: the matrices are a few hundred wide, and threads spinning on a busy machine cost 10×.
        with threadpool_limits(limits=1):
            return self._fit(origin, tier)

    def _fit(self, origin: int, tier: str) -> Fitted:
        p = self.params
        last_day = (origin + 1) * 7
        level, months = self._composition(last_day, tier)
        alive_day = self.field_alive[:, self.day_week[:last_day]] & self.open[None, :last_day]
        day = np.flatnonzero(alive_day.any(axis=0))
        y = (self.field_day[:, day] * alive_day[:, day]).sum(axis=0)
        mix = (np.exp(level[:, None] + months[:, self.month[day]]) * alive_day[:, day]).sum(axis=0)
        offset = np.log(np.maximum(mix, 1e-12))
        X, names = self.common_columns(day, last_day, tier)
        dispersion, tau_month, tet_step, beta = 0.0, p["month_sd_start"], p["tet_step_sd"], None
        mu = np.zeros(day.size)
        months_at = [i for i, n in enumerate(names) if n.startswith("month")]
        tet_at = np.array([i for i, n in enumerate(names) if n.startswith("tet")])
        seen_tet = np.isin(self.tet_offset[day], np.arange(*TET_DAYS)).any()
        for _ in range(p["eb_iterations"]):
            # A day's total varies as μ + κμ² (a shock shared by the whole day, ~15 % on the demo, on top of
            # Poisson noise): each day weighs 1 / (1 + κμ), so busy and quiet days count alike and the priors
            # weigh against the real noise. The first pass is plain Poisson (κ = 0).
            beta, cov = penalised_poisson(X, y, offset, 1.0 / (1.0 + dispersion * mu),
                                          self._prior(names, tau_month, tet_step), beta)
            mu = np.exp(offset + X @ beta)
            dispersion = max(float(np.sum((y - mu) ** 2 - mu) / max(np.sum(mu ** 2), 1e-12)), 0.0)
            if seen_tet and p.get("tet_step_eb"):
                # EM update of the random walk's step variance from the fitted steps and their uncertainty.
                walk = np.diff(np.eye(tet_at.size), axis=0)
                steps = walk @ beta[tet_at]
                var = np.einsum("ij,jk,ik->i", walk, cov[np.ix_(tet_at, tet_at)], walk)
                tet_step = float(np.sqrt(max(np.mean(steps ** 2 + var), 1e-6)))
            if months_at:
                tau_month = float(np.sqrt(max(np.mean(beta[months_at] ** 2 + np.diag(cov)[months_at]), 1e-6)))
        return Fitted(level, months, beta, names, last_day, tier, dispersion)

    def log_rate(self, model: Fitted, fields: np.ndarray, day: np.ndarray) -> np.ndarray:
        X, _ = self.common_columns(day, model.origin_day, model.tier)
        return X @ model.common + model.field_level[fields] + model.field_month[fields, self.month[day]]

    def weekly_profile(self, model: Fitted, fields: np.ndarray, weeks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each (field, week)'s expected total (the sum of its open days' predictions) and its effective number
        of open days, (Σ day)² / Σ day²: 5 for five even days, fewer when holidays close some."""
        day = (weeks[:, None] * 7 + np.arange(7)[None, :]).ravel()
        f = np.repeat(fields, 7)
        pred = (np.exp(self.log_rate(model, f, day)) * self.open[day]).reshape(-1, 7)
        total = pred.sum(axis=1)
        return total, total ** 2 / np.maximum((pred ** 2).sum(axis=1), 1e-12)


def pooled_levels(counts: np.ndarray, expected: np.ndarray, agency: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Each series' level (dossiers per unit of its field's profile), pooled across the agency × field table.

    A series' level is first predicted as agency effect × field effect (a commune's size shows in all its
    fields; a Poisson fit on the series totals), then its own count moves it from there as far as its size
    allows: a gamma prior around the prediction whose spread k is learnt from all series (empirical Bayes),
    posterior mean (count + k) / (prediction + k) × prediction.
    """
    ok = expected > 0
    level = np.zeros(counts.size)
    if not ok.any():
        return level
    a_codes, a_inv = np.unique(agency[ok], return_inverse=True)
    f_codes, f_inv = np.unique(field[ok], return_inverse=True)
    n_a, n_f = a_codes.size, f_codes.size
    X = np.zeros((int(ok.sum()), n_a + n_f))
    X[np.arange(X.shape[0]), a_inv] = 1.0
    X[np.arange(X.shape[0]), n_a + f_inv] = 1.0
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # a 150-wide fit: BLAS threads only spin on a busy machine
        beta, _ = penalised_poisson(X, counts[ok], np.log(expected[ok]), np.ones(X.shape[0]),
                                    np.eye(n_a + n_f) * 1e-4)
    mu0 = expected[ok] * np.exp(X @ beta)
    y = counts[ok]
    # Spread of the series around the agency × field prediction beyond Poisson noise (method of moments).
    tau2 = max(float(np.sum((y - mu0) ** 2 - y) / max(np.sum(mu0 ** 2), 1e-12)), 1e-6)
    k = 1.0 / tau2
    level[ok] = (y + k) / (mu0 + k) * mu0 / expected[ok]
    return level


def forecast_at(design: Design, origin: int, s: np.ndarray, h: np.ndarray, tier: str | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, Fitted | None]:
    """Forecasts of series `s`, `h` weeks after `origin`, from what was known at the origin.

    Returns (forecast, series size: its mean weekly count over the last year, the target week's shock factor:
    5 / its effective number of open days, so a 3-day week's shared swing is larger; the fitted model or None).
    """
    panel, params = design.panel, design.params
    y = panel.y[:, : origin + 1]
    tier = tier or tier_for(origin + 1, params)
    start = max(0, origin + 1 - params["level_weeks"])
    window = y[:, start:]
    valid = ~np.isnan(window)
    size = np.nansum(window, axis=1) / np.maximum(valid.sum(axis=1), 1)
    target = origin + h
    if tier == "level":
        k = max(0, origin + 1 - params["short_level_weeks"])
        recent, ok = np.nan_to_num(y[:, k:]), ~np.isnan(y[:, k:])
        per_day = recent.sum(axis=1) / np.maximum((ok * design.wd[k: origin + 1]).sum(axis=1), 1.0)
        return per_day[s] * design.wd[target], size[s], 5.0 / np.clip(design.wd[target], 1.0, 5.0), None
    model = design.fit(origin, tier)
    n_f = design.n_fields
    past = np.arange(start, origin + 1)
    fitted, _ = design.weekly_profile(model, np.repeat(np.arange(n_f), past.size), np.tile(past, n_f))
    fitted = fitted.reshape(n_f, past.size)
    # The series' level: its dossiers over what its field's profile expected in the weeks it was open,
    expected = (valid * fitted[design.codes]).sum(axis=1)
    # pooled across the agency × field table (a small series borrows its agency's and its field's size).
    level = pooled_levels(np.nansum(window, axis=1), expected, design.agency_codes, design.codes)
    # One profile per (field, target week), shared by the field's series.
    pairs, inverse = np.unique(np.stack([design.codes[s], target]), axis=1, return_inverse=True)
    profile, open_days = design.weekly_profile(model, pairs[0], pairs[1])
    inverse = inverse.ravel()
    return level[s] * profile[inverse], size[s], 5.0 / np.clip(open_days[inverse], 1.0, 5.0), model


def seasonal_naive(panel: Panel, s: np.ndarray, t: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The obvious rule: the same week last year; a series younger than a year repeats its last week."""
    n_w = panel.y.shape[1]
    ly = t + h - SEASON
    same_week = panel.y[s, np.clip(ly, 0, n_w - 1)]
    return np.where((ly >= 0) & ~np.isnan(same_week), same_week, np.nan_to_num(panel.y[s, t]))


def moving_average(panel: Panel, s: np.ndarray, t: np.ndarray, k: int = 4) -> np.ndarray:
    window = np.stack([panel.y[s, np.maximum(t - i, 0)] for i in range(k)])
    with np.errstate(all="ignore"):
        return np.nan_to_num(np.nanmean(window, axis=0))


def backtest_origins(n_weeks: int, params: dict = PARAMS) -> np.ndarray:
    """Origins of the rolling backtest, newest first: full horizons when the history allows, else partial."""
    horizon, step, first = params["horizon_weeks"], params["fold_step_weeks"], params["min_origin_weeks"] - 1
    full = np.array([n_weeks - 1 - horizon - k * step for k in range(params["n_folds"])])
    full = full[full >= first]
    if full.size:
        return full
    partial = np.arange(n_weeks - 2, first - 1, -step)[: params["n_folds"]]
    return partial


def backtest(panel: Panel, params: dict = PARAMS, oracle: np.ndarray | None = None,
             daily: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rolling-origin backtest: at each origin, fit on what was known then and forecast the next weeks.

    One row per (fold, series, horizon): actual, the model, seasonal-naive, 4-week average, the series size
    at the origin, and the oracle's expectation when one is given (an (n_series, n_weeks) array).
    """
    horizon, n_w = params["horizon_weeks"], panel.y.shape[1]
    design = Design(panel, horizon, params, daily)
    frames = []
    for k, origin in enumerate(backtest_origins(n_w, params)):
        hs = np.arange(1, min(horizon, n_w - 1 - origin) + 1)
        alive = np.flatnonzero(~np.isnan(panel.y[:, origin]))
        s, h = np.repeat(alive, hs.size), np.tile(hs, alive.size)
        t = np.full(s.size, origin)
        pred, size, shock, _ = forecast_at(design, origin, s, h)
        frame = pd.DataFrame({
            "fold": k, "origin": origin, "tier": tier_for(origin + 1, params), "s": s, "h": h,
            "actual": np.nan_to_num(panel.y[s, t + h]), "model": pred, "size": size, "shock": shock,
            "seasonal_naive": seasonal_naive(panel, s, t, h), "moving_avg_4": moving_average(panel, s, t),
        })
        if oracle is not None:
            frame["oracle"] = oracle[s, t + h]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _var_scale(pred: np.ndarray, phi: float, shock: np.ndarray | float = 1.0) -> np.ndarray:
    # A count around its forecast: Poisson noise (μ) plus a shock shared by all series that week (φμ², larger
    # in a week with fewer open days: `shock` = 5 / its effective open days).
    mu = np.maximum(pred, 0.0)
    return np.sqrt(mu + phi * shock * mu ** 2 + 0.25)


def _conformal_q(z: np.ndarray, cluster: np.ndarray, level: float) -> float:
    """Split-conformal quantile with the finite-sample correction ⌈(n+1)·level⌉ / n for the effective number
    of independent residuals: a week's shock is shared by every series, so big series' residuals of one
    (origin, week) move together (n_eff = n / design effect, from the intra-week correlation of z)."""
    n = z.size
    _, inverse, counts = np.unique(cluster, return_inverse=True, return_counts=True)
    m = float(np.sum(counts ** 2) / n)  # mean cluster size seen by a point
    means = np.bincount(inverse, weights=z) / counts
    total = z.var()
    between = float(np.sum(counts * (means - z.mean()) ** 2) / n)
    within = total - between
    # Intra-week correlation (one-way ANOVA estimate): the between-week variance beyond what chance gives.
    rho = 0.0 if total <= 0 or m <= 1 else float(np.clip((between - within / m) / total, 0.0, 1.0))
    n_eff = n / (1 + (m - 1) * rho)
    adjusted = min(1.0, np.ceil((n_eff + 1) * level) / n_eff)
    return float(np.quantile(z, adjusted))


@dataclass
class Intervals:
    """80 % ranges: μ ± q_bin · sqrt(μ + φ·k·μ² + ¼), q per series-size bin (split-conformal, corrected for the
    residuals a shared weekly shock makes move together), k = 5 / the week's effective open days."""

    phi: float
    edges: np.ndarray  # inner edges of the size bins (n_bins − 1 values)
    q: np.ndarray      # one quantile per bin
    calibrated: bool

    @classmethod
    def fit(cls, bt: pd.DataFrame, params: dict = PARAMS) -> Intervals:
        level, n_bins = params["interval"], params["n_size_bins"]
        if len(bt) < params["min_calibration_points"]:
            return cls(0.0, np.array([]), np.array([Z80]), False)
        mu, y, shock = bt["model"].to_numpy(), bt["actual"].to_numpy(), bt["shock"].to_numpy()
        phi = float(max(0.0, np.sum((y - mu) ** 2 - mu) / max(np.sum(shock * mu ** 2), 1e-9)))
        edges = np.unique(np.quantile(bt["size"], np.linspace(0, 1, n_bins + 1)[1:-1]))
        z = np.abs(y - mu) / _var_scale(mu, phi, shock)
        bins = np.searchsorted(edges, bt["size"].to_numpy(), side="right")
        week = (bt["origin"].to_numpy() + bt["h"].to_numpy()) * 1000 + bt["origin"].to_numpy()
        q = np.array([_conformal_q(z[bins == b], week[bins == b], level) if (bins == b).sum() >= 20
                      else np.quantile(z, level) for b in range(edges.size + 1)])
        return cls(phi, edges, q, True)

    def bounds(self, pred: np.ndarray, size: np.ndarray, shock: np.ndarray | float = 1.0
               ) -> tuple[np.ndarray, np.ndarray]:
        q = self.q[np.searchsorted(self.edges, size, side="right")] if self.edges.size else self.q[0]
        half = q * _var_scale(pred, self.phi, shock)
        return np.maximum(pred - half, 0.0), pred + half


def honest_coverage(bt: pd.DataFrame, params: dict = PARAMS) -> pd.DataFrame:
    """Each origin's rows checked against intervals calibrated only on older origins' finished forecasts.

    Returns the checked rows with `covered` (the origins with too few older residuals are left out).
    """
    horizon, out = params["horizon_weeks"], []
    for origin, rows in bt.groupby("origin"):
        older = bt[bt["origin"] + horizon <= origin]
        if len(older) < params["min_calibration_points"] or older["origin"].nunique() < 2:
            continue
        lo, hi = Intervals.fit(older, params).bounds(rows["model"].to_numpy(), rows["size"].to_numpy(),
                                                     rows["shock"].to_numpy())
        out.append(rows.assign(covered=(rows["actual"] >= lo) & (rows["actual"] <= hi)))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _wmape(err: pd.Series, actual: pd.Series) -> float | None:
    total = float(actual.sum())
    return float(err.abs().sum() / total) if total else None


def evaluate(bt: pd.DataFrame, params: dict = PARAMS) -> dict:
    """MAE and weighted MAPE (Σ|error| / Σactual: weeks with zero dossiers make plain MAPE undefined),
    per series and per agency (fields summed), for the model, the baselines and the oracle if present."""
    methods = [m for m in ("model", "seasonal_naive", "moving_avg_4", "oracle") if m in bt]
    metrics: dict = {"n_backtest_points": int(len(bt)), "n_folds": int(bt["fold"].nunique()),
                     "backtest_from": int(bt["origin"].min()), "backtest_to": int(bt["origin"].max()),
                     "tiers_in_backtest": sorted(bt["tier"].unique().tolist())}
    for method in methods:
        err = bt[method] - bt["actual"]
        metrics[f"mae_{method}"] = float(err.abs().mean())
        metrics[f"mape_{method}"] = _wmape(err, bt["actual"])
    # Agency level (fields summed): the grain staffing decisions use.
    agency = bt.groupby(["fold", "h", "agency"])[["actual", *methods]].sum()
    for method in methods:
        err = agency[method] - agency["actual"]
        metrics[f"agency_mae_{method}"] = float(err.abs().mean())
        metrics[f"agency_mape_{method}"] = _wmape(err, agency["actual"])
    for grain in ("", "agency_"):
        m, b = metrics[f"{grain}mape_model"], metrics[f"{grain}mape_seasonal_naive"]
        metrics[f"{grain}gain_vs_seasonal_naive"] = (1 - m / b) if m is not None and b else None
        if "oracle" in methods and metrics[f"{grain}mape_oracle"]:
            metrics[f"{grain}ratio_to_oracle"] = m / metrics[f"{grain}mape_oracle"]
    metrics["beats_baseline"] = bool(metrics["mae_model"] < metrics["mae_seasonal_naive"]
                                     and (metrics["mape_model"] or 0) < (metrics["mape_seasonal_naive"] or 0))
    metrics["beats_moving_avg_4"] = bool(metrics["mae_model"] < metrics["mae_moving_avg_4"])
    checked = honest_coverage(bt, params)
    if not checked.empty:
        metrics["interval_coverage"] = float(checked["covered"].mean())
        metrics["interval_coverage_n_origins"] = int(checked["origin"].nunique())
        deciles = pd.qcut(checked["size"], 10, labels=False, duplicates="drop")
        by_decile = checked.groupby(deciles)
        metrics["interval_coverage_by_size_decile"] = [float(v) for v in by_decile["covered"].mean()]
        # Each decile's median series size (dossiers a week) and share of weeks with none: where most weeks are
        # 0, any range holding 0 holds that share of them, so 80 % cannot be hit exactly on whole counts.
        metrics["interval_size_by_decile"] = [float(v) for v in by_decile["size"].median()]
        metrics["interval_zero_share_by_decile"] = [float(v) for v in by_decile["actual"].apply(lambda a: (a == 0).mean())]
    return metrics


@dataclass
class ForecastResult:
    forecast: pd.DataFrame  # co_quan, linh_vuc, tuan_bat_dau, tuan_truoc, n_du_bao, n_du_bao_thap, n_du_bao_cao
    backtest: pd.DataFrame
    metrics: dict
    model: dict | None  # the fitted profile's parameters (Fitted.as_artefact), None for the `level` tier
    tier: str


def fit_forecast(panel: Panel, params: dict = PARAMS, oracle: np.ndarray | None = None,
                 daily: pd.DataFrame | None = None) -> ForecastResult | None:
    """Backtest, then refit on everything and forecast the weeks after the panel's last week.

    Works from one week of history up (the model tier depends on the length, see `tier_for`); None only
    when the panel holds no series at all.
    """
    if panel.y.size == 0:
        return None
    horizon, n_w = params["horizon_weeks"], panel.y.shape[1]
    bt = backtest(panel, params, oracle, daily)
    metrics: dict = {}
    if not bt.empty:
        bt["agency"] = panel.keys["co_quan"].to_numpy()[bt["s"]]
        metrics = evaluate(bt, params)
    intervals = Intervals.fit(bt, params) if not bt.empty else Intervals(0.0, np.array([]), np.array([Z80]), False)
    tier = tier_for(n_w, params)
    design = Design(panel, horizon, params, daily)
    # Forecast only series alive in the last year: an agency that stopped receiving a field is not re-opened.
    recent = np.nansum(panel.y[:, max(0, n_w - SEASON):], axis=1) > 0
    series = np.flatnonzero(recent & ~np.isnan(panel.y[:, -1]))
    s = np.repeat(series, horizon)
    h = np.tile(np.arange(1, horizon + 1), series.size)
    pred, size, shock, model = forecast_at(design, n_w - 1, s, h, tier)
    low, high = intervals.bounds(pred, size, shock)
    forecast = pd.DataFrame({
        "co_quan": panel.keys["co_quan"].to_numpy()[s],
        "linh_vuc": panel.keys["linh_vuc"].to_numpy()[s],
        "tuan_bat_dau": (panel.weeks[-1] + 7 * h).astype("datetime64[ns]"),
        "tuan_truoc": h.astype(int),
        "n_du_bao": pred,
        "n_du_bao_thap": low,
        "n_du_bao_cao": high,
    })
    metrics.update({"tier": tier, "interval_phi": intervals.phi, "interval_calibrated": intervals.calibrated,
                    "interval_q_by_size_bin": [float(q) for q in intervals.q]})
    metrics.setdefault("beats_baseline", False)
    return ForecastResult(forecast, bt, metrics, model.as_artefact() if model is not None else None, tier)


def backtest_summary(bt: pd.DataFrame) -> pd.DataFrame:
    """MAE and weighted MAPE per method and horizon (tuan_truoc = 0: all horizons together)."""
    rows = []
    if bt.empty:
        return pd.DataFrame(columns=["phuong_phap", "tuan_truoc", "mae", "mape", "n_diem"])
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


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _card(version: str, m: dict, n_series: int, window: str) -> str:
    if "mape_model" not in m:
        check = ("There was too little history to backtest it: no past origin to check it against yet, and "
                 "its ranges are plain Poisson ranges, not calibrated on past errors.")
    else:
        verdict = ("beats" if m["beats_baseline"] else "does NOT beat") + " the same-week-last-year rule"
        deciles = m.get("interval_coverage_by_size_decile") or []
        coverage = (f"80 % ranges held the actual value {m['interval_coverage']:.0%} of the time (by series-size "
                    f"decile {min(deciles):.0%}–{max(deciles):.0%}) on origins later than their calibration"
                    if "interval_coverage" in m else "ranges not yet checked on later origins")
        check = (f"Backtest over {m['n_folds']} past origins: weighted MAPE {_pct(m['mape_model'])} vs "
                 f"{_pct(m['mape_seasonal_naive'])} for same-week-last-year per agency × field, "
                 f"{_pct(m['agency_mape_model'])} vs {_pct(m['agency_mape_seasonal_naive'])} per agency: the model "
                 f"{verdict}; {coverage}.")
    fallback = "" if m["tier"] == "poisson_glm" else (
        f" FALLBACK: only {m['n_weeks']} weeks of history, so it uses the simpler '{m['tier']}' model "
        f"({TIERS[m['tier']]}); the full model needs {PARAMS['min_weeks_season']} weeks.")
    return (f"Inflow forecast ({version}): dossiers per agency and field for each of the next "
            f"{PARAMS['horizon_weeks']} weeks, {n_series:,} series, trained on {window}. Model: {TIERS[m['tier']]}."
            f"{fallback} {check} Limitations: knows public holidays, Tết (learnt day by day from past Tết) and the "
            "national events declared in models/calendar.py, whose effect it learns only once their first days are "
            "in the data (before that it assumes none); it does not know undeclared one-off events (a new "
            "procedure, an outage) until they show in the data; a series' level is its share of the field over "
            "the last year, so a counter that changes fast is followed with a lag.")


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
    # The calendar (holidays, Tết, declared events) is part of the model: a new event or a `holidays` upgrade
    # that moves a holiday retrains it on unchanged data.
    version = version_for(NAME, fp, PARAMS, module=__name__, sql=WEEKLY_SQL + DAILY_SQL,
                          uses=("models.calendar", "pipelines.reference.calendar"), libraries=("holidays",))
    if (done := recorded_run(con, NAME, version, OUTPUT_TABLE)) is not None:
        log.info("inflow_forecast %s already trained on this data: kept", version)
        return done
    weekly = con.execute(query).df()
    if weekly.empty:
        log.warning("no complete week of dossiers for tenant '%s': inflow_forecast not trained", tenant.tenant_id)
        return None
    panel = panel_from_weekly(weekly, last_week)
    daily = con.execute(f"select * from ({DAILY_SQL}) where ngay <= '{last_week}'::date + 6").df()
    result = fit_forecast(panel, PARAMS, daily=daily)
    if result is None:
        log.warning("no series to forecast for tenant '%s': inflow_forecast not trained", tenant.tenant_id)
        return None
    window = training_window(panel.weeks[0], panel.weeks[-1] + 6)
    metrics = {**result.metrics, "n_series": int(len(panel.keys)), "n_weeks": int(panel.weeks.size),
               "last_week": str(panel.weeks[-1]), "training_window": window}
    artefact = save_artefact(result.model, paths.models, version) if result.model is not None else None
    card = _card(version, metrics, int(result.forecast[["co_quan", "linh_vuc"]].drop_duplicates().shape[0]), window)
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
        run = ModelRun(NAME, version, fp, {**PARAMS, "tier": result.tier,
                                           "mape": "weighted: sum |error| / sum actual"},
                       metrics, artefact, card)
        record(con, run, run_id)
    log.info("inflow_forecast %s (%s): wMAPE %s vs seasonal-naive %s (beats_baseline=%s)", version, result.tier,
             _pct(metrics.get("mape_model")), _pct(metrics.get("mape_seasonal_naive")), metrics["beats_baseline"])
    return run
