"""Calendar features that know Vietnamese public holidays, Tết and declared national events.

Offices receive dossiers Monday to Friday; a week with a holiday has fewer working days, and the weeks
around the Lunar New Year (Tết) move by up to three weeks from one year to the next, which is exactly what
a "same week last year" forecast gets wrong. National events that change how citizens file (a
reorganisation of local government) are declared here with their date, like a holiday: a model knows the
date in advance but learns the effect only from days after it (see `EVENTS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.reference.calendar import WEEKMASK, holiday_days, tet_days

TET_WINDOW = (-8, 10)  # weeks before/after Tết the feature distinguishes; further away counts as "far"
CALENDAR_FEATURES = ["n_working_days", "n_holidays", "weeks_from_tet", "week_of_year", "month",
                     "n_month_end_days"]


def week_calendar(week_starts: np.ndarray) -> pd.DataFrame:
    """One row per Monday in `week_starts` (datetime64[D]) with the columns of CALENDAR_FEATURES."""
    weeks = np.asarray(week_starts, dtype="datetime64[D]")
    years = weeks.astype("datetime64[Y]").astype(int) + 1970
    first, last = int(years.min()) - 1, int(years.max()) + 1
    hol = holiday_days(first, last)
    tet = tet_days(first, last)
    ends = weeks + 7
    n_working = np.busday_count(weeks, ends, weekmask=WEEKMASK, holidays=hol)
    n_holidays = np.busday_count(weeks, ends, weekmask=WEEKMASK) - n_working
    # Signed distance in weeks to the nearest Tết, so the week before and the weeks after are told apart.
    delta = (weeks[:, None] - tet[None, :]).astype(int)
    nearest = delta[np.arange(weeks.size), np.abs(delta).argmin(axis=1)]
    weeks_from_tet = np.floor_divide(nearest + 6, 7).astype(float)  # the week holding Tết is 0
    weeks_from_tet[(weeks_from_tet < TET_WINDOW[0]) | (weeks_from_tet > TET_WINDOW[1])] = np.nan
    # Working days of the week that fall in the last three working days of their month (the month-end rush).
    days = weeks[:, None] + np.arange(5)[None, :]
    next_month = (days.astype("datetime64[M]") + 1).astype("datetime64[D]")
    is_work = np.is_busday(days, weekmask=WEEKMASK, holidays=hol)
    left = np.busday_count(days, next_month, weekmask=WEEKMASK, holidays=hol)
    n_month_end = (is_work & (left <= 3)).sum(axis=1)
    stamps = pd.to_datetime(weeks)
    return pd.DataFrame({
        "n_working_days": n_working.astype(float),
        "n_holidays": n_holidays.astype(float),
        "weeks_from_tet": weeks_from_tet,
        "week_of_year": stamps.isocalendar().week.to_numpy(dtype=float),
        "month": (stamps + pd.Timedelta(days=3)).month.to_numpy(dtype=float),  # the month of the Thursday
        "n_month_end_days": n_month_end.astype(float),
    })


@dataclass(frozen=True)
class Event:
    """A publicly known national calendar event whose first days may change arrivals (a regime change).

    `days` is the transition window the forecast gives its own effect, from `start` on; the effect's size is
    not declared (nobody knows it beforehand): a model learns it from the window's days once they are in the
    data, and assumes no effect until then.
    """

    name: str
    start: np.datetime64
    days: int
    description: str


EVENTS: tuple[Event, ...] = (
    Event("reorganisation_2025", np.datetime64("2025-07-01"), 14,
          "two-tier local government from 1 July 2025 (district level abolished, communes merged): the first "
          "two weeks, while one-stop-shop counters moved to the new communes"),
)


def tet_offsets(days: np.ndarray) -> np.ndarray:
    """Signed days from each day to the nearest first day of Tết (0 = Tết itself, −1 = the eve)."""
    days = np.asarray(days, dtype="datetime64[D]")
    years = days.astype("datetime64[Y]").astype(int) + 1970
    tet = tet_days(int(years.min()) - 1, int(years.max()) + 1)
    offset = (days[:, None] - tet[None, :]).astype(int)
    return offset[np.arange(days.size), np.abs(offset).argmin(axis=1)]


def event_windows(days: np.ndarray, events: tuple[Event, ...] = EVENTS) -> np.ndarray:
    """(days × events) indicators: 1 on the days of each event's transition window."""
    days = np.asarray(days, dtype="datetime64[D]")
    out = np.zeros((days.size, len(events)))
    for j, e in enumerate(events):
        out[:, j] = (days >= e.start) & (days < e.start + e.days)
    return out
