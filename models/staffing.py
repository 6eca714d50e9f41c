"""Staffing recommendation: how many one-stop-shop officers each agency needs next week.

Capacity per officer is read from history: in a busy week (the 90th percentile of the last year's weeks)
how many dossiers an agency returned, divided by its officers. With next week's forecast, a small
integer programme (scipy `milp`) places a fixed total headcount so that the fewest dossiers are expected
to exceed what the officers can handle (those are the dossiers expected to go late), averaging over the
forecast's low, middle and high scenarios; among equally good plans the one that moves the fewest wins.
`recommend_staffing` is pure and fast (milliseconds for a province), so the app can call it for what-ifs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.registry import ModelRun, data_fingerprint, record, recorded_run, version_for
from pipelines.warehouse import table_exists, transaction

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig
    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.models.staffing")
NAME = "staffing"
# The shared contracts a tenant needs, and the models listed before it whose output it reads
# (checked by validate-config: pipelines/crossrefs.py).
REQUIRES = ("ho_so", "can_bo")
REQUIRES_MODELS = ("inflow_forecast",)
OUTPUT_TABLE = "marts.can_bo_de_xuat"
CAPACITY_TABLE = "marts.can_bo_nang_suat"
PARAMS = {"capacity_quantile": 0.9, "history_weeks": 52, "min_officers_per_agency": 1, "move_weight": 0.05}
SCENARIO_WEIGHTS = {"n_du_bao_thap": 0.2, "n_du_bao": 0.6, "n_du_bao_cao": 0.2}

RETURNS_SQL = """
    select co_quan, date_trunc('week', ngay_tra)::date as tuan, count(*) as n_da_tra
    from staging.ho_so
    where ngay_tra is not null
      and ngay_tra >= (select max(data_as_of) from staging.ho_so) - interval {weeks} week
    group by all
"""
NEXT_WEEK_SQL = """
    select co_quan, sum(n_du_bao_thap) as n_du_bao_thap, sum(n_du_bao) as n_du_bao,
           sum(n_du_bao_cao) as n_du_bao_cao
    from marts.du_bao_ho_so_tuan
    where tuan_truoc = 1
    group by all
