"""Anomaly checks: each finds the outlier planted in otherwise regular data, and nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.anomalies import daily_anomalies, indicator_anomalies, load_anomalies


def test_indicators_flag_a_level_and_a_jump():
    rng = np.random.default_rng(0)
    rows = []
    for c in range(30):
        for q in (1, 2, 3):
            value = 50 + 5 * q + rng.normal(0, 1)  # every commune gains about 5 points a quarter
            if c == 7:
                value = 5.0                         # a commune reporting 5 % where the others report 55-65 %
            if c == 12 and q == 3:
                value += 25                         # a sudden +30 jump where others gained about 5
            rows.append({"ma_xa": f"{c:05d}", "ten_xa": f"Xã {c}", "nam": 2025, "quy": q,
                         "thanh_phan": "ky_nang_so_co_ban", "ty_le_pct": value})
    flags = indicator_anomalies(pd.DataFrame(rows))
    assert {f.split(" (")[0] for f in flags["doi_tuong"]} == {"Xã 7", "Xã 12"}
    assert flags.loc[flags["doi_tuong"].str.startswith("Xã 12"), "ky"].tolist() == ["Quý 3/2025"]
    assert (flags.loc[flags["doi_tuong"].str.startswith("Xã 7"), "ky"].str.startswith("Quý")).all()


def test_daily_arrivals_flag_a_collapse_but_not_holidays():
    days = pd.date_range("2025-01-06", "2025-06-27", freq="B")  # weekdays, Tết and 30 Apr – 2 May included
    rng = np.random.default_rng(1)
    n = rng.poisson(100, len(days)).astype(float)
    holidays = pd.to_datetime(["2025-01-27", "2025-01-28", "2025-01-29", "2025-01-30", "2025-01-31",
                               "2025-04-07", "2025-04-30", "2025-05-01", "2025-05-02"])
    n[days.isin(holidays)] = 0                      # offices closed: no arrivals, and that is normal
    n[days == pd.Timestamp("2025-05-20")] = 12      # a system outage: 12 dossiers instead of ~100
    flags = daily_anomalies(pd.DataFrame({"ngay": days, "n": n}))
    assert flags["ky"].tolist() == ["2025-05-20"]
    assert flags["gia_tri"].tolist() == [12.0]


def test_a_load_far_from_previous_batches_is_flagged():
    loads = pd.DataFrame({"source": ["ho_so"] * 8, "batch_id": [f"r{i}" for i in range(8)],
                          "n_rows_loaded": [1000, 1020, 990, 1010, 1005, 995, 1015, 40]})
    flags = load_anomalies(loads)
    # The first five batches only build the history; r5 and r6 are ordinary; r7 lost 96 % of its rows.
    assert flags["ky"].tolist() == ["r7"]
