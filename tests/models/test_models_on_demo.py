"""The models end to end on the demo province: trained from the warehouse, registered, served, retrained."""

from __future__ import annotations

import json

import duckdb
import pytest

from models.retrain import retrain
from pipelines.cli import main
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT

pytestmark = pytest.mark.integration
MODEL_SOURCES = {"ho_so", "chi_so_xa_hoi_so", "can_bo"}  # what the four models read


@pytest.fixture
def trained(demo_tenant):
    cfg = demo_tenant.model_copy(update={"sources": [s for s in demo_tenant.sources if s.name in MODEL_SOURCES]})
    report = run(cfg, run_id="m1")
    assert report.ok, report.summary()
    return TenantPaths.for_tenant(cfg.tenant_id), cfg


def _models(path) -> dict[str, tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0]: r[1:] for r in con.execute(
            "SELECT model_name, model_version, data_fingerprint, params, metrics, artefact_path, model_card "
            "FROM meta.models ORDER BY model_name").fetchall()}
    finally:
        con.close()


def test_models_are_registered_served_and_retrained_idempotently(trained, capsys):
    paths, cfg = trained
    models = _models(paths.snapshot)
    assert sorted(models) == sorted(cfg.models)
    for name, (version, fingerprint, params, metrics, artefact, card) in models.items():
        assert version.startswith(f"{name}-") and len(fingerprint) == 64 and json.loads(params) and card
        assert json.loads(metrics)
        if name in ("inflow_forecast", "overdue_risk"):
            assert artefact.endswith(f"{version}.skops")
    con = duckdb.connect(str(paths.snapshot), read_only=True)
    try:
        for table, name in [("marts.du_bao_ho_so_tuan", "inflow_forecast"), ("marts.du_bao_kiem_dinh", "inflow_forecast"),
                            ("marts.ho_so_nguy_co_qua_han", "overdue_risk"), ("marts.can_bo_de_xuat", "staffing"),
                            ("marts.can_bo_nang_suat", "staffing")]:
            assert con.execute(f"SELECT DISTINCT model_version FROM {table}").fetchall() == [(models[name][0],)], table
        # The app's query (apps/data.py top_risks) still finds its columns.
        risks = con.execute("SELECT ma_ho_so, co_quan, ngay_hen_tra, xac_suat_qua_han, model_version "
                            "FROM marts.ho_so_nguy_co_qua_han").df()
        assert len(risks) > 0 and risks["xac_suat_qua_han"].between(0, 1).all()
        # Eight weeks ahead, every forecast inside its own range.
        fc = con.execute("SELECT tuan_truoc, n_du_bao_thap, n_du_bao, n_du_bao_cao FROM marts.du_bao_ho_so_tuan").df()
        assert sorted(fc["tuan_truoc"].unique()) == list(range(1, 9))
        assert ((fc["n_du_bao_thap"] <= fc["n_du_bao"]) & (fc["n_du_bao"] <= fc["n_du_bao_cao"])).all()
        # The staffing plan places exactly today's headcount or fewer, never more.
        used, today = con.execute("SELECT sum(so_can_bo_de_xuat), sum(so_can_bo_hien_tai) "
                                  "FROM marts.can_bo_de_xuat").fetchone()
        assert used <= today
        # The what-if the app calls, on the read-only snapshot: today's headcount gives the published plan;
        # ten more officers can only lower the dossiers expected beyond capacity; too few is a sentence.
        from models.staffing import what_if

        published = con.execute("SELECT co_quan, so_can_bo_de_xuat, n_qua_han_du_kien_de_xuat "
                                "FROM marts.can_bo_de_xuat ORDER BY co_quan").fetchall()
        same = what_if(con, today)
        assert [tuple(r) for r in same[["co_quan", "so_can_bo_de_xuat", "n_qua_han_du_kien_de_xuat"]]
                .itertuples(index=False)] == published
        more = what_if(con, today + 10)
        assert more["so_can_bo_de_xuat"].sum() <= today + 10
        assert more["n_qua_han_du_kien_de_xuat"].sum() <= same["n_qua_han_du_kien_de_xuat"].sum()
        with pytest.raises(ValueError, match="cannot give each of the"):
            what_if(con, 1)
    finally:
        con.close()
    metrics = json.loads(models["inflow_forecast"][3])
    assert {"mae_model", "mae_seasonal_naive", "mape_model", "mape_seasonal_naive", "beats_baseline"} <= set(metrics)
    risk = json.loads(models["overdue_risk"][3])
    assert {"roc_auc", "pr_auc", "brier", "baseline_roc_auc", "beats_baseline"} <= set(risk)

    # Retraining (one pipeline run serves both checks: it is the slow part).
    before = _models(paths.warehouse)
    report = retrain(cfg.tenant_id, run_id="m2")
    assert report.ok, report.summary()
    assert _models(paths.warehouse) == before  # same data and parameters: nothing refitted, nothing new
    # The CLI: one model, then publish; an unknown model is a configuration error (exit 2).
    assert main(["train", "--tenant", DEMO_TENANT, "--model", "staffing", "--run-id", "m3"]) == 0
    assert "models trained: 1" in capsys.readouterr().out
    assert main(["train", "--tenant", DEMO_TENANT, "--model", "crystal_ball"]) == 2
    assert "unknown model 'crystal_ball'" in capsys.readouterr().err
