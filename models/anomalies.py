"""Anomalies in reported figures, with robust z-scores (median and MAD, so one wild value cannot hide itself).

Three checks, each a pure function over a small frame pulled from the warehouse:
- digital-society indicators per commune (`staging.xa_hoi_so`): a quarter's value, or its change since the
  previous quarter, far from what the other communes reported for the same component;
- daily dossier arrivals (`staging.ho_so`): a working day far from the median of the same weekday over the
  previous eight weeks (holidays are closed days, not anomalies; the weeks around Tết are marked as such);
- loads (`meta.loads`): a batch whose row count is far from the source's previous batches.
Flags go to `marts.bat_thuong` for data quality and the apps to surface: a flag is a question to ask the
reporting unit, not a verdict.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.registry import ModelRun, data_fingerprint, record, recorded_run, version_for
from pipelines.reference.calendar import WEEKMASK, holiday_days, tet_days
from pipelines.warehouse import table_exists, transaction

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig
    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.models.anomalies")
NAME = "anomalies"
# At least one of these shared contracts (indicators per commune, dossiers) — validate-config checks it
# (pipelines/crossrefs.py).
REQUIRES_ANY = ("chi_so_xa_hoi_so", "ho_so")
OUTPUT_TABLE = "marts.bat_thuong"
# No fitted parameters: the flags are recomputed (about a second at 1M dossiers) whenever any promoted batch
# arrived since, so a new batch is checked in the run that loads it (the retraining policy, models/retrain.py,
# never keeps a stale set of flags for it).
STATELESS = True
PARAMS = {"threshold": 3.5, "indicator_min_scale_pp": 0.5, "daily_weeks": 8, "daily_min_scale": 0.05,
          "load_min_batches": 5, "tet_window_days": [-21, 35]}
COLUMNS = ["loai", "doi_tuong", "ky", "gia_tri", "gia_tri_ky_vong", "diem_z", "mo_ta"]
MAD_TO_SD = 1.4826  # MAD × 1.4826 estimates the standard deviation of normal data

INDICATORS_SQL = "select ma_xa, ten_xa, nam, quy, thanh_phan, ty_le_pct from staging.xa_hoi_so"
DAILY_SQL = "select ngay_nhan as ngay, count(*) as n from staging.ho_so group by all"
LOADS_SQL = """select source, batch_id, n_rows_loaded from meta.loads
               where status = 'passed' and n_rows_loaded > 0"""
LOADS_ORDER = "order by source, loaded_at, batch_id"


def robust_z(values: np.ndarray, center: np.ndarray, spread: np.ndarray, min_scale: float) -> np.ndarray:
    """(value − center) / (1.4826 · MAD), with a floor on the scale so identical reports do not divide by 0."""
    return (values - center) / np.maximum(MAD_TO_SD * spread, min_scale)


def _group_robust_z(frame: pd.DataFrame, column: str, by: list[str], min_scale: float) -> tuple[pd.Series, pd.Series]:
    grouped = frame.groupby(by)[column]
    center = grouped.transform("median")
    spread = (frame[column] - center).abs().groupby([frame[b] for b in by]).transform("median")
    return robust_z(frame[column].to_numpy(), center.to_numpy(), spread.to_numpy(), min_scale), center


def indicator_anomalies(frame: pd.DataFrame, threshold: float = 3.5, min_scale: float = 0.5) -> pd.DataFrame:
    """Commune × quarter × component values far from the other communes (level or change since last quarter)."""
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    df = frame.sort_values(["ma_xa", "thanh_phan", "nam", "quy"]).reset_index(drop=True)
    df["thay_doi"] = df.groupby(["ma_xa", "thanh_phan"])["ty_le_pct"].diff()
    z_level, center_level = _group_robust_z(df, "ty_le_pct", ["thanh_phan", "nam", "quy"], min_scale)
    has_change = df["thay_doi"].notna()
    z_change = np.full(len(df), np.nan)
    center_change = pd.Series(np.nan, index=df.index)
    if has_change.any():
        zc, cc = _group_robust_z(df[has_change], "thay_doi", ["thanh_phan", "nam", "quy"], min_scale)
        z_change[has_change.to_numpy()] = zc
        center_change[has_change] = cc
    out_of_range = (df["ty_le_pct"] < 0) | (df["ty_le_pct"] > 100)
    rows = []
    for i in np.flatnonzero((np.abs(z_level) > threshold) | (np.nan_to_num(np.abs(z_change)) > threshold)
                            | out_of_range.to_numpy()):
        r = df.iloc[i]
        period = f"Quý {r['quy']}/{r['nam']}"
        if out_of_range.iloc[i]:
            z, expected, what = np.inf, center_level.iloc[i], "nằm ngoài khoảng 0–100 %"
        elif np.nan_to_num(abs(z_change[i])) >= abs(z_level[i]):
            z, expected = z_change[i], r["ty_le_pct"] - r["thay_doi"] + center_change.iloc[i]
            what = f"thay đổi {r['thay_doi']:+.1f} điểm so với quý trước, các xã khác thay đổi khoảng " \
                   f"{center_change.iloc[i]:+.1f} điểm"
        else:
            z, expected = z_level[i], center_level.iloc[i]
            what = f"khác xa mức trung vị {center_level.iloc[i]:.1f} % của các xã cùng kỳ"
        rows.append({"loai": "chi_so_xa_hoi_so", "doi_tuong": f"{r['ten_xa']} ({r['ma_xa']}) · {r['thanh_phan']}",
                     "ky": period, "gia_tri": float(r["ty_le_pct"]), "gia_tri_ky_vong": float(expected),
                     "diem_z": float(z), "mo_ta": f"{r['ten_xa']} báo cáo {r['thanh_phan']} = {r['ty_le_pct']:.1f} % "
                                                  f"({period}): {what}"})
    return pd.DataFrame(rows, columns=COLUMNS)


def daily_anomalies(daily: pd.DataFrame, threshold: float = 3.5, weeks: int = 8, min_scale: float = 0.05,
                    tet_window: tuple[int, int] = (-21, 35)) -> pd.DataFrame:
    """Working days whose arrivals are far from the median of the same weekday in the previous `weeks` weeks.

    Works on log(1 + n) so that a 30 % drop counts the same at a small and a large counter.
    """
    if daily.empty:
        return pd.DataFrame(columns=COLUMNS)
    days = pd.to_datetime(daily["ngay"]).to_numpy(dtype="datetime64[D]")
    first, last = days.min(), days.max()
    all_days = np.arange(first, last + 1)
    counts = np.zeros(all_days.size)
    np.add.at(counts, (days - first).astype(int), daily["n"].to_numpy(float))
    years = all_days.astype("datetime64[Y]").astype(int) + 1970
    hol = holiday_days(int(years.min()), int(years.max()))
    is_work = np.is_busday(all_days, weekmask=WEEKMASK, holidays=hol)
    log_n = np.log1p(counts)
    # Same weekday, previous `weeks` weeks, working days only.
    lagged = np.full((weeks, all_days.size), np.nan)
    for k in range(1, weeks + 1):
        lagged[k - 1, 7 * k:] = np.where(is_work[:-7 * k], log_n[:-7 * k], np.nan)
    enough = (~np.isnan(lagged)).sum(axis=0) >= weeks // 2
    expected = np.full(all_days.size, np.nan)
    expected[enough] = np.nanmedian(lagged[:, enough], axis=0)
    residual = log_n - expected
    usable = is_work & enough
    if not usable.any():
        return pd.DataFrame(columns=COLUMNS)
    spread = np.median(np.abs(residual[usable] - np.median(residual[usable])))
    z = robust_z(residual, np.median(residual[usable]), np.full(residual.size, spread), min_scale)
    tet = tet_days(int(years.min()), int(years.max()) + 1)
    offset = (all_days[:, None] - tet[None, :]).astype(int)
    near_tet = ((offset >= tet_window[0]) & (offset <= tet_window[1])).any(axis=1)
    rows = []
    for i in np.flatnonzero(usable & (np.abs(np.nan_to_num(z)) > threshold)):
        exp_n = float(np.expm1(expected[i]))
        note = " (giai đoạn Tết Nguyên đán: có thể là mùa vụ bình thường)" if near_tet[i] else ""
        rows.append({"loai": "ho_so_ngay", "doi_tuong": "Toàn tỉnh: hồ sơ tiếp nhận trong ngày",
                     "ky": str(all_days[i]), "gia_tri": float(counts[i]), "gia_tri_ky_vong": exp_n,
                     "diem_z": float(z[i]),
                     "mo_ta": f"Ngày {all_days[i]}: {counts[i]:.0f} hồ sơ, thường khoảng {exp_n:.0f} vào cùng thứ "
                              f"trong {weeks} tuần trước{note}"})
    return pd.DataFrame(rows, columns=COLUMNS)


def load_anomalies(loads: pd.DataFrame, threshold: float = 3.5, min_batches: int = 5) -> pd.DataFrame:
    """Batches whose loaded row count is far from the source's previous batches (rows in load order)."""
    rows = []
    for source, part in loads.groupby("source", sort=True):
        n = np.log1p(part["n_rows_loaded"].to_numpy(float))
        for i in range(min_batches, len(part)):
            history = n[max(0, i - 10):i]
            center = np.median(history)
            z = float(robust_z(np.array([n[i]]), center, np.median(np.abs(history - center)), 0.05)[0])
            if abs(z) > threshold:
                expected = float(np.expm1(center))
                actual = int(part["n_rows_loaded"].iloc[i])
                rows.append({"loai": "nap_du_lieu", "doi_tuong": f"Nguồn {source}", "ky": str(part["batch_id"].iloc[i]),
                             "gia_tri": float(actual), "gia_tri_ky_vong": expected, "diem_z": z,
                             "mo_ta": f"Lần nạp {part['batch_id'].iloc[i]} của nguồn '{source}' có {actual:,} dòng, "
                                      f"các lần trước khoảng {expected:,.0f} dòng"})
    return pd.DataFrame(rows, columns=COLUMNS)


