"""Overdue risk: the probability that a dossier still open today (hồ sơ đang xử lý) will be returned late.

It scores dossiers where they are, not where they started: a dossier three quarters through its allowed
time and still open is a very different case from one received this morning. Training rows are therefore
the dossiers that were open at past cut-off days (every two weeks), each with what was known on that day:
- how far through its allowed time it is (working days elapsed, left, and their share), the allowed time;
- its agency (cơ quan) and field (lĩnh vực);
- the agency's backlog that day (dossiers open, also in days of its usual arrivals), the load the agency
  was under when the dossier arrived, and the agency's share of late dossiers among those settled in the
  180 days before the cut-off.
The source records no progress steps (its last-update timestamp is overwritten, so its value at a past
cut-off is unknown): nothing about progress is used beyond the dossier still being open.

No leakage: a cut-off is used only when every dossier open at it has a known outcome (its due date is before
the data's "today"); evaluation is by cut-off time: the model is fitted on the oldest cut-offs, calibrated
(isotonic) on the next ones and tested on the newest, each group separated by the longest allowed time so
that no label used for fitting was unknown at the next group's first cut-off. For production it is refitted
on all labelled cut-offs but the newest two, recalibrated on those, and scores the dossiers open today; the
top risks per agency go to `marts.ho_so_nguy_co_qua_han`, the reliability table (predicted vs realised per
probability band on the test cut-offs) to `marts.do_tin_cay_rui_ro`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.registry import (
    ModelRun,
    data_fingerprint,
    duckdb_memory_limit,
    record,
    recorded_run,
    save_artefact,
    training_window,
    version_for,
)
from pipelines.warehouse import table_exists, transaction

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig
    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.models.overdue_risk")
NAME = "overdue_risk"
# The shared contracts a tenant needs for this model (checked by validate-config: pipelines/crossrefs.py).
REQUIRES = ("ho_so",)
OUTPUT_TABLE = "marts.ho_so_nguy_co_qua_han"
RELIABILITY_TABLE = "marts.do_tin_cay_rui_ro"
CATEGORICAL = ["co_quan", "linh_vuc"]
NUMERIC = ["n_days_allowed", "elapsed_wd", "remaining_wd", "elapsed_share", "backlog", "backlog_days",
           "load_at_receipt", "agency_past_overdue_rate"]
TOP_N_PER_AGENCY = 20
PARAMS = {
    "estimator": "HistGradientBoostingClassifier", "max_iter": 60, "learning_rate": 0.2, "max_leaf_nodes": 15,
    "min_samples_leaf": 100, "l2_regularization": 1.0, "max_categories": 250, "seed": 0,
    "cutoff_step_days": 14, "n_cutoffs": 24, "n_test_cutoffs": 3, "n_calibration_cutoffs": 2,
    "max_rows": 120_000, "n_reliability_bins": 10, "features": CATEGORICAL + NUMERIC, "duckdb_memory_limit": "1GB",
}

# Per agency and day: arrivals, and resolutions (on return, or the day after the due date for a dossier still
# open then — when everybody knows it is late) with how many of them were late.
EVENTS_SQL = """
create or replace temp table risk_base as
select ma_ho_so, co_quan, linh_vuc, ngay_nhan, ngay_hen_tra, ngay_tra, n_days_allowed, data_as_of,
       (ngay_tra is not null and ngay_tra > ngay_hen_tra)
         or (ngay_tra is null and data_as_of > ngay_hen_tra)            as is_late,
       case when ngay_tra is not null and ngay_tra <= ngay_hen_tra then ngay_tra
            else ngay_hen_tra + 1 end                                   as resolved_on
