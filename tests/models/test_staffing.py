"""Staffing: an integer programme with hand-computable optima, and capacity read from history."""

from __future__ import annotations

import pandas as pd
import pytest

from models.staffing import estimate_capacity, recommend_staffing

CAPACITY = pd.DataFrame({"co_quan": ["A", "B"], "nang_suat_tuan": [20.0, 10.0], "so_can_bo": [3, 3]})
FORECAST = pd.DataFrame({"co_quan": ["A", "A", "B"], "linh_vuc": ["x", "y", "x"], "n_du_bao": [60.0, 40.0, 50.0]})


def test_six_officers_go_where_each_one_clears_the_most():
    plan = recommend_staffing(FORECAST, CAPACITY, total_headcount=6).set_index("co_quan")
    # A needs 100/20 = 5 officers, B 50/10 = 5; with 6 and at least 1 each, an officer at A clears 20
    # dossiers and one at B only 10: A gets 5 (nothing over), B keeps 1 (50 − 10 = 40 over).
    # Any other split is worse, e.g. 4 + 2: 20 + 30 = 50.
    assert plan["so_can_bo_de_xuat"].to_dict() == {"A": 5, "B": 1}
    assert plan["n_qua_han_du_kien_de_xuat"].to_dict() == {"A": 0.0, "B": 40.0}
    # Today's 3 + 3 leaves 100 − 60 = 40 over at A and 50 − 30 = 20 at B.
    assert plan["n_qua_han_du_kien_hien_tai"].sum() == 60.0
    assert plan["thay_doi"].to_dict() == {"A": 2, "B": -2}


def test_spare_headcount_is_not_moved_for_nothing():
    plan = recommend_staffing(FORECAST, CAPACITY, total_headcount=20).set_index("co_quan")
    # 5 + 5 covers everything; the rest stays where it is (each move costs a little), so exactly 5 each.
    assert plan["so_can_bo_de_xuat"].to_dict() == {"A": 5, "B": 5}
    assert plan["n_qua_han_du_kien_de_xuat"].sum() == 0.0


def test_a_wide_forecast_range_earns_a_buffer():
    wide = FORECAST.assign(n_du_bao_thap=[50.0, 30.0, 50.0], n_du_bao_cao=[80.0, 60.0, 50.0])
    plan = recommend_staffing(wide, CAPACITY, total_headcount=20).set_index("co_quan")
    # A's high scenario is 140 dossiers = 7 officers of 20; its weight (0.2 × 20 dossiers per officer each
    # for the 6th and 7th) beats the small cost of a move, so A gets 7; B's range is flat: 5.
    assert plan["so_can_bo_de_xuat"].to_dict() == {"A": 7, "B": 5}


def test_too_small_a_headcount_is_refused_with_a_sentence():
    with pytest.raises(ValueError, match="at least 2"):
        recommend_staffing(FORECAST, CAPACITY, total_headcount=1)


def test_capacity_is_a_busy_week_per_officer_and_new_agencies_get_the_median():
    returns = pd.DataFrame({"co_quan": ["A"] * 10 + ["B"] * 10,
                            "tuan": list(range(10)) * 2,
                            "n_da_tra": list(range(10, 110, 10)) + [5] * 10})
    officers = pd.DataFrame({"co_quan": ["A", "B", "C"], "so_can_bo": [4, 1, 2]})
    cap = estimate_capacity(returns, officers, quantile=0.9).set_index("co_quan")
    # A's weeks are 10, 20 … 100: the 90th percentile (linear) is 91 → 91 / 4 officers = 22.75.
    # B returns 5 a week with 1 officer → 5. C has no history: median of 22.75 and 5 = 13.875.
    assert cap["nang_suat_tuan"].to_dict() == pytest.approx({"A": 22.75, "B": 5.0, "C": 13.875})
