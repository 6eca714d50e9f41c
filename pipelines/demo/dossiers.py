"""One-stop-shop dossiers (hồ sơ một cửa): arrivals, due dates, processing and returns, all vectorised."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from pipelines.demo.catalogue import (
    DEPARTMENTS,
    FIELD_SEASON,
    FIELDS,
    PROCEDURES,
    XA,
    commune_agency_code,
    commune_agency_name,
    department_code,
)
from pipelines.demo.people import applicants
from pipelines.demo.places import communes
from pipelines.demo.workdays import TREND_PER_YEAR as ARRIVAL_TREND
from pipelines.demo.workdays import add_working_days, arrival_weights
from pipelines.reference.calendar import WEEKMASK, holiday_days

FIRST_DAY = date(2024, 1, 1)
OVERDUE_TARGET = 0.115  # mean probability of returning late by the dossier's own work (waiting adds to it)
WARD_SIZE = 3.0  # an urban ward (phường) files about three times a rural commune's dossiers
OTHER_COMMUNE_SHARE = 0.04  # commune procedures filed away from home ("không phụ thuộc địa giới hành chính")
LOAD_EFFECT = 1.2  # log-odds per unit of log relative weekly load at the agency (a rushed week, more errors)
TREND_PER_YEAR = -0.3  # agencies get a little faster each year (log-odds)
# Officers and waiting (the staffing link): each agency's officers on duty (its roster, pipelines/demo/staffing.py)
# take up the dossiers first come, first served, OFFICER_CAPACITY dossiers per officer per working day between
# them; a dossier arriving when the dossiers ahead exceed that capacity waits (working days) before its own
# processing starts. The capacity is set so that the province's officers run at UTILISATION on an average day
# (it grows with the arrivals' trend: more online filing, faster tools), never below MIN_OFFICER_CAPACITY (a small
# demo's counters are simply idle). Waiting days add to the processing days, so an agency with more load per
# officer in a week returns later. The own work (late or on time, its days) is drawn exactly as without the link;
# the wait is added on top (at the demo's default UTILISATION it makes ~1-3 % more dossiers late).
UTILISATION = 0.3
MIN_OFFICER_CAPACITY = 1.0
OFFICE_OPEN_S = 7 * 3600 + 1800  # 07:30
OFFICE_DAY_S = 9 * 3600 + 1800  # until 17:00
COLUMNS = ("ma_ho_so", "ma_thu_tuc", "linh_vuc", "co_quan", "ma_xa", "ngay_nhan", "ngay_hen_tra", "ngay_tra",
           "trang_thai", "so_cccd", "so_dien_thoai", "ho_ten", "ngay_cap_nhat")


def _stream(seed: int, part: int) -> np.random.Generator:
    """An independent random stream per concern, so changing one part leaves the others' draws alone."""
    return np.random.default_rng([seed, part])


