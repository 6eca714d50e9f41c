"""Week calendar features: Vietnamese holidays and Tết come from the `holidays` package."""

from __future__ import annotations

import numpy as np

from models.calendar import week_calendar


def test_tet_and_national_day_weeks():
    weeks = np.array(["2025-01-20", "2025-01-27", "2025-02-03", "2025-09-01", "2025-10-06"], dtype="datetime64[D]")
    cal = week_calendar(weeks)
    # Tết 2025 fell on Wed 29 Jan; the state gave Mon 27 – Sat 1 Feb off, so that week has no working day.
    # National Day 2025: Mon 1 and Tue 2 Sep off → 3 working days. 6 Oct 2025 is an ordinary week.
    assert cal["n_working_days"].tolist() == [5, 0, 5, 3, 5]
    assert cal["n_holidays"].tolist() == [0, 5, 0, 2, 0]
    # The week holding Tết is 0, the week before −1, the week after +1; October is outside the Tết window.
    assert cal["weeks_from_tet"].tolist()[:3] == [-1, 0, 1]
    assert np.isnan(cal["weeks_from_tet"].iloc[4])


def test_month_end_days_count_the_last_three_working_days():
    # Week of Mon 24 Nov 2025: the last three working days of November are Wed 26, Thu 27, Fri 28.
    # Week of Mon 10 Nov 2025 is mid-month.
    cal = week_calendar(np.array(["2025-11-24", "2025-11-10"], dtype="datetime64[D]"))
    assert cal["n_month_end_days"].tolist() == [3, 0]