from staging.ho_so
where ngay_hen_tra >= ngay_nhan;
create or replace temp table risk_events as
select co_quan, d, sum(n_in) as n_in, sum(n_resolved) as n_resolved, sum(n_late) as n_late
from (
    select co_quan, ngay_nhan as d, 1 as n_in, 0 as n_resolved, 0 as n_late from risk_base
    union all
    select co_quan, resolved_on, 0, 1, is_late::int from risk_base
)
group by all;
"""
# Dossiers open at each cut-off `c` (received by then, not returned by then, not yet due) with what the
# agency looked like that day. `{sample}` keeps a deterministic share of rows (hash of id and cut-off).
FEATURES_SQL = """
with
cut as (select unnest(?::date[]) as c),
open_at as (
    select cut.c, b.* from cut join risk_base b
      on b.ngay_nhan <= cut.c and (b.ngay_tra is null or b.ngay_tra > cut.c)
),
backlog as (select c, co_quan, count(*) as n_open from open_at group by all),
usual as (
    select cut.c, e.co_quan, sum(e.n_in) / 91.0 as per_day
    from cut join risk_events e on e.d > cut.c - 91 and e.d <= cut.c group by all
),
past as (
    select cut.c, e.co_quan, sum(e.n_late) / nullif(sum(e.n_resolved), 0) as rate
    from cut join risk_events e on e.d > cut.c - 180 and e.d <= cut.c group by all
),
at_receipt as (
    select e1.co_quan, e1.d, sum(e2.n_in) as n_7d
    from risk_events e1 join risk_events e2 on e2.co_quan = e1.co_quan and e2.d > e1.d - 7 and e2.d <= e1.d
    where e1.n_in > 0 group by all
)
select o.c as cutoff, o.ma_ho_so, o.co_quan, o.linh_vuc, o.ngay_nhan, o.ngay_hen_tra, o.data_as_of, o.is_late,
       o.n_days_allowed,
       ln(1 + b.n_open)                                                   as backlog,
       ln(1 + b.n_open / nullif(u.per_day, 0))                            as backlog_days,
       ln(1 + r.n_7d / nullif(u.per_day * 7, 0))                          as load_at_receipt,
       p.rate                                                             as agency_past_overdue_rate
from open_at o
join backlog b on b.c = o.c and b.co_quan = o.co_quan
left join usual u on u.c = o.c and u.co_quan = o.co_quan
left join past p on p.c = o.c and p.co_quan = o.co_quan
left join at_receipt r on r.co_quan = o.co_quan and r.d = o.ngay_nhan
where o.ngay_hen_tra >= o.c {sample}
order by o.c, o.ma_ho_so
"""


def add_progress(frame: pd.DataFrame) -> pd.DataFrame:
    """Working days elapsed since receipt and left to the due date at the cut-off, and the elapsed share of the
    working days allowed (receipt to due date)."""
    from pipelines.reference.calendar import WEEKMASK, holiday_days

    if frame.empty:
        return frame.assign(elapsed_wd=[], remaining_wd=[], elapsed_share=[])
    received = frame["ngay_nhan"].to_numpy(dtype="datetime64[D]")
    cutoff = frame["cutoff"].to_numpy(dtype="datetime64[D]")
    due = frame["ngay_hen_tra"].to_numpy(dtype="datetime64[D]")
    years = received.astype("datetime64[Y]").astype(int) + 1970
    hol = holiday_days(int(years.min()) - 1, int(years.max()) + 2)
    elapsed = np.busday_count(received, cutoff, weekmask=WEEKMASK, holidays=hol).astype(float)
    remaining = np.busday_count(cutoff, due, weekmask=WEEKMASK, holidays=hol).astype(float)
    allowed = np.maximum(np.busday_count(received, due, weekmask=WEEKMASK, holidays=hol), 1).astype(float)
    return frame.assign(elapsed_wd=elapsed, remaining_wd=remaining, elapsed_share=elapsed / allowed)


def cutoffs(data_as_of: np.datetime64, longest_days: int, params: dict = PARAMS) -> list[np.datetime64]:
    """Past cut-offs, oldest first, late enough in the past that every dossier open at them has an outcome."""
    newest = np.datetime64(data_as_of, "D") - longest_days - 1
    return [newest - params["cutoff_step_days"] * k for k in range(params["n_cutoffs"])][::-1]


def features_at(con: duckdb.DuckDBPyConnection, cuts: list, max_rows: int | None = None) -> pd.DataFrame:
    """Feature rows of the dossiers open at each cut-off (needs the temp tables EVENTS_SQL creates)."""
    cut_list = [str(c) for c in cuts]
    sample = ""
    if max_rows is not None:
        total = con.execute(f"select count(*) from ({FEATURES_SQL.format(sample='')})", [cut_list]).fetchone()[0]
        if total > max_rows:
            sample = f"and hash(o.ma_ho_so, o.c) % {total} < {max_rows}"
    frame = con.execute(FEATURES_SQL.format(sample=sample), [cut_list]).df()
    return add_progress(frame)


def build_estimator(params: dict):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer([
        ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan,
                               max_categories=params["max_categories"]), CATEGORICAL),
        ("num", "passthrough", NUMERIC),
    ])
    clf = HistGradientBoostingClassifier(
        max_iter=params["max_iter"], learning_rate=params["learning_rate"], max_leaf_nodes=params["max_leaf_nodes"],
        min_samples_leaf=params["min_samples_leaf"], l2_regularization=params["l2_regularization"],
        categorical_features=[0, 1], early_stopping=False, random_state=params["seed"])
    return Pipeline([("features", encode), ("clf", clf)])


def _fit(frame: pd.DataFrame, params: dict):
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: on a shared 2-core machine (or an Airflow worker) threads spinning cost more than
    # they bring at a few hundred thousand rows.
    with threadpool_limits(limits=1, user_api="openmp"):
        return build_estimator(params).fit(frame[CATEGORICAL + NUMERIC], frame["is_late"].to_numpy(int))


def calibrate(model, frame: pd.DataFrame, y: np.ndarray):
    """Isotonic calibration of an already fitted model on later cut-offs (sigmoid when they are few)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    method = "isotonic" if len(y) >= 1000 else "sigmoid"
    calibrated = CalibratedClassifierCV(FrozenEstimator(model), method=method)
    calibrated.fit(frame[CATEGORICAL + NUMERIC], y)
    return calibrated, method