def dossiers(rows: int, seed: int, as_of: date) -> pl.DataFrame:
    """`rows` distinct dossiers received from 2024-01-01 to the day before `as_of`, sorted by arrival."""
    if rows < 1:
        raise ValueError(f"the demo needs at least 1 dossier row, got rows={rows}")
    last_day = as_of - timedelta(days=1)
    if last_day < FIRST_DAY:
        raise ValueError(f"as_of={as_of} must be after {FIRST_DAY}: dossiers are received from that day on")
    holidays = holiday_days(FIRST_DAY.year, as_of.year + 2)  # due/return dates run past as_of
    units = communes()
    n_dept = len(DEPARTMENTS)

    rng = _stream(seed, 1)
    commune_w = np.where([c.is_ward for c in units], WARD_SIZE, 1.0) * rng.lognormal(0.0, 0.6, len(units))
    commune_p = commune_w / commune_w.sum()
    agency_effect = np.concatenate([list(DEPARTMENTS.values()), rng.normal(0.0, 0.6, len(units))])

    rng = _stream(seed, 2)
    volume = np.array([p.volume for p in PROCEDURES])
    proc = rng.choice(len(PROCEDURES), rows, p=volume / volume.sum())
    commune = rng.choice(len(units), rows, p=commune_p)
    elsewhere = np.where(rng.random(rows) < OTHER_COMMUNE_SHARE, rng.choice(len(units), rows, p=commune_p), commune)
    dept_of_proc = np.array([-1 if p.agency == XA else list(DEPARTMENTS).index(p.agency) for p in PROCEDURES])
    agency = np.where(dept_of_proc[proc] < 0, n_dept + elsewhere, dept_of_proc[proc])

    received = _arrivals(proc, as_of, holidays, _stream(seed, 3))
    legal = np.array([p.legal_days for p in PROCEDURES])[proc]
    due = add_working_days(received, legal, holidays)

    seq = _sequence_in_day(agency, received, _stream(seed, 5))
    officers = officers_on_duty(seed)
    capacity = officer_capacity(rows, as_of, holidays)
    wait = queue_wait(agency, received, seq, officers, capacity, holidays)

    rng = _stream(seed, 4)
    field_names = list(FIELDS)
    field = np.array([field_names.index(p.field) for p in PROCEDURES])[proc]
    years = (received - np.datetime64(FIRST_DAY, "D")).astype(float) / 365.25
    logit = (np.array(list(FIELDS.values()))[field] + agency_effect[agency]
             + LOAD_EFFECT * _weekly_load(agency, received, n_dept + len(units)) + TREND_PER_YEAR * years)
    # The dossier's own work (unchanged by the officers link): late by it with probability ~OVERDUE_TARGET.
    late = rng.random(rows) < _sigmoid(logit + _intercept(logit, OVERDUE_TARGET))
    on_time_days = np.minimum(np.floor(rng.beta(2.0, 2.2, rows) * (legal + 1)), legal)
    late_days = legal + rng.geometric(1.0 / np.maximum(1.0, 0.4 * legal))
    own_days = np.where(late, late_days, on_time_days).astype(np.int64)
    returned_on = add_working_days(received, own_days + wait, holidays)
    is_returned = returned_on < np.datetime64(as_of, "D")

    # Last update: the return itself, or some working moment between arrival and the export for pending ones.
    pending_day = received + np.floor(rng.random(rows) * (np.datetime64(as_of, "D") - received).astype(float)
                                      ).astype("timedelta64[D]")
    update_day = np.where(is_returned, returned_on, pending_day)
    update_s = update_day.astype("datetime64[s]") + (OFFICE_OPEN_S + rng.integers(0, OFFICE_DAY_S, rows)
                                                      ).astype("timedelta64[s]")

    dept_names = list(DEPARTMENTS)
    agency_names = pl.Series([*dept_names, *(commune_agency_name(c.name) for c in units)], dtype=pl.String)
    agency_codes = pl.Series([*(department_code(i) for i in range(n_dept)),
                              *(commune_agency_code(c.code) for c in units)], dtype=pl.String)
    frame = pl.DataFrame({
        "agency_code": agency_codes.gather(agency),
        "seq": seq,
        "ma_thu_tuc": pl.Series([p.code for p in PROCEDURES]).gather(proc),
        "linh_vuc": pl.Series([p.field for p in PROCEDURES]).gather(proc),
        "co_quan": agency_names.gather(agency),
        "ma_xa": pl.Series([c.code for c in units]).gather(commune),
        "ngay_nhan": pl.Series(received, dtype=pl.Date),
        "ngay_hen_tra": pl.Series(due, dtype=pl.Date),
        "ngay_tra": pl.Series(returned_on, dtype=pl.Date),
        "is_returned": is_returned,
        "ngay_cap_nhat": pl.Series(update_s.astype("datetime64[ms]")).cast(pl.Datetime("us")),
    })
    people = applicants(rows, as_of, _stream(seed, 6))
    return (
        pl.concat([frame, people], how="horizontal")
        .with_columns(
            pl.concat_str(pl.col("agency_code"), pl.lit("-"), pl.col("ngay_nhan").dt.strftime("%y%m%d"),
                          pl.lit("-"), pl.col("seq").cast(pl.String).str.zfill(4)).alias("ma_ho_so"),
            pl.when("is_returned").then(pl.col("ngay_tra")).alias("ngay_tra"),
            pl.when("is_returned").then(pl.lit("da_tra")).otherwise(pl.lit("dang_xu_ly")).alias("trang_thai"),
        )
        .select(COLUMNS)
        .sort("ngay_nhan", "ma_ho_so")
    )


