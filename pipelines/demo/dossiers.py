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
from pipelines.demo.workdays import add_working_days, arrival_weights
from pipelines.reference.calendar import holiday_days

FIRST_DAY = date(2024, 1, 1)
OVERDUE_TARGET = 0.115  # mean probability of returning late; the realised share lands in 8-15 %
WARD_SIZE = 3.0  # an urban ward (phường) files about three times a rural commune's dossiers
OTHER_COMMUNE_SHARE = 0.04  # commune procedures filed away from home ("không phụ thuộc địa giới hành chính")
LOAD_EFFECT = 1.2  # log-odds per unit of log relative weekly load at the agency
TREND_PER_YEAR = -0.3  # agencies get a little faster each year (log-odds)
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

    rng = _stream(seed, 4)
    field_names = list(FIELDS)
    field = np.array([field_names.index(p.field) for p in PROCEDURES])[proc]
    years = (received - np.datetime64(FIRST_DAY, "D")).astype(float) / 365.25
    logit = (np.array(list(FIELDS.values()))[field] + agency_effect[agency]
             + LOAD_EFFECT * _weekly_load(agency, received, n_dept + len(units)) + TREND_PER_YEAR * years)
    late = rng.random(rows) < _sigmoid(logit + _intercept(logit, OVERDUE_TARGET))
    on_time_days = np.minimum(np.floor(rng.beta(2.0, 2.2, rows) * (legal + 1)), legal)
    late_days = legal + rng.geometric(1.0 / np.maximum(1.0, 0.4 * legal))
    returned_on = add_working_days(received, np.where(late, late_days, on_time_days).astype(np.int64), holidays)
    is_returned = returned_on < np.datetime64(as_of, "D")

    # Last update: the return itself, or some working moment between arrival and the export for pending ones.
    pending_day = received + np.floor(rng.random(rows) * (np.datetime64(as_of, "D") - received).astype(float)
                                      ).astype("timedelta64[D]")
    update_day = np.where(is_returned, returned_on, pending_day)
    update_s = update_day.astype("datetime64[s]") + (OFFICE_OPEN_S + rng.integers(0, OFFICE_DAY_S, rows)
                                                      ).astype("timedelta64[s]")

    seq = _sequence_in_day(agency, received, _stream(seed, 5))
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
