"""The forecast's calendar knowledge: a declared national event is learnt only from its own days, and one
past Tết teaches the days around the next one whatever weekday they fall on (synthetic daily counts, ~2 s)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.calendar import EVENTS, tet_offsets
from models.inflow_forecast import PARAMS, Design, panel_from_weekly
from pipelines.reference.calendar import WEEKMASK, holiday_days

FIRST, LAST = np.datetime64("2024-01-01"), np.datetime64("2025-08-31")
EVENT = EVENTS[0]  # 1 July 2025, a two-week transition window
DIP, TET_LULL = 0.6, 0.5


@pytest.fixture(scope="module")
def counts() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two fields × two agencies: 200 dossiers per working day in all, halved in the 10 days after each Tết,
    × 0.6 in the event's window; Poisson noise only."""
    rng = np.random.default_rng(3)
    days = np.arange(FIRST, LAST + 1)
    rate = 50.0 * np.is_busday(days, weekmask=WEEKMASK, holidays=holiday_days(2024, 2025))
    off = tet_offsets(days)
    rate = rate * np.where((off >= 1) & (off <= 10), TET_LULL, 1.0)
    rate = rate * np.where((days >= EVENT.start) & (days < EVENT.start + EVENT.days), DIP, 1.0)
    rows = [{"ngay": d, "co_quan": a, "linh_vuc": f, "n": float(n)}
            for a in ("A", "B") for f in ("x", "y") for d, n in zip(days, rng.poisson(rate), strict=True)]
    daily = pd.DataFrame(rows)
    daily["tuan_bat_dau"] = daily["ngay"] - pd.to_timedelta(pd.to_datetime(daily["ngay"]).dt.weekday, unit="D")
    weekly = daily.groupby(["tuan_bat_dau", "co_quan", "linh_vuc"], as_index=False)["n"].sum()
    return weekly.rename(columns={"n": "n_tiep_nhan"}), daily.groupby(["ngay", "linh_vuc"], as_index=False)["n"].sum()


def _origin(panel, monday: str) -> int:
    return int(np.flatnonzero(panel.weeks == np.datetime64(monday))[0])


def test_an_event_is_learnt_from_its_first_days_and_assumed_away_before(counts):
    weekly, daily = counts
    panel = panel_from_weekly(weekly)
    design = Design(panel, 8, PARAMS, daily)
    before = design.fit(_origin(panel, "2025-06-23"), "poisson_glm")  # data to Sun 29 June: nothing known yet
    after = design.fit(_origin(panel, "2025-06-30"), "poisson_glm")   # data to Sun 6 July: 4 days of the window
    effect = dict(zip(before.columns, before.common, strict=True))[EVENT.name]
    assert abs(effect) < 1e-6
    learnt = dict(zip(after.columns, after.common, strict=True))[EVENT.name]
    assert abs(np.exp(learnt) - DIP) < 0.08, np.exp(learnt)
    # Its second week (7–11 July), never seen, is forecast at the learnt level; the week after the window is not.
    week = _origin(panel, "2025-07-07")
    field = np.array([0])
    normal, _ = design.weekly_profile(after, field, np.array([_origin(panel, "2025-06-16")]))
    second, _ = design.weekly_profile(after, field, np.array([week]))
    later, _ = design.weekly_profile(after, field, np.array([week + 2]))
    assert abs(second[0] / normal[0] - DIP) < 0.1, second / normal
    assert abs(later[0] / normal[0] - 1.0) < 0.1, later / normal


def test_one_past_tet_teaches_the_days_after_the_next(counts):
    weekly, daily = counts
    panel = panel_from_weekly(weekly)
    design = Design(panel, 8, PARAMS, daily)
    # Trained to Sun 19 Jan 2025, with Tết 2024 (Sat 10 Feb) as the only example; Tết 2025 is Wed 29 Jan.
    fitted = design.fit(_origin(panel, "2025-01-13"), "poisson_glm")
    weeks = np.array([_origin(panel, "2025-02-03"), _origin(panel, "2025-02-17")])
    (lull, normal), _ = design.weekly_profile(fitted, np.array([0, 0]), weeks)
    # 3–7 Feb 2025 are days 5–9 after Tết (halved); 17–21 Feb are ordinary. In 2024 days 7–8 were a weekend,
    # so they are known only through their neighbours.
    assert abs(lull / normal - TET_LULL) < 0.1, lull / normal
