"""Data access for the apps: read-only queries on the tenant's serving snapshot, cached per snapshot version.

The apps never open the pipeline's warehouse: each query opens the snapshot read-only and closes it, so a
new snapshot renamed into place is picked up by the next query and never blocks the pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from pipelines.config import load_tenant
from pipelines.settings import TenantPaths


def tenant_id() -> str:
    return os.environ.get("TONGHOP_TENANT", "ninh-binh")


def snapshot_path() -> Path:
    cfg = load_tenant(tenant_id())
    return TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).snapshot


def snapshot_version() -> str | None:
    """The serving snapshot's identity, the key of every cached query: its path (one per tenant) and mtime, so
    a new snapshot or another tenant never gets a cached answer of the old one."""
    path = snapshot_path()
    return f"{path}@{path.stat().st_mtime_ns}" if path.exists() else None


def query(sql: str, params: list | None = None):
    import duckdb

    con = duckdb.connect(str(snapshot_path()), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


@st.cache_data(show_spinner=False)
def tables(version: str | None) -> set[str]:
    """Every `schema.table` the snapshot holds: pages ask before they read, and explain what is missing."""
    found = query("SELECT table_schema || '.' || table_name AS t FROM information_schema.tables")
    return set(found["t"])


@st.cache_data(show_spinner=False)
def tenant_name(version: str | None, lang: str) -> str:
    cfg = load_tenant(tenant_id())
    return cfg.display_name if lang == "vi" or not cfg.display_name_en else cfg.display_name_en


@st.cache_data(show_spinner=False)
def kpis(version: str | None):
    return query("SELECT * FROM marts.kpi_tong_quan").iloc[0].to_dict()


@st.cache_data(show_spinner=False)
def snapshot_info(version: str | None):
    return query("SELECT run_id, published_at FROM meta.snapshot").iloc[0].to_dict()


@st.cache_data(show_spinner=False)
def weekly(version: str | None):
    return query("""
        SELECT tuan_bat_dau, sum(n_tiep_nhan) AS received, sum(n_da_tra) AS returned, sum(n_qua_han) AS overdue
        FROM marts.ho_so_tuan GROUP BY 1 ORDER BY 1""")


@st.cache_data(show_spinner=False)
def top_risks(version: str | None, limit: int = 15):
    return query("""
        SELECT ma_ho_so, co_quan, ngay_hen_tra, xac_suat_qua_han, model_version
        FROM marts.ho_so_nguy_co_qua_han ORDER BY xac_suat_qua_han DESC, ma_ho_so LIMIT ?""", [limit])


@st.cache_data(show_spinner=False)
def quality_trend(version: str | None):
    """Quality score per run, source and dimension (marts.chat_luong_du_lieu), oldest first."""
    return query("""
        SELECT run_id, source, dimension, score, n_checked, n_failed, scored_at
        FROM marts.chat_luong_du_lieu ORDER BY scored_at, source, dimension""")


@st.cache_data(show_spinner=False)
def latest_validations(version: str | None):
    """Each source's latest validated batch: one row per expectation, with rows failed and quarantined."""
    return query("""
        SELECT source, description, severity, is_success, n_unexpected, n_quarantined
        FROM meta.validations
        QUALIFY validated_at = max(validated_at) OVER (PARTITION BY source)
        ORDER BY source, is_success, description""")


@st.cache_data(show_spinner=False)
def promotion_counts(version: str | None):
    """Rows read, promoted and quarantined per source in the latest run that loaded it."""
    return query("""
        SELECT source, n_rows_read, n_rows_promoted, n_rows_quarantined
        FROM meta.loads WHERE status = 'passed'
        QUALIFY loaded_at = max(loaded_at) OVER (PARTITION BY source) ORDER BY source""")


@st.cache_data(show_spinner=False)
def anomalies(version: str | None, limit: int = 50):
    """The anomaly model's flags (marts.bat_thuong), strongest first; empty when the tenant does not run it."""
    if "marts.bat_thuong" not in tables(version):
        return None
    return query("SELECT loai, doi_tuong, ky, gia_tri, gia_tri_ky_vong, diem_z, mo_ta FROM marts.bat_thuong "
                 "ORDER BY abs(diem_z) DESC, loai, doi_tuong, ky LIMIT ?", [limit])



@st.cache_data(show_spinner=False)
def quality_latest(version: str | None):
    """Every source's latest promoted or blocked batch with its scores: one row per source and dimension, a
    source with no score at all (no checks) as one row with dimension NULL; `n_checks` = expectations run on
    the batch (0: the source is not checked), `detail` = the score's explanation (JSON, timeliness)."""
    return query("""
        WITH latest AS (
            SELECT source, batch_id FROM meta.loads WHERE status IN ('passed', 'blocked')
            QUALIFY row_number() OVER (PARTITION BY source ORDER BY loaded_at DESC) = 1),
        checks AS (SELECT source, batch_id, count(*) AS n_checks FROM meta.validations GROUP BY ALL)
        SELECT l.source, q.dimension, q.score, q.n_checked, q.n_failed, q.detail,
               coalesce(c.n_checks, 0) AS n_checks
        FROM latest l
        LEFT JOIN meta.quality_scores q USING (source, batch_id)
        LEFT JOIN checks c USING (source, batch_id)
        ORDER BY l.source, q.dimension""")


def _vn_date(value: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(value).strftime("%d/%m/%Y")


def _rhythm(hours: float, lang: str) -> str:
    from apps.i18n import t

    for key, length in (("dq_rhythm_hourly", 1), ("dq_rhythm_daily", 24), ("dq_rhythm_weekly", 168)):
        if abs(hours - length) < 1e-6:
            return t(key, lang)
    if hours % 24 == 0:
        return t("dq_rhythm_days", lang).format(n=int(hours // 24))
    return t("dq_rhythm_hours", lang).format(n=f"{hours:g}")


def timeliness_text(detail: str | None, lang: str) -> str | None:
    """The timeliness score in words, e.g. "dữ liệu mới nhất 28/11/2026, chạy ngày 01/12/2026: trễ 3 ngày so
    với lịch hằng ngày" (dates in the Vietnamese day/month/year form in both languages)."""
    import json

    from apps.i18n import t

    if not detail:
        return None
    d = json.loads(detail)
    rhythm = _rhythm(float(d["interval_hours"]), lang)
    if d.get("newest") is None:
        return t("dq_timeliness_no_date", lang).format(run=_vn_date(d["run"]), rhythm=rhythm)
    key = "dq_timeliness_late" if d.get("late") else "dq_timeliness_on_time"
    return t(key, lang).format(newest=_vn_date(d["newest"]), run=_vn_date(d["run"]), days=d["lag_days"],
                               rhythm=rhythm)
