"""The Vietnamese working calendar: Monday-Friday offices, public holidays and Tết (from `holidays`).

Reference data shared by the demo generator (arrival profile, due dates) and the models (calendar
features); one place so both count working days the same way.
"""

from __future__ import annotations

import numpy as np

WEEKMASK = "1111100"  # offices work Monday-Friday


def holiday_days(first_year: int, last_year: int) -> np.ndarray:
    """Vietnamese public holidays (Tết and compensatory days off included) as sorted datetime64[D]."""
    import holidays

    days = holidays.Vietnam(years=range(first_year, last_year + 1))
    return np.array(sorted(days), dtype="datetime64[D]")


def tet_days(first_year: int, last_year: int) -> np.ndarray:
    """First day of the Lunar New Year in each year."""
    import holidays

    days = holidays.Vietnam(years=range(first_year, last_year + 1), language="en_US")
    return np.array(sorted(days.get_named("Lunar New Year", lookup="exact")), dtype="datetime64[D]")