"""


def estimate_capacity(weekly_returns: pd.DataFrame, officers: pd.DataFrame, quantile: float = 0.9) -> pd.DataFrame:
    """Dossiers one officer returns in a busy week, per agency (co_quan, so_can_bo, nang_suat_tuan).

    `weekly_returns`: co_quan, tuan, n_da_tra; `officers`: co_quan, so_can_bo. An agency without returns
    or without officers gets the median of the others, so a new counter is not assumed to be idle or infinite.
    """
    busy = weekly_returns.groupby("co_quan")["n_da_tra"].quantile(quantile).rename("n_tuan_ban_ron")
    frame = officers[["co_quan", "so_can_bo"]].merge(busy, on="co_quan", how="outer")
    frame["so_can_bo"] = frame["so_can_bo"].fillna(0).astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_officer = frame["n_tuan_ban_ron"] / frame["so_can_bo"].where(frame["so_can_bo"] > 0)
    known = per_officer[per_officer > 0]
    fallback = float(known.median()) if len(known) else 1.0
    frame["nang_suat_tuan"] = per_officer.where(per_officer > 0, fallback)
    return frame[["co_quan", "so_can_bo", "nang_suat_tuan"]].sort_values("co_quan").reset_index(drop=True)


def recommend_staffing(forecast_df: pd.DataFrame, capacity_df: pd.DataFrame, total_headcount: int,
                       min_per_agency: int = 1, move_weight: float = 0.05) -> pd.DataFrame:
    """Officers per agency for next week that minimise the dossiers expected to exceed capacity.

    Args:
        forecast_df: co_quan, n_du_bao (expected dossiers next week; rows per field are summed), and
            optionally n_du_bao_thap / n_du_bao_cao (the forecast range): with them, "expected" averages
            the low, middle and high scenarios (weights 0.2, 0.6, 0.2), so a wide range earns a buffer.
        capacity_df: co_quan, nang_suat_tuan (dossiers per officer per week), optionally so_can_bo (today).
        total_headcount: officers available across all agencies.
        min_per_agency: every counter keeps at least this many officers.
        move_weight: dossiers a move must save to be worth making (ties go to the plan closest to today's).

    Returns one row per agency: co_quan, so_can_bo_hien_tai, so_can_bo_de_xuat, thay_doi, n_du_bao,
    nang_suat_tuan, n_qua_han_du_kien_hien_tai, n_qua_han_du_kien_de_xuat (expected dossiers beyond capacity).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    scenario_cols = [c for c in ("n_du_bao_thap", "n_du_bao", "n_du_bao_cao") if c in forecast_df]
    demand = forecast_df.groupby("co_quan", as_index=False)[scenario_cols].sum()
    cap = capacity_df.copy()
    if "so_can_bo" not in cap:
        cap["so_can_bo"] = 0
    frame = cap[["co_quan", "so_can_bo", "nang_suat_tuan"]].merge(demand, on="co_quan", how="outer")
    fallback = float(cap["nang_suat_tuan"].median()) if len(cap) else 1.0
    frame = frame.fillna({"so_can_bo": 0, "nang_suat_tuan": fallback, **dict.fromkeys(scenario_cols, 0.0)})
    frame = frame.sort_values("co_quan").reset_index(drop=True)
    n = len(frame)
    if total_headcount < n * min_per_agency:
        raise ValueError(f"total_headcount={total_headcount} cannot give each of the {n} agencies its minimum "
                         f"of {min_per_agency} officer(s): raise the headcount to at least {n * min_per_agency}")
    weights = SCENARIO_WEIGHTS if len(scenario_cols) == 3 else {"n_du_bao": 1.0}
    scenarios = [(frame[col].to_numpy(float), w) for col, w in weights.items()]
    c = frame["nang_suat_tuan"].to_numpy(float)
    current = frame["so_can_bo"].to_numpy(float)
    # Variables: x (officers, integer), one block s_k per scenario (dossiers over capacity in it),
    # m (officers moved, |x − current|). Minimise Σ_k w_k·Σ s_k + move_weight·Σ m.
    k = len(scenarios)
    eye, zero = np.eye(n), np.zeros((n, n))

    def row(x_block, s_index=None, m_block=None):
        blocks = [x_block] + [eye if i == s_index else zero for i in range(k)] + [m_block if m_block is not None else zero]
        return np.hstack(blocks)

    constraints = [LinearConstraint(row(np.diag(c), i), lb=d) for i, (d, _) in enumerate(scenarios)]  # c·x + s ≥ d
    constraints += [
        LinearConstraint(row(eye, m_block=eye), lb=current),        # m ≥ current − x
        LinearConstraint(row(-eye, m_block=eye), lb=-current),      # m ≥ x − current
        LinearConstraint(np.concatenate([np.ones(n), np.zeros((k + 1) * n)])[None, :], ub=total_headcount),
    ]
    cost = np.concatenate([np.zeros(n), *[np.full(n, w) for _, w in scenarios], np.full(n, move_weight)])
    lower = np.concatenate([np.full(n, float(min_per_agency)), np.zeros((k + 1) * n)])
    integrality = np.concatenate([np.ones(n), np.zeros((k + 1) * n)])
    result = milp(cost, constraints=constraints, integrality=integrality, bounds=Bounds(lower, np.inf))
    if not result.success:
        raise RuntimeError(f"the staffing programme found no plan: {result.message}")
    x = np.round(result.x[:n]).astype(int)

    def expected_over(officers: np.ndarray) -> np.ndarray:
        return sum(w * np.maximum(d - c * officers, 0.0) for d, w in scenarios)

    return pd.DataFrame({
        "co_quan": frame["co_quan"],
        "so_can_bo_hien_tai": current.astype(int),
        "so_can_bo_de_xuat": x,
        "thay_doi": x - current.astype(int),
        "n_du_bao": frame["n_du_bao"].to_numpy(float),
        "nang_suat_tuan": c,
        "n_qua_han_du_kien_hien_tai": expected_over(current),
        "n_qua_han_du_kien_de_xuat": expected_over(x),
    })


def what_if(snapshot: duckdb.DuckDBPyConnection, total_headcount: int, min_per_agency: int | None = None
            ) -> pd.DataFrame:
    """Re-plan next week for another headcount, from what the serving snapshot holds (for the apps).

    Reads the published capacity (`marts.can_bo_nang_suat`) and next week's forecast
    (`marts.du_bao_ho_so_tuan`) through the caller's read-only connection and calls `recommend_staffing`;
    nothing is written. Raises ValueError with a sentence when the snapshot has no staffing data or the
    headcount cannot give every agency its minimum.
    """
    for table in (CAPACITY_TABLE, "marts.du_bao_ho_so_tuan"):
        if not table_exists(snapshot, *table.split(".")):
            raise ValueError(f"the snapshot has no {table}: list inflow_forecast and staffing in the tenant's "
                             "models and run the pipeline")
    capacity = snapshot.execute(f"select co_quan, so_can_bo, nang_suat_tuan from {CAPACITY_TABLE}").df()
    forecast = snapshot.execute(NEXT_WEEK_SQL).df()
    minimum = PARAMS["min_officers_per_agency"] if min_per_agency is None else min_per_agency
    return recommend_staffing(forecast, capacity, int(total_headcount), minimum, PARAMS["move_weight"])


def train(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths, run_id: str) -> ModelRun | None:
    missing = [t for t in ("staging.ho_so", "staging.can_bo", "marts.du_bao_ho_so_tuan")
               if not table_exists(con, *t.split("."))]
    if missing:
        log.warning("tenant '%s' has no %s: staffing not computed (it needs the officer roster and the "
                    "inflow_forecast model listed before it)", tenant.tenant_id, ", ".join(missing))
        return None
    returns_sql = RETURNS_SQL.format(weeks=PARAMS["history_weeks"])
    roster_sql = "select co_quan, so_can_bo from staging.can_bo"
    fp = data_fingerprint(con, f"select 'r' as k, hash(r) as h from ({returns_sql}) r union all "
                               f"select 'c', hash(c) from ({roster_sql}) c union all "
                               f"select 'f', hash(f) from ({NEXT_WEEK_SQL}) f")
    version = version_for(NAME, fp, PARAMS, module=__name__, sql=RETURNS_SQL + NEXT_WEEK_SQL)
    if (done := recorded_run(con, NAME, version, OUTPUT_TABLE)) is not None:
        log.info("staffing %s already computed on this data: kept", version)
        return done
    capacity = estimate_capacity(con.execute(returns_sql).df(), con.execute(roster_sql).df(),
                                 PARAMS["capacity_quantile"])
    forecast = con.execute(NEXT_WEEK_SQL).df()
    headcount = int(capacity["so_can_bo"].sum())
    min_each = PARAMS["min_officers_per_agency"]
    if headcount < len(capacity) * min_each or forecast.empty:
        log.warning("staffing for '%s' skipped: %d officers for %d agencies, %d forecast rows",
                    tenant.tenant_id, headcount, len(capacity), len(forecast))
        return None
    plan = recommend_staffing(forecast, capacity, headcount, min_each, PARAMS["move_weight"])
    week = con.execute("select min(tuan_bat_dau) from marts.du_bao_ho_so_tuan where tuan_truoc = 1").fetchone()[0]
    metrics = {
        "total_headcount": headcount, "n_agencies": int(len(plan)),
        "n_officers_moved": int(plan["thay_doi"].clip(lower=0).sum()),
        "expected_over_capacity_current": float(plan["n_qua_han_du_kien_hien_tai"].sum()),
        "expected_over_capacity_recommended": float(plan["n_qua_han_du_kien_de_xuat"].sum()),
        "forecast_week": str(week),
    }
    card = (f"Staffing ({version}) for the week of {week}: {headcount} officers over {len(plan)} agencies. "
            f"Moving {metrics['n_officers_moved']} officers cuts the dossiers expected beyond capacity from "
            f"{metrics['expected_over_capacity_current']:.0f} to {metrics['expected_over_capacity_recommended']:.0f}. "
            "Capacity is what an officer returned in a busy week, so it is a floor on what staff can do, not a "
            "quota; check leave, skills and travel before moving anyone.")
    with transaction(con):
        for table, frame, extra in ((OUTPUT_TABLE, plan, f", '{week}'::date as tuan_bat_dau"), (CAPACITY_TABLE, capacity, "")):
            con.register("frame_df", frame)
            con.execute(f"create or replace table {table} as select *{extra}, '{version}' as model_version "
                        "from frame_df order by co_quan")
            con.unregister("frame_df")
        run = ModelRun(NAME, version, fp, PARAMS, metrics, None, card)
        record(con, run, run_id)
    log.info("staffing %s: %d officers moved, over-capacity %.0f → %.0f", version, metrics["n_officers_moved"],
             metrics["expected_over_capacity_current"], metrics["expected_over_capacity_recommended"])
    return run