def split_cutoffs(cuts: list, gap_days: int, params: dict = PARAMS) -> tuple[list, list, list]:
    """Train / calibration / test cut-offs, oldest first, each group ending `gap_days` before the next starts
    (a dossier open at a cut-off is settled within the longest allowed time, so its label was known)."""
    gap = np.timedelta64(gap_days, "D")
    cuts = [np.datetime64(c, "D") for c in cuts]
    test = cuts[-params["n_test_cutoffs"]:]
    cal = [c for c in cuts if c <= test[0] - gap][-params["n_calibration_cutoffs"]:]
    train = [c for c in cuts if cal and c <= cal[0] - gap]
    return train, cal, test


def rule_baseline(train_set: pd.DataFrame, frame: pd.DataFrame, prior_weight: float = 20.0) -> np.ndarray:
    """The obvious rule: each agency × field's late share among open dossiers in the training cut-offs."""
    prior = train_set["is_late"].mean()
    rate = train_set.groupby(CATEGORICAL)["is_late"].agg(["sum", "count"])
    rate["p"] = (rate["sum"] + prior_weight * prior) / (rate["count"] + prior_weight)
    return frame[CATEGORICAL].join(rate["p"], on=CATEGORICAL)["p"].fillna(prior).to_numpy()


def reliability(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Predicted vs realised late share per probability band (0–10 %, 10–20 %, …)."""
    band = np.minimum((proba * n_bins).astype(int), n_bins - 1)
    frame = pd.DataFrame({"band": band, "p": proba, "y": y})
    out = frame.groupby("band").agg(n_ho_so=("y", "size"), xac_suat_du_bao=("p", "mean"), ty_le_thuc_te=("y", "mean"))
    out = out.reset_index()
    out["tu"] = out["band"] / n_bins
    out["den"] = (out["band"] + 1) / n_bins
    return out[["tu", "den", "n_ho_so", "xac_suat_du_bao", "ty_le_thuc_te"]]


def scores(y: np.ndarray, proba: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    both = len(np.unique(y)) > 1
    return {
        "roc_auc": float(roc_auc_score(y, proba)) if both else None,
        "pr_auc": float(average_precision_score(y, proba)) if y.any() else None,
        "brier": float(brier_score_loss(y, proba)),
        "mean_predicted": float(np.mean(proba)), "realised": float(np.mean(y)),
        "calibration_gap": float(abs(np.mean(proba) - np.mean(y))),
    }


def fit_and_evaluate(rows: pd.DataFrame, gap_days: int, params: dict = PARAMS, production: bool = True
                     ) -> tuple[object, dict, pd.DataFrame] | None:
    """Fit on old cut-offs, calibrate on the next, test on the newest; then refit for production.

    Returns (production model — the evaluated one when `production` is False —, metrics, reliability table of
    the test cut-offs), or None when too few rows.
    """
    rows = rows.assign(cutoff=rows["cutoff"].to_numpy(dtype="datetime64[D]"))
    cuts = sorted(rows["cutoff"].unique())
    train_c, cal_c, test_c = split_cutoffs(cuts, gap_days, params)
    train_set = rows[rows["cutoff"].isin(train_c)]
    cal_set, test_set = rows[rows["cutoff"].isin(cal_c)], rows[rows["cutoff"].isin(test_c)]
    # A small office (a few thousand dossiers) has ~20 open ones per cut-off: still enough to fit and check.
    if len(train_set) < 50 or min(len(cal_set), len(test_set)) < 20 or train_set["is_late"].nunique() < 2 \
            or cal_set["is_late"].nunique() < 2:
        return None
    y_test = test_set["is_late"].to_numpy(int)
    model, method = calibrate(_fit(train_set, params), cal_set, cal_set["is_late"].to_numpy(int))
    proba = model.predict_proba(test_set[CATEGORICAL + NUMERIC])[:, 1]
    rule = rule_baseline(train_set, test_set)
    share = test_set["elapsed_share"].to_numpy()
    metrics = {
        "n_train": len(train_set), "n_calibration": len(cal_set), "n_test": len(test_set),
        "train_cutoffs": [str(pd.Timestamp(c).date()) for c in (train_c[0], train_c[-1])],
        "calibration_cutoffs": [str(pd.Timestamp(c).date()) for c in cal_c],
        "test_cutoffs": [str(pd.Timestamp(c).date()) for c in test_c], "calibration": method,
        **scores(y_test, proba),
        **{f"baseline_{k}": v for k, v in scores(y_test, rule).items()},
        "elapsed_share_roc_auc": scores(y_test, np.clip(share, 0, 5) / 5)["roc_auc"],
    }
    metrics["beats_baseline"] = bool((metrics["roc_auc"] or 0) > (metrics["baseline_roc_auc"] or 0)
                                     and metrics["brier"] <= metrics["baseline_brier"])
    table = reliability(y_test, proba, params["n_reliability_bins"])
    if not production:
        return model, metrics, table
    # Production: every labelled cut-off but the newest two fits, those two recalibrate.
    fit_c, recal_c = cuts[: -params["n_calibration_cutoffs"]], cuts[-params["n_calibration_cutoffs"]:]
    fit_set, recal_set = rows[rows["cutoff"].isin(fit_c)], rows[rows["cutoff"].isin(recal_c)]
    final, _ = calibrate(_fit(fit_set, params), recal_set, recal_set["is_late"].to_numpy(int))
    return final, metrics, table


def train(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths, run_id: str) -> ModelRun | None:
    if not table_exists(con, "staging", "ho_so"):
        log.warning("no staging.ho_so for tenant '%s': overdue_risk not trained", tenant.tenant_id)
        return None
    fp = data_fingerprint(con, "select * from staging.ho_so")
    version = version_for(NAME, fp, PARAMS, module=__name__, sql=EVENTS_SQL + FEATURES_SQL)
    if (done := recorded_run(con, NAME, version, OUTPUT_TABLE)) is not None:
        log.info("overdue_risk %s already trained on this data: kept", version)
        return done
    as_of, longest = con.execute("select max(data_as_of), max(ngay_hen_tra - ngay_nhan) from staging.ho_so "
                                 "where ngay_hen_tra >= ngay_nhan").fetchone()
    if as_of is None:
        log.warning("staging.ho_so is empty for tenant '%s': overdue_risk not trained", tenant.tenant_id)
        return None
    as_of = np.datetime64(as_of, "D")
    cuts = cutoffs(as_of, int(longest), PARAMS)
    with duckdb_memory_limit(con, PARAMS["duckdb_memory_limit"]):
        con.execute(EVENTS_SQL)
        try:
            first = con.execute("select min(ngay_nhan) from risk_base").fetchone()[0]
            cuts = [c for c in cuts if c > np.datetime64(first, "D") + 28]
            rows = features_at(con, cuts, PARAMS["max_rows"]) if cuts else pd.DataFrame()
            open_now = features_at(con, [as_of])
        finally:
            con.execute("drop table if exists risk_base")
            con.execute("drop table if exists risk_events")
    fitted = fit_and_evaluate(rows, int(longest) + 1, PARAMS) if len(rows) >= 200 else None
    if fitted is None:
        log.warning("too few dossiers open at past cut-offs with a known outcome (%d rows over %d cut-offs) to "
                    "train overdue_risk", len(rows), len(cuts))
        return None
    model, metrics, table = fitted
    metrics.update({"n_rows": int(len(rows)), "n_cutoffs": len(cuts), "n_open_scored": int(len(open_now)),
                    "training_window": training_window(cuts[0], cuts[-1])})
    artefact = save_artefact(model, paths.models, version)
    _save_scorer(model, artefact)
    card = _card(version, metrics)
    scored = _scored(open_now, model, version)
    table = table.assign(model_version=version)
    with transaction(con):
        _write_scores(con, scored)
        con.register("reliability_df", table)
        con.execute(f"create or replace table {RELIABILITY_TABLE} as select * from reliability_df order by tu")
        con.unregister("reliability_df")
        run = ModelRun(NAME, version, fp, PARAMS, metrics, artefact, card)
        record(con, run, run_id)
    log.info("overdue_risk %s: ROC-AUC %s (rule %s), mean predicted %.3f vs realised %.3f, %d open dossiers scored",
             version, _fmt(metrics["roc_auc"]), _fmt(metrics["baseline_roc_auc"]), metrics["mean_predicted"],
             metrics["realised"], len(open_now))
    return run


def _scorer_path(artefact: Path) -> Path:
    return artefact.with_name(artefact.name.removesuffix(".skops") + ".scorer.npz")


def _save_scorer(model, artefact: Path) -> None:
    """The fitted model compiled to arrays beside its artefact, so that a run which only scores imports no
    scikit-learn (models/tree_scorer.py); without it, scoring loads the skops artefact."""
    from models.tree_scorer import NotCompilable, compile_model, save_scorer

    try:
        save_scorer(compile_model(model, CATEGORICAL, NUMERIC), _scorer_path(artefact))
    except NotCompilable as exc:
        log.info("overdue_risk: no compiled scorer (%s); kept versions are scored through skops", exc)


def _scored(open_now: pd.DataFrame, model, version: str) -> pd.DataFrame:
    """The open dossiers with their probability of being returned late, by `model` (version `version`): a
    fitted estimator or a compiled `TreeScorer`."""
    scored = open_now[["ma_ho_so", "co_quan", "linh_vuc", "ngay_nhan", "ngay_hen_tra"]].copy()
    if not len(open_now):
        scored["xac_suat_qua_han"] = []
    elif hasattr(model, "predict_proba1"):
        scored["xac_suat_qua_han"] = model.predict_proba1(open_now)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="openmp"):  # as the fit: OpenMP threads only contend here
            scored["xac_suat_qua_han"] = model.predict_proba(open_now[CATEGORICAL + NUMERIC])[:, 1]
    scored["model_version"] = version
    return scored


def _write_scores(con: duckdb.DuckDBPyConnection, scored: pd.DataFrame) -> None:
    """The top risks per agency into OUTPUT_TABLE (in the caller's transaction)."""
    con.register("scores_df", scored)
    con.execute(f"""
        create or replace table {OUTPUT_TABLE} as
        select ma_ho_so, co_quan, linh_vuc, ngay_nhan::date as ngay_nhan, ngay_hen_tra::date as ngay_hen_tra,
               xac_suat_qua_han, model_version,
               row_number() over (partition by co_quan order by xac_suat_qua_han desc, ma_ho_so) as hang
        from scores_df
        qualify hang <= {TOP_N_PER_AGENCY}
        order by co_quan, hang""")
    con.unregister("scores_df")


def score(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths, run_id: str,
          version: str) -> ModelRun | None:
    """Score the dossiers open now with the registered `version` (no refit): the retraining policy's path for a
    run whose new data does not call for a new fit (models/retrain.py). The dossiers that arrived since the fit
    are scored in the same run; the reliability table and the model card stay those of the fit.

    Returns the kept run, or None when it cannot score (no such version, artefact refused, no dossiers): the
    caller then refits.
    """
    import json

    from models.registry import ArtefactError, load_artefact
    from models.tree_scorer import load_scorer

    if not table_exists(con, "staging", "ho_so"):
        return None
    row = con.execute("select data_fingerprint, params, metrics, artefact_path, model_card from meta.models "
                      "where model_name = ? and model_version = ?", [NAME, version]).fetchone()
    if row is None or not row[3]:
        return None
    fp, params, metrics, artefact, card = row
    try:  # the compiled form first (numpy only), else the skops artefact (imports scikit-learn)
        model = load_scorer(_scorer_path(Path(artefact)))
    except ArtefactError as exc:
        log.info("overdue_risk %s: %s", version, exc)
        try:
            model = load_artefact(Path(artefact))
        except (ArtefactError, OSError) as exc:
            log.warning("overdue_risk %s cannot score: %s", version, exc)
            return None
    as_of = con.execute("select max(data_as_of) from staging.ho_so where ngay_hen_tra >= ngay_nhan").fetchone()[0]
    if as_of is None:
        return None
    with duckdb_memory_limit(con, PARAMS["duckdb_memory_limit"]):
        con.execute(EVENTS_SQL)
        try:
            open_now = features_at(con, [np.datetime64(as_of, "D")])
        finally:
            con.execute("drop table if exists risk_base")
            con.execute("drop table if exists risk_events")
    with transaction(con):
        _write_scores(con, _scored(open_now, model, version))
    log.info("overdue_risk %s kept: %d open dossiers (data as of %s) scored without refitting", version,
             len(open_now), as_of)
    return ModelRun(NAME, version, fp, json.loads(params), {**json.loads(metrics), "n_open_scored": len(open_now)},
                    Path(artefact), card)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _card(version: str, m: dict) -> str:
    verdict = "beats" if m["beats_baseline"] else "does NOT beat"
    return (f"Overdue risk ({version}): probability that a dossier open today will be returned late, from how far "
            "through its allowed time it is, its agency and field, and the agency's backlog, load and recent late "
            f"share that day. Trained on dossiers open at {m['n_cutoffs']} past cut-offs ({m['training_window']}); "
            f"tested on the {m['n_test']:,} open at the newest ({', '.join(m['test_cutoffs'])}), fitted and "
            f"calibrated ({m['calibration']}) on older ones only: ROC-AUC {_fmt(m['roc_auc'])}, mean predicted "
            f"{m['mean_predicted']:.1%} vs {m['realised']:.1%} realised, Brier {m['brier']:.3f}. It {verdict} the "
            f"rule 'late share of the agency and field' (ROC-AUC {_fmt(m['baseline_roc_auc'])}). Limitations: the "
            "source records no progress steps, so a dossier stalled at an early step looks like one moving; a "
            "new agency borrows the others' pattern. Use it to choose which dossiers to chase first, never to "
            "judge officers.")