def train(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths, run_id: str) -> ModelRun | None:
    checks = {"indicators": table_exists(con, "staging", "xa_hoi_so"), "daily": table_exists(con, "staging", "ho_so")}
    if not any(checks.values()):
        log.warning("tenant '%s' has neither staging.xa_hoi_so nor staging.ho_so: no anomaly checks", tenant.tenant_id)
        return None
    parts = [LOADS_SQL] + [sql for sql, ok in ((INDICATORS_SQL, checks["indicators"]), (DAILY_SQL, checks["daily"]))
                           if ok]
    fp = data_fingerprint(con, " union all ".join(f"select hash(q) as h from ({sql}) q" for sql in parts))
    version = version_for(NAME, fp, PARAMS, module=__name__)
    if (done := recorded_run(con, NAME, version, OUTPUT_TABLE)) is not None:
        log.info("anomalies %s already computed on this data: kept", version)
        return done
    t, window = PARAMS["threshold"], tuple(PARAMS["tet_window_days"])
    found = [load_anomalies(con.execute(f"{LOADS_SQL} {LOADS_ORDER}").df(), t, PARAMS["load_min_batches"])]
    if checks["indicators"]:
        found.append(indicator_anomalies(con.execute(INDICATORS_SQL).df(), t, PARAMS["indicator_min_scale_pp"]))
    if checks["daily"]:
        found.append(daily_anomalies(con.execute(DAILY_SQL).df(), t, PARAMS["daily_weeks"],
                                     PARAMS["daily_min_scale"], window))
    flags = pd.concat([f for f in found if not f.empty] or [pd.DataFrame(columns=COLUMNS)], ignore_index=True)
    flags = flags.astype({"gia_tri": float, "gia_tri_ky_vong": float, "diem_z": float})
    counts = flags["loai"].value_counts().to_dict()
    metrics = {"n_flags": int(len(flags)), **{f"n_{k}": int(v) for k, v in sorted(counts.items())}}
    card = (f"Anomalies ({version}): {len(flags)} figures flagged ({', '.join(f'{v} {k}' for k, v in counts.items()) or 'none'})"
            f" where a value sits more than {t} robust standard deviations from its peers or its own recent "
            "history. Each flag is a question for the reporting unit, not proof of an error.")
    with transaction(con):
        con.register("flags_df", flags)
        con.execute(f"""create or replace table {OUTPUT_TABLE} as
            select loai, doi_tuong, ky, gia_tri, gia_tri_ky_vong, diem_z, mo_ta, '{version}' as model_version
            from flags_df order by loai, abs(diem_z) desc, doi_tuong, ky""")
        con.unregister("flags_df")
        run = ModelRun(NAME, version, fp, PARAMS, metrics, None, card)
        record(con, run, run_id)
    log.info("anomalies %s: %s", version, metrics)
    return run
