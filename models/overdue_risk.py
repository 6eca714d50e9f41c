"""Overdue risk: the probability that an open dossier (hồ sơ) will be returned after its due date.

Trained on returned dossiers with a time-based split (train on the earlier 80 % of receipt dates, test on
the later 20 %: no leakage from the future), then applied to every open dossier. The top risks per agency
go to `marts.ho_so_nguy_co_qua_han` for the apps.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from models.registry import ModelRun, data_fingerprint, record, save_artefact, version_for
from pipelines.warehouse import table_exists, transaction

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig
    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.models.overdue_risk")
NAME = "overdue_risk"
CATEGORICAL = ["co_quan", "linh_vuc"]
NUMERIC = ["n_days_allowed", "weekday", "month", "n_week_load"]
TOP_N_PER_AGENCY = 20

FEATURES_SQL = """
    select
        ma_ho_so, co_quan, linh_vuc, ngay_nhan, ngay_hen_tra, is_returned, is_overdue,
        n_days_allowed,
        dayofweek(ngay_nhan)                                    as weekday,
        month(ngay_nhan)                                        as month,
        count(*) over (partition by co_quan, date_trunc('week', ngay_nhan)) as n_week_load
    from staging.ho_so
    where ngay_hen_tra >= ngay_nhan
"""


def build_estimator(params: dict):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=20), CATEGORICAL),
        ("num", StandardScaler(), NUMERIC),
    ])
    return Pipeline([("features", features), ("clf", LogisticRegression(C=params["C"], max_iter=1000))])


def train(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths, run_id: str) -> ModelRun | None:
    import numpy as np
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    if not table_exists(con, "staging", "ho_so"):
        log.warning("no staging.ho_so for tenant '%s': overdue_risk not trained", tenant.tenant_id)
        return None
    frame = con.execute(f"select * from ({FEATURES_SQL}) order by ngay_nhan, ma_ho_so").df()
    done = frame[frame["is_returned"]]
    open_ = frame[~frame["is_returned"]]
    if len(done) < 200 or done["is_overdue"].nunique() < 2:
        log.warning("too few returned dossiers (%d) to train overdue_risk", len(done))
        return None
    cutoff = done["ngay_nhan"].quantile(0.8)
    train_set, test_set = done[done["ngay_nhan"] <= cutoff], done[done["ngay_nhan"] > cutoff]
    params = {"C": 1.0, "split": "time, 80/20 by ngay_nhan", "features": CATEGORICAL + NUMERIC}
    model = build_estimator(params)
    cols = CATEGORICAL + NUMERIC
    model.fit(train_set[cols], train_set["is_overdue"].astype(int))
    proba = model.predict_proba(test_set[cols])[:, 1]
    y = test_set["is_overdue"].astype(int).to_numpy()
    metrics = {
        "n_train": int(len(train_set)), "n_test": int(len(test_set)),
        "roc_auc": float(roc_auc_score(y, proba)) if len(np.unique(y)) > 1 else None,
        "pr_auc": float(average_precision_score(y, proba)) if y.any() else None,
        "brier": float(brier_score_loss(y, proba)),
        "base_rate_test": float(y.mean()),
    }
    # Refit on everything known before predicting the open dossiers.
    model.fit(done[cols], done["is_overdue"].astype(int))
    fp = data_fingerprint(con, FEATURES_SQL)
    version = version_for(NAME, fp, params)
    artefact = save_artefact(model, paths.models, version)
    card = (f"Overdue risk ({version}): logistic regression on agency, field, allowed days, weekday, month and "
            f"weekly agency load. Trained on {len(done):,} returned dossiers; time-split test ROC-AUC "
            f"{metrics['roc_auc']:.3f}, Brier {metrics['brier']:.3f}. Use to rank open dossiers for follow-up, "
            "not to judge officers.")
    scores = open_[["ma_ho_so", "co_quan", "linh_vuc", "ngay_nhan", "ngay_hen_tra"]].copy()
    scores["xac_suat_qua_han"] = model.predict_proba(open_[cols])[:, 1] if len(open_) else []
    scores["model_version"] = version
    with transaction(con):
        con.register("scores_df", scores)
        con.execute(f"""
            create or replace table marts.ho_so_nguy_co_qua_han as
            select *, row_number() over (partition by co_quan order by xac_suat_qua_han desc, ma_ho_so) as hang
            from scores_df
            qualify hang <= {TOP_N_PER_AGENCY}""")
        con.unregister("scores_df")
        run = ModelRun(NAME, version, fp, params, metrics, artefact, card)
        record(con, run, run_id)
    log.info("overdue_risk %s: ROC-AUC %s, Brier %.3f, %d open dossiers scored", version,
             f"{metrics['roc_auc']:.3f}" if metrics["roc_auc"] else "n/a", metrics["brier"], len(open_))
    return run