def _arrivals(proc: np.ndarray, as_of: date, holidays: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Arrival day of each dossier: the daily profile times its field's month seasonality."""
    days, base = arrival_weights(FIRST_DAY, as_of - timedelta(days=1), holidays, rng)
    if not base.any():
        raise ValueError(f"no office day between {FIRST_DAY} and as_of={as_of} to receive dossiers on: "
                         "choose a later as_of")
    month = days.astype("datetime64[M]").astype(int) % 12 + 1
    proc_field = np.array([p.field for p in PROCEDURES])[proc]
    received = np.empty(proc.size, dtype="datetime64[D]")
    for name in FIELDS:  # one draw per field (a dozen), never per row
        rows = np.flatnonzero(proc_field == name)
        if rows.size:
            season = FIELD_SEASON.get(name, {})
            weights = base * np.array([season.get(m, 1.0) for m in range(1, 13)])[month - 1]
            received[rows] = days[rng.choice(days.size, rows.size, p=weights / weights.sum())]
    return received


def _weekly_load(agency: np.ndarray, received: np.ndarray, n_agencies: int) -> np.ndarray:
    """log of (dossiers the agency received that week) / (its average week), smoothed by 2 dossiers."""
    week = (received.astype("int64") + 3) // 7  # Monday-based week number
    week -= week.min()
    n_weeks = int(week.max()) + 1
    counts = np.bincount(agency * n_weeks + week, minlength=n_agencies * n_weeks)
    mean = np.bincount(agency, minlength=n_agencies) / n_weeks
    return np.log((counts[agency * n_weeks + week] + 2.0) / (mean[agency] + 2.0))


def agency_shares(seed: int) -> np.ndarray:
    """Each receiving agency's expected share of the dossiers (departments, then communes, as in `dossiers`)."""
    units = communes()
    rng = _stream(seed, 1)
    commune_w = np.where([c.is_ward for c in units], WARD_SIZE, 1.0) * rng.lognormal(0.0, 0.6, len(units))
    volume = np.array([p.volume for p in PROCEDURES], dtype=float)
    proc_p = volume / volume.sum()
    dept = [sum(proc_p[i] for i, p in enumerate(PROCEDURES) if p.agency == name) for name in DEPARTMENTS]
    at_commune = sum(proc_p[i] for i, p in enumerate(PROCEDURES) if p.agency == XA)
    return np.concatenate([dept, at_commune * commune_w / commune_w.sum()])


def officers_on_duty(seed: int) -> np.ndarray:
    """Officers on duty per agency (the order of `agency_shares`), every week: the demo's roster file's values."""
    from pipelines.demo.staffing import roster

    return roster(seed)["so_can_bo"].to_numpy()


def officer_capacity(rows: int, as_of: date, holidays: np.ndarray) -> float:
    """Dossiers one officer takes up per working day at the start of the history: a balanced roster
    (`OFFICER_UNITS` officers, each agency after its share) would run at UTILISATION on an average day."""
    from pipelines.demo.staffing import OFFICER_UNITS

    days = np.busday_count(np.datetime64(FIRST_DAY, "D"), np.datetime64(as_of, "D"), weekmask=WEEKMASK,
                           holidays=holidays)
    trend_mean = 1 + ARRIVAL_TREND * (as_of - FIRST_DAY).days / 365.25 / 2
    return max(MIN_OFFICER_CAPACITY, rows / max(int(days), 1) / trend_mean / (OFFICER_UNITS * UTILISATION))


def queue_wait(agency: np.ndarray, received: np.ndarray, seq: np.ndarray, officers: np.ndarray,
               capacity: float, holidays: np.ndarray) -> np.ndarray:
    """Working days each dossier waits before an officer takes it up (first come, first served per agency).

    Agency g's officers take up `capacity × officers[g]` dossiers a working day (× the arrivals' trend); what
    they cannot take up waits for the next working day. Served by day t: S[t] = min(S[t−1] + c[t], arrived by t)
    (Lindley's recursion for a fluid counter); the p-th dossier of an agency (in arrival order, then running
    number) is taken up on the first day with S[t] ≥ p.
    """
    start = np.datetime64(FIRST_DAY, "D")
    day = np.busday_count(start, np.busday_offset(received, 0, roll="forward", weekmask=WEEKMASK,
                                                  holidays=holidays), weekmask=WEEKMASK, holidays=holidays)
    # The counters work on after the last arrival (up to a year) so every waiting dossier is taken up.
    n_days, n_agencies = int(day.max()) + 1 + 260, officers.size
    calendar = np.busday_offset(start, np.arange(n_days), roll="forward", weekmask=WEEKMASK, holidays=holidays)
    trend = 1 + ARRIVAL_TREND * (calendar - start).astype(float) / 365.25
    arrived = np.cumsum(np.bincount(agency * n_days + day, minlength=n_agencies * n_days)
                        .reshape(n_agencies, n_days), axis=1).astype(float)
    served = np.empty_like(arrived)
    level = np.zeros(n_agencies)
    per_day = capacity * officers.astype(float)
    for t in range(n_days):
        level = np.minimum(level + per_day * trend[t], arrived[:, t])
        served[:, t] = level
    order = np.lexsort((seq, day, agency))
    first = np.r_[0, np.cumsum(np.bincount(agency, minlength=n_agencies))[:-1]]
    position = np.empty(agency.size, dtype=float)
    position[order] = np.arange(agency.size) - first[agency[order]] + 1
    offset = np.arange(n_agencies)[:, None] * (float(agency.size) + 1.0)
    taken = np.searchsorted((served + offset).ravel(), position + offset[agency, 0] - 1e-3) - agency * n_days
    return np.maximum(taken - day, 0).astype(np.int64)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _intercept(logit: np.ndarray, target: float) -> float:
    """The shift that makes the mean probability equal `target` (bisection; the mean is monotone in it)."""
    lo, hi = -15.0, 15.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _sigmoid(logit + mid).mean() < target else (lo, mid)
    return (lo + hi) / 2


def _sequence_in_day(agency: np.ndarray, received: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1, 2, 3 … per agency and day, in a random order within the day (the counter's running number)."""
    order = np.lexsort((rng.random(agency.size), received, agency))
    key = agency[order].astype("int64") * 10**6 + received[order].astype("int64")
    starts = np.r_[True, key[1:] != key[:-1]]
    position = np.arange(agency.size)
    run_start = np.maximum.accumulate(np.where(starts, position, 0))
    seq = np.empty(agency.size, dtype=np.int64)
    seq[order] = position - run_start + 1
    return seq


class _NoNoise:
    """Stands in for the generator's random stream in `arrival_weights`: the day-to-day noise set to 1."""

    def lognormal(self, mean: float, sigma: float, size: int) -> np.ndarray:
        return np.ones(size)


def expected_weekly_inflow(rows: int, seed: int, as_of: date) -> pl.DataFrame:
    """The generator's own expectation of dossiers per week, agency and field (the forecast's oracle).

    From its parameters: each agency × field's share (procedure volumes × the seeded commune weights, the same
    draw `dossiers` makes) and each field's daily arrival profile (weekdays, month-end, Tết, the reform dip,
    trend, field seasonality) without the unforecastable day-to-day noise. Columns: tuan_bat_dau (Monday),
    co_quan, linh_vuc, n_ky_vong.
    """
    holidays = holiday_days(FIRST_DAY.year, as_of.year + 2)
    units = communes()
    rng = _stream(seed, 1)
    commune_w = np.where([c.is_ward for c in units], WARD_SIZE, 1.0) * rng.lognormal(0.0, 0.6, len(units))
    commune_p = commune_w / commune_w.sum()
    volume = np.array([p.volume for p in PROCEDURES], dtype=float)
    proc_p = volume / volume.sum()
    days, base = arrival_weights(FIRST_DAY, as_of - timedelta(days=1), holidays, _NoNoise())
    month = days.astype("datetime64[M]").astype(int) % 12 + 1
    monday = days - ((days.astype("int64") + 3) % 7).astype("timedelta64[D]")
    weeks, week_of_day = np.unique(monday, return_inverse=True)
    frames = []
    for name in FIELDS:
        season = FIELD_SEASON.get(name, {})
        weights = base * np.array([season.get(m, 1.0) for m in range(1, 13)])[month - 1]
        week_share = np.bincount(week_of_day, weights=weights, minlength=weeks.size) / weights.sum()
        in_field = [i for i, p in enumerate(PROCEDURES) if p.field == name]
        shares = {commune_agency_name(u.name): 0.0 for u in units}
        at_commune = sum(proc_p[i] for i in in_field if PROCEDURES[i].agency == XA)
        for c, unit in enumerate(units):
            shares[commune_agency_name(unit.name)] += at_commune * commune_p[c]
        for i in in_field:
            if PROCEDURES[i].agency != XA:
                shares[PROCEDURES[i].agency] = shares.get(PROCEDURES[i].agency, 0.0) + proc_p[i]
        shares = {k: v for k, v in shares.items() if v > 0}
        if not shares:
            continue
        agencies = list(shares)
        share = np.array([shares[a] for a in agencies])
        frames.append(pl.DataFrame({
            "tuan_bat_dau": pl.Series(np.tile(weeks, len(agencies)), dtype=pl.Date),
            "co_quan": np.repeat(agencies, weeks.size),
            "linh_vuc": name,
            "n_ky_vong": rows * np.repeat(share, weeks.size) * np.tile(week_share, len(agencies)),
        }))
    return pl.concat(frames)
