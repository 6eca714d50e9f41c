"""Working-day calendar and the day-by-day arrival profile of dossiers at the one-stop-shop counters."""

from __future__ import annotations

from datetime import date

import numpy as np

from pipelines.reference.calendar import WEEKMASK, tet_days

# Arrivals by weekday, Monday highest (the weekend's backlog), tailing off towards Friday.
WEEKDAY_FACTOR = np.array([1.30, 1.10, 1.00, 0.95, 0.85, 0.0, 0.0])
SATURDAY_MORNING_FACTOR = 0.3  # the last Saturday of each month opens a morning counter
MONTH_END_FACTOR = 1.35  # the last 3 working days of a month
TREND_PER_YEAR = 0.12  # more dossiers each year as online filing spreads
# Around the Lunar New Year (days relative to its first day): a rush to finish paperwork, a dip in the
# last week before and the first two weeks after, then a rebound of postponed dossiers.
TET_PROFILE = ((-21, -8, 1.15), (-7, -1, 0.45), (1, 10, 0.55), (11, 35, 1.30))
# The first two weeks after the 1 July 2025 reorganisation, while counters moved to the new communes.
REFORM_DIP = (np.datetime64("2025-07-01"), np.datetime64("2025-07-14"), 0.7)


def add_working_days(start: np.ndarray, n: np.ndarray, holidays: np.ndarray) -> np.ndarray:
    """`start` + `n` working days (a Saturday or holiday start counts from the next working day)."""
    return np.busday_offset(start, n, roll="forward", weekmask=WEEKMASK, holidays=holidays)


def arrival_weights(first: date, last: date, holidays: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Every day from `first` to `last` and its relative expected number of arrivals (0 = closed)."""
    days = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D") + 1)
    weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    weights = WEEKDAY_FACTOR[weekday].copy()

    months = days.astype("datetime64[M]")
    next_month = (months + 1).astype("datetime64[D]")
    is_saturday = weekday == 5
    weights[is_saturday & (next_month - days <= 7)] = SATURDAY_MORNING_FACTOR

    is_workday = np.is_busday(days, weekmask=WEEKMASK, holidays=holidays)
    left_in_month = np.busday_count(days, next_month, weekmask=WEEKMASK, holidays=holidays)
    weights[is_workday & (left_in_month <= 3)] *= MONTH_END_FACTOR

    years = days.astype("datetime64[Y]").astype(int) + 1970
    for tet in tet_days(int(years.min()), int(years.max()) + 1):
        offset = (days - tet).astype(int)
        for lo, hi, factor in TET_PROFILE:
            weights[(offset >= lo) & (offset <= hi)] *= factor
    start, end, factor = REFORM_DIP
    weights[(days >= start) & (days <= end)] *= factor

    weights *= 1 + TREND_PER_YEAR * (days - days[0]).astype(float) / 365.25
    weights *= rng.lognormal(0.0, 0.15, size=days.size)  # day-to-day noise (weather, system outages)
    weights[np.isin(days, holidays)] = 0.0
    return days, weights
