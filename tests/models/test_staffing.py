"""Staffing: the queueing relation on hand-made cases, the integer programme's hand-computable optima, and on
the demo generator's dossiers (where officers on duty drive waiting) a plan that cuts last quarter's late dossiers
at the same total headcount, with the relation's capacity fitted from the data alone."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from models.staffing import (
    TOTAL_LABEL,
    agency_waits,
    constant_capacity,
    evaluate_quarter,
    history_start,
    late_under,
    own_work,
    plan_headcount,
    prepare,
    quarter_bounds,
)
from tests.models.conftest import DEMO_AS_OF, DEMO_ROWS, DEMO_SEED

MON, TUE, WED = "2025-03-03", "2025-03-04", "2025-03-05"


def _frame(rows):
    frame = pd.DataFrame(rows, columns=["co_quan", "ngay_nhan", "ngay_hen_tra", "ngay_tra"])
    for col in ("ngay_nhan", "ngay_hen_tra", "ngay_tra"):
        frame[col] = pd.to_datetime(frame[col])
    return frame


def test_the_queue_replays_waits_and_counts_late_dossiers_by_hand():
    # Agency A, one officer taking up 2 dossiers a day. Monday brings 5 dossiers, Wednesday 1; each needs one
    # working day of its own work and is allowed one (due the next working day).
    # Served by day: Mon min(2, 5) = 2, Tue 4, Wed min(6, 6) = 6 → waits 0, 0, 1, 1, 2 and Wednesday's 0.
    # Recorded: returned after wait + 1 day of own work: the three that waited are late.
    rows = [("A", MON, TUE, TUE), ("A", MON, TUE, TUE), ("A", MON, TUE, WED), ("A", MON, TUE, WED),
            ("A", MON, TUE, "2025-03-06"), ("A", WED, "2025-03-06", "2025-03-06")]
    d = prepare(_frame(rows), ["A"], date(2025, 3, 3), date(2025, 3, 31))
    every = np.arange(6)
    waits = agency_waits(d, constant_capacity(d, np.array([1]), 2.0), every)
    assert waits.tolist() == [0, 0, 1, 1, 2, 0]
    work = own_work(d, waits)
    assert work.tolist() == [1] * 6 and d.recorded_late.sum() == 3
    assert late_under(d, every, work, waits, waits).sum() == 3  # replayed as it was: as recorded
    # Three officers (6 a day): nobody waits, nobody is late.
    three = agency_waits(d, constant_capacity(d, np.array([3]), 2.0), every)
    assert three.tolist() == [0] * 6 and late_under(d, every, work, waits, three).sum() == 0
    # Half an officer's worth (1 a day): waits 0, 1, 2, 3, 4 and Wednesday's 3 (behind Monday's) → 5 late.
    half = agency_waits(d, constant_capacity(d, np.array([1]), 1.0), every)
    assert half.tolist() == [0, 1, 2, 3, 4, 3] and late_under(d, every, work, waits, half).sum() == 5


def test_an_open_dossier_gets_no_credit_only_blame():
    # Open at the cut-off (Friday 7 March), allowed 2 working days from Monday: already late (open past due).
    # A shorter wait cannot be credited (its end is unknown); one allowed 10 days, open 4 days so far with no
    # wait, is late under a replay that makes it wait 7 days more (4 + 7 > 10), not under one of 6 (4 + 6 = 10).
    rows = [("A", MON, WED, None), ("A", MON, "2025-03-17", None)]
    d = prepare(_frame(rows), ["A"], date(2025, 3, 3), date(2025, 3, 7))
    assert d.is_open.all() and d.elapsed.tolist() == [4, 4] and d.allowed.tolist() == [2, 10]
    actual = np.array([3, 0])
    work = own_work(d, actual)
    assert late_under(d, np.arange(2), work, actual, np.array([0, 0])).tolist() == [True, False]
    assert late_under(d, np.arange(2), work, actual, np.array([3, 7])).tolist() == [True, True]
    assert late_under(d, np.arange(2), work, actual, np.array([3, 6])).tolist() == [True, False]


CURVES = pd.DataFrame({"co_quan": ["A"] * 3 + ["B"] * 3, "so_can_bo": [1, 2, 3] * 2,
                       "n_qua_han_du_kien": [10.0, 4.0, 3.5, 1.0, 0.0, 0.0]})


def test_an_officer_moves_when_the_late_dossiers_saved_pay_for_the_move():
    now = pd.Series({"A": 1, "B": 2})
    plan = plan_headcount(CURVES, now, total_headcount=3).set_index("co_quan")
    # B → A: A goes 10 → 4 late a week, B 0 → 1: 5 saved, more than the move's cost of 1 (a half at each end).
    assert plan["so_can_bo_de_xuat"].to_dict() == {"A": 2, "B": 1}
    assert plan["n_qua_han_du_kien_hien_tai"].sum() == 10.0 and plan["n_qua_han_du_kien_de_xuat"].sum() == 5.0
    # If a move must save 6 late dossiers a week, saving 5 is not worth it: nobody moves.
    stay = plan_headcount(CURVES, now, total_headcount=3, move_saves_per_week=6.0).set_index("co_quan")
    assert stay["thay_doi"].abs().sum() == 0
    # A spare officer (total 4) goes to A, where it saves 6 at the cost of one end (0.5); never more than 4 placed.
    spare = plan_headcount(CURVES, now, total_headcount=4).set_index("co_quan")
    assert spare["so_can_bo_de_xuat"].to_dict() == {"A": 2, "B": 2}


def test_too_small_a_headcount_is_refused_with_a_sentence():
    with pytest.raises(ValueError, match="at least 2"):
        plan_headcount(CURVES, pd.Series({"A": 1, "B": 2}), total_headcount=1)


def test_the_quarter_is_the_last_13_complete_weeks():
    assert quarter_bounds(date(2025, 10, 31)) == (date(2025, 7, 28), date(2025, 10, 27))
    assert quarter_bounds(date(2025, 11, 2)) == (date(2025, 8, 4), date(2025, 11, 3))  # a Sunday cut-off: complete


# --- on the demo generator's dossiers (150k, the session fixture) ------------------------------------------------

@pytest.fixture(scope="module")
def roster():
    from pipelines.demo.staffing import roster

    return roster(DEMO_SEED)


@pytest.fixture(scope="module")
def replay(demo_dossiers, roster):
    as_of = DEMO_AS_OF - timedelta(days=1)  # the data's cut-off: the last day dossiers were returned
    frame = (demo_dossiers.filter(pl.col("ngay_nhan") >= history_start(as_of))
             .sort("co_quan", "ngay_nhan", "ma_ho_so").select("co_quan", "ngay_nhan", "ngay_hen_tra", "ngay_tra")
             .to_pandas())
    return evaluate_quarter(frame, roster.to_pandas(), as_of)


def test_the_generator_makes_more_load_per_officer_return_later(demo_dossiers, roster):
    from pipelines.reference.calendar import WEEKMASK, holiday_days

    done = demo_dossiers.filter(pl.col("ngay_tra").is_not_null()).join(roster, on="co_quan")
    hol = holiday_days(2024, 2027)
    days = np.busday_count(done["ngay_nhan"].to_numpy(), done["ngay_tra"].to_numpy(), weekmask=WEEKMASK, holidays=hol)
    allowed = np.busday_count(done["ngay_nhan"].to_numpy(), done["ngay_hen_tra"].to_numpy(), weekmask=WEEKMASK,
                              holidays=hol)
    # Working days to return beyond the mean of dossiers allowed as long (procedures differ: compare like with
    # like), per agency-week, against that week's dossiers per officer on duty.
    weeks = (done.with_columns(pl.Series("wd", days), pl.Series("allowed", allowed),
                               pl.col("ngay_nhan").dt.truncate("1w").alias("tuan"))
             .with_columns((pl.col("wd") - pl.col("wd").mean().over("allowed")).alias("extra"))
             .group_by("co_quan", "tuan")
             .agg(pl.len().alias("n"), pl.col("so_can_bo").first(), pl.col("extra").sum())
             .with_columns((pl.col("n") / pl.col("so_can_bo")).alias("load")))
    load, n, extra = (weeks[c].to_numpy() for c in ("load", "n", "extra"))
    band = np.searchsorted(np.quantile(load, [0.2, 0.4, 0.6, 0.8]), load)
    by_band = [extra[band == b].sum() / n[band == b].sum() for b in range(5)]
    # By fifth of agency-weeks' load per officer: flat while the officers keep up (nobody waits: within 0.05 day),
    # then rising with the load, the busiest fifth ≥ half a working day longer than the quietest.
    assert all(b >= a - 0.05 for a, b in zip(by_band, by_band[1:], strict=False)), by_band
    assert by_band[4] > by_band[3] > by_band[2] and by_band[-1] - by_band[0] >= 0.5, by_band
    # The late share stays in the range the rest of the demo expects.
    late = (done["ngay_tra"] > done["ngay_hen_tra"]).mean()
    assert 0.08 <= late <= 0.16, late


def test_capacity_is_fitted_from_the_data_not_read_from_the_generator(replay):
    from pipelines.demo.dossiers import officer_capacity
    from pipelines.demo.workdays import TREND_PER_YEAR
    from pipelines.reference.calendar import holiday_days

    # The generator's own capacity per officer-day in the middle of the 26 weeks fitted (it grows with the
    # arrivals' trend): the model never sees it, and finds it within 10 %.
    q_start, _ = quarter_bounds(date(2025, 10, 31))
    middle = (q_start - timedelta(weeks=13) - date(2024, 1, 1)).days / 365.25
    truth = officer_capacity(DEMO_ROWS, DEMO_AS_OF, holiday_days(2024, 2027)) * (1 + TREND_PER_YEAR * middle)
    assert replay.identified
    assert replay.per_officer_day == pytest.approx(truth, rel=0.10)


def test_the_plan_cuts_last_quarters_late_dossiers_at_the_same_headcount(replay):
    table = replay.table
    total = table[table["la_tong"]].iloc[0]
    agencies = table[~table["la_tong"]]
    assert total["co_quan"] == TOTAL_LABEL and len(agencies) == 138
    for col in ("n_ho_so", "so_can_bo_thuc_te", "so_can_bo_ke_hoach", "n_qua_han_thuc_te", "n_qua_han_ke_hoach"):
        assert total[col] == agencies[col].sum(), col
    assert total["n_ho_so"] > 15_000
    # The same officers, placed differently: the plan never uses more than the roster's total.
    assert total["so_can_bo_ke_hoach"] <= total["so_can_bo_thuc_te"]
    assert (agencies["so_can_bo_ke_hoach"] != agencies["so_can_bo_thuc_te"]).any()
    # The relation replays the actual roster close to what was recorded (within 10 %) ...
    assert total["n_qua_han_thuc_te"] == pytest.approx(total["n_qua_han_ghi_nhan"], rel=0.10)
    # ... and the plan made at the quarter's start (from the 13 weeks before it) cuts late dossiers by ≥ 10 %.
    assert total["n_qua_han_ke_hoach"] <= 0.9 * total["n_qua_han_thuc_te"], total.to_dict()
