"""Staffing: how many one-stop-shop officers each agency needs, planned on the dossiers late it saves.

The relation (estimated from the warehouse, never read from the demo generator): each agency's officers take up
dossiers first come, first served, `K` dossiers per officer per working day between them; a dossier arriving when
the dossiers ahead exceed that capacity waits (working days) before its own processing starts, and its processing
days are its wait plus its own work. `K` is the one parameter: fitted on the roster (`staging.can_bo`) and the
dossiers' processing days (`staging.ho_so`) of the 26 weeks before the last quarter, as the value whose simulated
waits best explain the processing days' rise and fall within each agency (profile least squares). With `K`, each
dossier's own work is its recorded processing days minus its simulated wait, and any roster can be replayed:
the same dossiers, the same own work, other waits, so other late dossiers.

Planning (`plan_headcount`, an integer programme, scipy `milp`): for each agency and each possible headcount,
the dossiers expected late per week (`late_curves`: the recent quarter's dossiers replayed with that headcount,
their arrivals scaled to the forecast); choose one headcount per agency for the coming weeks, at most today's
total, minimising late dossiers per week plus a cost per officer moved: a move is made only if it saves at least
`move_saves_per_week` late dossiers per week (one officer moved counts at both ends, so each end costs half).
`what_if` re-plans another total from the published curves in milliseconds (the app's slider).

Evaluation (`evaluate_quarter`, table `marts.can_bo_mo_phong`): the last 13 complete weeks replayed with the
plan the model would have made at their start (curves from the 13 weeks before, the same total headcount) and
with the actual roster, counting the dossiers late under each, per agency and in total.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.registry import ModelRun, data_fingerprint, record, recorded_run, version_for
from pipelines.reference.calendar import WEEKMASK, holiday_days
from pipelines.warehouse import table_exists, transaction

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig
    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.models.staffing")
NAME = "staffing"
# The shared contracts a tenant needs, and the models listed before it whose output it reads
# (checked by validate-config: pipelines/crossrefs.py).
REQUIRES = ("ho_so", "can_bo")
REQUIRES_MODELS = ("inflow_forecast",)
OUTPUT_TABLE = "marts.can_bo_de_xuat"
CAPACITY_TABLE = "marts.can_bo_nang_suat"
CURVES_TABLE = "marts.can_bo_qua_han_du_kien"
SIMULATION_TABLE = "marts.can_bo_mo_phong"
TOTAL_LABEL = "Toàn tỉnh"
PARAMS = {
    "estimation_weeks": 26,         # weeks of settled dossiers K is fitted on (before the evaluated quarter)
    "plan_weeks": 13,               # weeks of recent dossiers replayed to price each headcount
    "evaluation_weeks": 13,         # the quarter replayed with the plan and with the actual roster
    "warmup_weeks": 8,              # queue history simulated before any window (its backlog carries over)
    "min_officers_per_agency": 1,
    "move_saves_per_week": 1.0,     # late dossiers per week a moved officer must save
    "max_fit_sample": 250_000,      # returned dossiers scored when fitting K (waits use every dossier)
    "max_candidates": 40,           # headcounts priced per agency (every value near today's, spaced further out)
    "max_priced": 200_000,          # dossiers scored when pricing headcounts (a uniform sample; waits use all)
}
SCENARIO_WEIGHTS = {"n_du_bao_thap": 0.2, "n_du_bao": 0.6, "n_du_bao_cao": 0.2}
WEEK_DAYS = 5  # a full week's working days: capacity per officer-week = K × 5

DOSSIERS_SQL = """
    select co_quan, ngay_nhan, ngay_hen_tra, ngay_tra
    from staging.ho_so
    where ngay_nhan >= ?::date and ngay_nhan is not null and ngay_hen_tra is not null and co_quan is not null
    order by co_quan, ngay_nhan, ma_ho_so
"""
ROSTER_SQL = "select co_quan, sum(so_can_bo)::integer as so_can_bo from staging.can_bo group by all order by co_quan"
# Summed in a fixed order: a parallel sum of doubles differs in its last bits from run to run, and a re-run on
# the same data must publish the same plan (the crash trials compare every table bit for bit).
FORECAST_SQL = """
    select co_quan, tuan_truoc,
           sum(n_du_bao_thap order by tuan_bat_dau, linh_vuc) as n_du_bao_thap,
           sum(n_du_bao order by tuan_bat_dau, linh_vuc) as n_du_bao,
           sum(n_du_bao_cao order by tuan_bat_dau, linh_vuc) as n_du_bao_cao
    from marts.du_bao_ho_so_tuan
    group by all
    order by co_quan, tuan_truoc
"""


# --- the relation: a first-come-first-served counter per agency ---------------------------------------------------

@dataclass
class Dossiers:
    """Dossiers in first-come-first-served order (agency, arrival, running number), days as working-day indexes.

    agency: index into `agencies`; arrival: working day taken up at the earliest (a weekend arrival counts from
    the next working day); allowed: working days allowed; done: working days taken (−1 while open); elapsed:
    working days from arrival to the data's cut-off (for open ones); recorded_late: returned after the due date,
    or open past it at the cut-off.
    """

    agencies: list[str]
    agency: np.ndarray
    arrival: np.ndarray
    allowed: np.ndarray
    done: np.ndarray
    elapsed: np.ndarray
    recorded_late: np.ndarray
    start: np.datetime64
    n_days: int

    @property
    def is_open(self) -> np.ndarray:
        return self.done < 0


def prepare(frame: pd.DataFrame, agencies: list[str], start: date, as_of: date,
            holidays: np.ndarray | None = None, tail_days: int = 130) -> Dossiers:
    """`frame` (co_quan, ngay_nhan, ngay_hen_tra, ngay_tra; first-come-first-served order within an agency) as
    working-day arrays from `start`. Dossiers of agencies not in `agencies` (no roster) are left out."""
    hol = holiday_days(start.year - 1, as_of.year + 2) if holidays is None else holidays
    index = {name: i for i, name in enumerate(agencies)}
    frame = frame[frame["co_quan"].isin(index)]
    agency = frame["co_quan"].map(index).to_numpy(np.int64)
    received = pd.to_datetime(frame["ngay_nhan"]).to_numpy().astype("datetime64[D]")
    due = pd.to_datetime(frame["ngay_hen_tra"]).to_numpy().astype("datetime64[D]")
    returned = pd.to_datetime(frame["ngay_tra"]).to_numpy().astype("datetime64[D]")
    is_open = np.isnat(returned)
    s, cut = np.datetime64(start, "D"), np.datetime64(as_of, "D")
    rolled = np.busday_offset(received, 0, roll="forward", weekmask=WEEKMASK, holidays=hol)
    arrival = np.busday_count(s, rolled, weekmask=WEEKMASK, holidays=hol)
    allowed = np.busday_count(received, due, weekmask=WEEKMASK, holidays=hol)
    done = np.where(is_open, -1, np.busday_count(received, np.where(is_open, received, returned),
                                                 weekmask=WEEKMASK, holidays=hol))
    elapsed = np.busday_count(received, np.maximum(cut, received), weekmask=WEEKMASK, holidays=hol)
    recorded_late = np.where(is_open, cut > due, returned > due)
    n_days = int(np.busday_count(s, cut, weekmask=WEEKMASK, holidays=hol)) + tail_days
    order = np.lexsort((np.arange(agency.size), agency))  # stable: keeps the frame's order within an agency
    return Dossiers(list(agencies), agency[order], arrival[order], allowed[order], done[order], elapsed[order],
                    recorded_late[order], s, n_days)


def queue_blocks(d: Dossiers, rows_agency: np.ndarray, capacity: np.ndarray, which: np.ndarray,
                 chunk: int = 20_000):
    """Replay agencies under other capacities: yields (rows, cols, waits) blocks, waits[i, j] the working days
    dossier `which[cols[j]]` waits under row `rows[i]`'s capacity (rows × days, dossiers per working day).

    Row r replays agency `rows_agency[r]`: served by day t is S[t] = min(S[t−1] + capacity[r, t], arrived by t)
    (Lindley's recursion for a fluid counter); the agency's p-th dossier (first come, first served) is taken up
    on the first day with S[t] ≥ p, and waits that day minus its arrival day.
    """
    n_agencies, n_days = len(d.agencies), capacity.shape[1]
    counts = np.bincount(d.agency * n_days + np.minimum(d.arrival, n_days - 1), minlength=n_agencies * n_days)
    arrived = np.cumsum(counts.reshape(n_agencies, n_days), axis=1).astype(float)
    served = np.empty((len(rows_agency), n_days))
    level = np.zeros(len(rows_agency))
    for t in range(n_days):
        level = np.minimum(level + capacity[:, t], arrived[rows_agency, t])
        served[:, t] = level
    first = np.r_[0, np.cumsum(np.bincount(d.agency, minlength=n_agencies))[:-1]]
    which_agency = d.agency[which]
    for g in np.unique(rows_agency):
        rows = np.flatnonzero(rows_agency == g)
        span = float(arrived[g, -1]) + 2.0
        shift = np.arange(rows.size) * span
        flat = (served[rows] + shift[:, None]).ravel()
        mine = np.flatnonzero(which_agency == g)
        for lo in range(0, mine.size, chunk):
            cols = mine[lo:lo + chunk]
            idx = which[cols]
            keys = (idx - first[g] + 1).astype(float)[None, :] + shift[:, None] - 1e-6
            taken = np.searchsorted(flat, keys) - (np.arange(rows.size) * n_days)[:, None]
            yield rows, cols, np.maximum(np.minimum(taken, n_days - 1) - d.arrival[idx][None, :], 0)


def agency_waits(d: Dossiers, capacity: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Working days each dossier in `which` waits with one capacity row per agency (agencies × days)."""
    waits = np.zeros(which.size, dtype=np.int64)
    for _, cols, block in queue_blocks(d, np.arange(len(d.agencies)), capacity, which):
        waits[cols] = block[0]
    return waits


def constant_capacity(d: Dossiers, officers: np.ndarray, per_officer_day: float) -> np.ndarray:
    """One row per agency: `per_officer_day × officers` every working day."""
    return np.repeat((per_officer_day * officers.astype(float))[:, None], d.n_days, axis=1)


def estimate_officer_capacity(d: Dossiers, officers: np.ndarray, window: tuple[int, int],
                              max_sample: int = 250_000, seed: int = 0) -> tuple[float, bool]:
    """K (dossiers per officer per working day) whose simulated waits best explain the processing days.

    Fitted on the dossiers returned that arrived in `window` (working-day indexes [from, to)): their processing
    days minus the simulated wait should not depend on the load, so K minimises the squared deviation of
    (processing days − wait) from its mean per agency × allowed days (profile least squares over a log grid,
    refined by golden section). Returns (K, identified): not identified when no grid value makes anyone wait
    differently from the largest (counters never fall behind): K is then only a lower bound.
    """
    fit = np.flatnonzero((d.arrival >= window[0]) & (d.arrival < window[1]) & ~d.is_open
                         & (officers[d.agency] > 0))
    if fit.size > max_sample:
        fit = np.sort(np.random.default_rng(seed).choice(fit, max_sample, replace=False))
    if fit.size < 50:
        raise ValueError(f"only {fit.size} returned dossiers in the capacity window: too few to fit how many "
                         "dossiers an officer takes up a day (the staffing model needs ~26 weeks of history)")
    days = max(window[1] - window[0], 1)
    in_window = (d.arrival >= window[0]) & (d.arrival < window[1])
    base = in_window.sum() / days / max(officers[officers > 0].sum(), 1)
    group = d.agency[fit] * 1000 + np.minimum(d.allowed[fit], 999)
    _, group = np.unique(group, return_inverse=True)
    size = np.bincount(group)

    def sse(k: float) -> float:
        r = d.done[fit] - agency_waits(d, constant_capacity(d, officers, k), fit)
        return float(np.sum((r - (np.bincount(group, weights=r) / size)[group]) ** 2))

    grid = base * np.geomspace(0.5, 50.0, 16)
    values = np.array([sse(k) for k in grid])
    best = int(np.argmin(values))
    identified = best < len(grid) - 1 and values[best] < values[-1] - 1e-9
    if not identified:
        return float(grid[-1]), False
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = sse(a), sse(b)
    for _ in range(12):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = sse(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = sse(b)
    candidates = [(values[best], grid[best]), (fa, a), (fb, b)]
    return float(min(candidates)[1]), True


def own_work(d: Dossiers, actual_waits: np.ndarray) -> np.ndarray:
    """Each dossier's own processing days: recorded days minus its simulated wait (at least 0); for an open
    dossier, the days it has had so far minus its wait (a lower bound)."""
    taken = np.where(d.is_open, d.elapsed, d.done)
    return np.maximum(taken - actual_waits, 0)


def late_under(d: Dossiers, idx: np.ndarray, work: np.ndarray, actual_waits: np.ndarray,
               waits: np.ndarray) -> np.ndarray:
    """Late (bool, broadcast over rows of `waits`) for dossiers `idx` replayed with other waits.

    Returned: own work + the new wait beyond the allowed working days. Open at the cut-off (outcome unknown):
    late if it already was (open past due) or if the longer wait alone would have kept it open past its due date;
    a shorter wait earns it nothing (conservative: the plan gets no credit for dossiers not yet settled).
    """
    allowed, is_open = d.allowed[idx], d.is_open[idx]
    settled = work[idx] + waits > allowed
    unsettled = d.elapsed[idx] + np.maximum(waits - actual_waits[idx], 0) > allowed
    return np.where(is_open, unsettled, settled)


# --- planning --------------------------------------------------------------------------------------------------

def candidates(current: int, min_each: int, limit: int) -> np.ndarray:
    """Headcounts priced for an agency with `current` officers: every value within ±5 of today's, then spaced
    out to twice today's + 3, always including `min_each` (so any total the slider asks for stays feasible)."""
    top = max(2 * current + 3, min_each + 1)
    near = np.arange(max(min_each, current - 5), min(current + 5, top) + 1)
    far = np.unique(np.round(np.geomspace(min_each, top, max(limit - near.size, 2))).astype(int))
    return np.unique(np.concatenate([[min_each], near, far, [current]]))


def late_curves(d: Dossiers, officers: np.ndarray, per_officer_day: float, window: tuple[int, int],
                min_each: int, demand_ratio: dict[str, np.ndarray] | None = None,
                max_candidates: int = 40, max_priced: int = 200_000) -> pd.DataFrame:
    """Dossiers expected late per week for every agency and candidate headcount (co_quan, so_can_bo,
    n_qua_han_du_kien), replaying the dossiers that arrived in `window` with that headcount from the window's
    first day (the actual roster before it, so today's backlog carries over).

    `demand_ratio`: per scenario, each agency's expected arrivals over the replayed ones (forecast ÷ recent):
    serving f times the dossiers with K per officer is taken as serving them with K / f; scenarios are averaged
    with SCENARIO_WEIGHTS (a single ratio of 1 when None). Above `max_priced` dossiers in the window, a uniform
    sample of them is scored (every dossier still queues) and the counts scaled back up.
    """
    ratios = demand_ratio or {"n_du_bao": np.ones(len(d.agencies))}
    weights = SCENARIO_WEIGHTS if len(ratios) == 3 else dict.fromkeys(ratios, 1.0 / len(ratios))
    which = np.flatnonzero((d.arrival >= window[0]) & (d.arrival < window[1]))
    weeks = (window[1] - window[0]) / WEEK_DAYS
    sampled = 1.0
    if which.size > max_priced:
        sampled = which.size / max_priced
        which = np.sort(np.random.default_rng(0).choice(which, max_priced, replace=False))
    rows_agency, rows_n, rows_s = [], [], []
    for g in range(len(d.agencies)):
        for n in candidates(int(officers[g]), min_each, max_candidates):
            for s in ratios:
                rows_agency.append(g)
                rows_n.append(int(n))
                rows_s.append(s)
    rows_agency = np.array(rows_agency)
    rows_n = np.array(rows_n)
    scale = np.array([ratios[s][g] for s, g in zip(rows_s, rows_agency, strict=True)])
    capacity = np.repeat((per_officer_day * officers[rows_agency].astype(float))[:, None], d.n_days, axis=1)
    capacity[:, window[0]:] = (per_officer_day * rows_n / np.maximum(scale, 1e-9))[:, None]
    full_actual = np.zeros(d.agency.size, dtype=np.int64)
    full_actual[which] = agency_waits(d, constant_capacity(d, officers, per_officer_day), which)
    work = own_work(d, full_actual)
    n_late = np.zeros(len(rows_agency))
    for rows, cols, waits in queue_blocks(d, rows_agency, capacity, which):
        n_late[rows] += late_under(d, which[cols], work, full_actual, waits).sum(axis=1)
    # A scenario's dossiers are f times the replayed ones: its late count scales with them.
    n_late = n_late * scale * sampled / weeks
    frame = pd.DataFrame({"g": rows_agency, "so_can_bo": rows_n, "s": rows_s, "late": n_late})
    frame["late"] *= frame["s"].map(weights)
    curves = frame.groupby(["g", "so_can_bo"], as_index=False)["late"].sum()
    curves.insert(0, "co_quan", [d.agencies[g] for g in curves["g"]])
    return curves.drop(columns="g").rename(columns={"late": "n_qua_han_du_kien"})


def plan_headcount(curves: pd.DataFrame, current: pd.Series, total_headcount: int, min_per_agency: int = 1,
                   move_saves_per_week: float = 1.0) -> pd.DataFrame:
    """Officers per agency minimising late dossiers per week + the cost of moves (integer programme).

    Args:
        curves: co_quan, so_can_bo, n_qua_han_du_kien (late per week with that many officers), per agency.
        current: today's officers, indexed by co_quan.
        total_headcount: officers available across all agencies (the plan places at most this many).
        min_per_agency: every counter keeps at least this many officers.
        move_saves_per_week: late dossiers per week one officer moved must save (each of a move's two ends costs
            half of it; an officer added from a spare headcount costs half).

    One binary per agency × candidate: each agency takes exactly one headcount, their sum ≤ total. Returns per
    agency: co_quan, so_can_bo_hien_tai, so_can_bo_de_xuat, thay_doi, n_qua_han_du_kien_hien_tai,
    n_qua_han_du_kien_de_xuat (late per week).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix

    at_now = curves.merge(current.rename("now"), left_on="co_quan", right_index=True)
    at_now = at_now[at_now["so_can_bo"] == at_now["now"]].set_index("co_quan")["n_qua_han_du_kien"]
    options = curves[curves["so_can_bo"] >= min_per_agency].sort_values(["co_quan", "so_can_bo"])
    options = options.reset_index(drop=True)
    agencies = sorted(options["co_quan"].unique())
    if total_headcount < len(agencies) * min_per_agency:
        raise ValueError(f"total_headcount={total_headcount} cannot give each of the {len(agencies)} agencies its "
                         f"minimum of {min_per_agency} officer(s): raise the headcount to at least "
                         f"{len(agencies) * min_per_agency}")
    now = current.reindex(agencies).fillna(0).astype(int)
    g = options["co_quan"].map({a: i for i, a in enumerate(agencies)}).to_numpy()
    n = options["so_can_bo"].to_numpy(float)
    moved = np.abs(n - now.to_numpy()[g])
    cost = options["n_qua_han_du_kien"].to_numpy(float) + 0.5 * move_saves_per_week * moved
    k = len(options)
    one_each = csr_matrix((np.ones(k), (g, np.arange(k))), shape=(len(agencies), k))
    constraints = [LinearConstraint(one_each, lb=1, ub=1), LinearConstraint(n[None, :], ub=total_headcount)]
    result = milp(cost, constraints=constraints, integrality=np.ones(k), bounds=Bounds(0, 1))
    if not result.success:
        raise RuntimeError(f"the staffing programme found no plan: {result.message}")
    chosen = options[np.round(result.x) == 1].set_index("co_quan")
    plan = pd.DataFrame({"co_quan": agencies, "so_can_bo_hien_tai": now.to_numpy(),
                         "so_can_bo_de_xuat": chosen["so_can_bo"].reindex(agencies).to_numpy().astype(int)})
    plan["thay_doi"] = plan["so_can_bo_de_xuat"] - plan["so_can_bo_hien_tai"]
    plan["n_qua_han_du_kien_hien_tai"] = at_now.reindex(agencies).to_numpy(float)
    plan["n_qua_han_du_kien_de_xuat"] = chosen["n_qua_han_du_kien"].reindex(agencies).to_numpy(float)
    return plan


# --- evaluation: the last quarter replayed ---------------------------------------------------------------------

@dataclass
class Evaluation:
    per_officer_day: float
    identified: bool
    table: pd.DataFrame        # per agency + total: the quarter replayed
    dossiers: Dossiers
    recent_window: tuple[int, int]  # the last plan_weeks weeks: what the coming weeks' plan replays


def quarter_bounds(as_of: date, weeks: int = 13) -> tuple[date, date]:
    """The last `weeks` complete Monday-to-Sunday weeks before `as_of` (the cut-off day is not complete)."""
    end = as_of - timedelta(days=as_of.weekday())  # Monday of the cut-off's week: weeks before it are complete
    if as_of.weekday() == 6:
        end = as_of + timedelta(days=1)
    return end - timedelta(weeks=weeks), end


def evaluate_quarter(frame: pd.DataFrame, roster: pd.DataFrame, as_of: date, params: dict | None = None,
                     holidays: np.ndarray | None = None) -> Evaluation:
    """Fit K, plan the last quarter as the model would have at its start, and replay it with plan and roster.

    `frame`: dossiers (co_quan, ngay_nhan, ngay_hen_tra, ngay_tra) from at least the estimation window's start
    (see `history_start`), in first-come-first-served order within an agency; `roster`: co_quan, so_can_bo.
    """
    p = {**PARAMS, **(params or {})}
    q_start, q_end = quarter_bounds(as_of, p["evaluation_weeks"])
    start = q_start - timedelta(weeks=p["estimation_weeks"] + p["warmup_weeks"])
    hol = holiday_days(start.year - 1, as_of.year + 2) if holidays is None else holidays
    roster = roster[roster["so_can_bo"].notna()]
    agencies = sorted(roster["co_quan"].unique())
    d = prepare(frame, agencies, start, as_of, hol)
    if (unrostered := int((~frame["co_quan"].isin(agencies)).sum())):
        log.warning("%d dossier(s) of agencies missing from the roster (staging.can_bo) are left out of the "
                    "staffing replay: add those agencies to the roster source", unrostered)
    officers = roster.groupby("co_quan")["so_can_bo"].sum().reindex(agencies).to_numpy(np.int64)

    def day(x: date) -> int:
        return int(np.busday_count(d.start, np.datetime64(x, "D"), weekmask=WEEKMASK, holidays=hol))

    quarter = (day(q_start), day(q_end))
    before = (day(q_start - timedelta(weeks=p["plan_weeks"])), quarter[0])
    estimation = (day(q_start - timedelta(weeks=p["estimation_weeks"])), quarter[0])
    k, identified = estimate_officer_capacity(d, officers, estimation, p["max_fit_sample"])
    min_each = p["min_officers_per_agency"]
    total = int(officers.sum())
    current = pd.Series(officers, index=agencies)
    # The plan made at the quarter's start: the 13 weeks before it priced per headcount (a naive forecast: the
    # next quarter like the last one), at most the roster's total.
    before_curves = late_curves(d, officers, k, before, min_each, None, p["max_candidates"], p["max_priced"])
    plan = plan_headcount(before_curves, current, total, min_each, p["move_saves_per_week"])
    planned = plan.set_index("co_quan")["so_can_bo_de_xuat"].reindex(agencies).to_numpy(np.int64)
    which = np.flatnonzero((d.arrival >= quarter[0]) & (d.arrival < quarter[1]))
    actual_all = np.zeros(d.agency.size, dtype=np.int64)  # only the quarter's dossiers are scored
    actual_all[which] = agency_waits(d, constant_capacity(d, officers, k), which)
    capacity = constant_capacity(d, officers, k)
    capacity[:, quarter[0]:] = (k * planned.astype(float))[:, None]
    plan_waits = agency_waits(d, capacity, which)
    work = own_work(d, actual_all)
    late_actual = late_under(d, which, work, actual_all, actual_all[which])
    late_plan = late_under(d, which, work, actual_all, plan_waits)
    g = d.agency[which]
    n = len(agencies)
    table = pd.DataFrame({
        "co_quan": agencies,
        "n_ho_so": np.bincount(g, minlength=n),
        "so_can_bo_thuc_te": officers,
        "so_can_bo_ke_hoach": planned,
        "n_qua_han_ghi_nhan": np.bincount(g, weights=d.recorded_late[which], minlength=n).astype(int),
        "n_qua_han_thuc_te": np.bincount(g, weights=late_actual, minlength=n).astype(int),
        "n_qua_han_ke_hoach": np.bincount(g, weights=late_plan, minlength=n).astype(int),
    })
    table["la_tong"] = False
    total_row = table.drop(columns=["co_quan", "la_tong"]).sum().to_frame().T.astype(int)
    total_row.insert(0, "co_quan", TOTAL_LABEL)
    total_row["la_tong"] = True
    table = pd.concat([table, total_row], ignore_index=True)
    table.insert(0, "tu_ngay", q_start)
    table.insert(1, "den_ngay", q_end - timedelta(days=1))
    recent = (day(q_end - timedelta(weeks=p["plan_weeks"])), day(q_end))
    return Evaluation(k, identified, table, d, recent)


def history_start(as_of: date, params: dict | None = None) -> date:
    """The first arrival day `evaluate_quarter` reads."""
    p = {**PARAMS, **(params or {})}
    q_start, _ = quarter_bounds(as_of, p["evaluation_weeks"])
    return q_start - timedelta(weeks=p["estimation_weeks"] + p["warmup_weeks"])


# --- the published plan and the app's what-if -------------------------------------------------------------------

def forecast_ratios(d: Dossiers, window: tuple[int, int], forecast: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per scenario, each agency's forecast dossiers per week (mean over the forecast's weeks) ÷ its dossiers per
    week in the replayed window (1 where either is missing)."""
    weeks = (window[1] - window[0]) / WEEK_DAYS
    recent = np.bincount(d.agency[(d.arrival >= window[0]) & (d.arrival < window[1])],
                         minlength=len(d.agencies)) / weeks
    horizon = max(int(forecast["tuan_truoc"].nunique()), 1) if len(forecast) else 1
    ratios = {}
    for col in SCENARIO_WEIGHTS:
        per_week = (forecast.groupby("co_quan")[col].sum() / horizon).reindex(d.agencies).to_numpy(float)
        ratios[col] = np.where((recent > 0) & np.isfinite(per_week) & (per_week > 0), per_week / np.maximum(recent, 1e-9),
                               1.0)
    return ratios


def what_if(snapshot: duckdb.DuckDBPyConnection, total_headcount: int, min_per_agency: int | None = None
            ) -> pd.DataFrame:
    """Re-plan the coming weeks for another headcount, from what the serving snapshot holds (for the apps).

    Reads the published per-headcount late curves (`marts.can_bo_qua_han_du_kien`) and today's plan
    (`marts.can_bo_de_xuat`) through the caller's read-only connection and calls `plan_headcount`; nothing is
    written. Raises ValueError with a sentence when the snapshot has no staffing data or the headcount cannot
    give every agency its minimum.
    """
    for table in (CURVES_TABLE, OUTPUT_TABLE):
        if not table_exists(snapshot, *table.split(".")):
            raise ValueError(f"the snapshot has no {table}: list inflow_forecast and staffing in the tenant's "
                             "models and run the pipeline")
    curves = snapshot.execute(f"select co_quan, so_can_bo, n_qua_han_du_kien from {CURVES_TABLE}").df()
    published = snapshot.execute(f"select co_quan, so_can_bo_hien_tai, n_du_bao, nang_suat_tuan from {OUTPUT_TABLE}"
                                 ).df().set_index("co_quan")
    minimum = PARAMS["min_officers_per_agency"] if min_per_agency is None else min_per_agency
    plan = plan_headcount(curves, published["so_can_bo_hien_tai"], int(total_headcount), minimum,
                          PARAMS["move_saves_per_week"])
    return _with_context(plan, published)


def _with_context(plan: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    plan = plan.copy()
    plan.insert(4, "n_du_bao", context["n_du_bao"].reindex(plan["co_quan"]).fillna(0.0).to_numpy(float))
    plan.insert(5, "nang_suat_tuan", context["nang_suat_tuan"].reindex(plan["co_quan"]).to_numpy(float))
    return plan


def train(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths, run_id: str) -> ModelRun | None:
    missing = [t for t in ("staging.ho_so", "staging.can_bo", "marts.du_bao_ho_so_tuan")
               if not table_exists(con, *t.split("."))]
    if missing:
        log.warning("tenant '%s' has no %s: staffing not computed (it needs the officer roster and the "
                    "inflow_forecast model listed before it)", tenant.tenant_id, ", ".join(missing))
        return None
    as_of = con.execute("select max(data_as_of) from staging.ho_so").fetchone()[0]
    if as_of is None:
        log.warning("staffing for '%s' skipped: staging.ho_so has no dossiers", tenant.tenant_id)
        return None
    as_of = as_of if isinstance(as_of, date) else pd.Timestamp(as_of).date()
    first = history_start(as_of)
    dossiers_sql = DOSSIERS_SQL.replace("?::date", f"'{first.isoformat()}'::date")
    fp = data_fingerprint(con, f"select 'h' as k, hash(h) as h from ({dossiers_sql}) h union all "
                               f"select 'c', hash(c) from ({ROSTER_SQL}) c union all "
                               f"select 'f', hash(f) from ({FORECAST_SQL}) f")
    version = version_for(NAME, fp, PARAMS, module=__name__, sql=DOSSIERS_SQL + ROSTER_SQL + FORECAST_SQL)
    if (done := recorded_run(con, NAME, version, OUTPUT_TABLE)) is not None:
        log.info("staffing %s already computed on this data: kept", version)
        return done
    roster = con.execute(ROSTER_SQL).df()
    forecast = con.execute(FORECAST_SQL).df()
    min_each = PARAMS["min_officers_per_agency"]
    headcount = int(roster["so_can_bo"].sum())
    if headcount < len(roster) * min_each or forecast.empty or roster.empty:
        log.warning("staffing for '%s' skipped: %d officers for %d agencies, %d forecast rows",
                    tenant.tenant_id, headcount, len(roster), len(forecast))
        return None
    frame = con.execute(DOSSIERS_SQL, [first]).df()
    try:
        ev = evaluate_quarter(frame, roster, as_of)
    except ValueError as exc:
        log.warning("staffing for '%s' skipped: %s", tenant.tenant_id, exc)
        return None
    d, k = ev.dossiers, ev.per_officer_day
    officers = roster.set_index("co_quan")["so_can_bo"].reindex(d.agencies).to_numpy(np.int64)
    ratios = forecast_ratios(d, ev.recent_window, forecast)
    curves = late_curves(d, officers, k, ev.recent_window, min_each, ratios, PARAMS["max_candidates"],
                         PARAMS["max_priced"])
    plan = plan_headcount(curves, pd.Series(officers, index=d.agencies), headcount, min_each,
                          PARAMS["move_saves_per_week"])
    next_week = forecast[forecast["tuan_truoc"] == 1].groupby("co_quan")["n_du_bao"].sum()
    capacity = pd.DataFrame({"co_quan": d.agencies, "so_can_bo": officers, "nang_suat_tuan": k * WEEK_DAYS})
    plan = _with_context(plan, pd.DataFrame({"n_du_bao": next_week.reindex(d.agencies).fillna(0.0).to_numpy(),
                                             "nang_suat_tuan": k * WEEK_DAYS}, index=d.agencies))
    week = con.execute("select min(tuan_bat_dau) from marts.du_bao_ho_so_tuan where tuan_truoc = 1").fetchone()[0]
    total = ev.table[ev.table["la_tong"]].iloc[0]
    metrics = {
        "total_headcount": headcount, "n_agencies": int(len(plan)),
        "officer_capacity_per_day": round(k, 4), "capacity_identified": bool(ev.identified),
        "n_officers_moved": int(plan["thay_doi"].clip(lower=0).sum()),
        "expected_late_per_week_current": float(plan["n_qua_han_du_kien_hien_tai"].sum()),
        "expected_late_per_week_recommended": float(plan["n_qua_han_du_kien_de_xuat"].sum()),
        "forecast_week": str(week),
        "quarter": f"{total['tu_ngay']} – {total['den_ngay']}",
        "quarter_dossiers": int(total["n_ho_so"]), "quarter_late_recorded": int(total["n_qua_han_ghi_nhan"]),
        "quarter_late_actual_roster": int(total["n_qua_han_thuc_te"]),
        "quarter_late_plan": int(total["n_qua_han_ke_hoach"]),
        "quarter_officers_actual": int(total["so_can_bo_thuc_te"]),
        "quarter_officers_plan": int(total["so_can_bo_ke_hoach"]),
    }
    card = (f"Staffing ({version}) for the weeks from {week}: {headcount} officers over {len(plan)} agencies. An "
            f"officer takes up about {k:.1f} dossiers a working day (fitted on the last 26 settled weeks"
            f"{'' if ev.identified else ': NOT IDENTIFIED, no counter ever fell behind — a lower bound'}). Moving "
            f"{metrics['n_officers_moved']} officers cuts the dossiers expected late per week from "
            f"{metrics['expected_late_per_week_current']:.1f} to {metrics['expected_late_per_week_recommended']:.1f}."
            f" Last quarter ({metrics['quarter']}) replayed: {metrics['quarter_late_actual_roster']} of "
            f"{metrics['quarter_dossiers']} dossiers late with the actual roster, {metrics['quarter_late_plan']} "
            f"with the plan made at its start ({metrics['quarter_officers_plan']} officers vs "
            f"{metrics['quarter_officers_actual']}). Limitations: one capacity for every officer and agency; the "
            "roster is taken as the same every week (the source holds no history); dossiers still open are credited "
            "nothing; check leave, skills and travel before moving anyone.")
    with transaction(con):
        for table, frame_, extra in ((OUTPUT_TABLE, plan, f", '{week}'::date as tuan_bat_dau"),
                                     (CAPACITY_TABLE, capacity, ""), (CURVES_TABLE, curves, ""),
                                     (SIMULATION_TABLE, ev.table, "")):
            order = "la_tong, co_quan" if table == SIMULATION_TABLE else "co_quan"
            con.register("frame_df", frame_)
            con.execute(f"create or replace table {table} as select *{extra}, '{version}' as model_version "
                        f"from frame_df order by {order}")
            con.unregister("frame_df")
        run = ModelRun(NAME, version, fp, PARAMS, metrics, None, card)
        record(con, run, run_id)
    log.info("staffing %s: %d officers moved; last quarter late %d (roster) vs %d (plan)", version,
             metrics["n_officers_moved"], metrics["quarter_late_actual_roster"], metrics["quarter_late_plan"])
    return run
