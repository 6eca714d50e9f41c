"""Data access for the apps: read-only queries on the tenant's serving snapshot, cached per snapshot version.

Every query runs for the signed-in session's tenant (`tenant_id()` = `apps.auth.current_tenant()`): one
server serves several tenants, each query's snapshot path and every cache key (`version`, the snapshot's path
and mtime) belong to the chosen tenant. The apps never open the pipeline's warehouse: queries run on cursors of the snapshot opened read-only once
per snapshot version (`_cursor`), so a new snapshot renamed into place is picked up by the next query and
never blocks the pipeline.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import streamlit as st

from pipelines.config import load_tenant
from pipelines.settings import TenantPaths


def tenant_id() -> str:
    """The tenant of this run: the signed-in session's chosen one (`apps.auth.current_tenant`, checked against
    its grants). Outside a signed-in run it raises `AccessDenied`: no query answers without a session, and the
    server's TONGHOP_TENANT is never a way around the grants."""
    from apps.auth import current_tenant

    return current_tenant()


def requires(capability: str):
    """Decorator (outside `st.cache_data`, so a cache hit is checked too): the function answers only a
    session whose role allows `capability`."""
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        def checked(*args, **kwargs):
            need(capability)
            return fn(*args, **kwargs)
        return checked
    return wrap


def need(capability: str) -> None:
    """Server-side check of a data function reserved to some roles (e.g. the run records for engineers): raises
    `AccessDenied` when the signed-in role lacks it, whatever page called."""
    from apps.auth import AccessDenied, allowed

    if not allowed(capability):
        raise AccessDenied(f"the role of this session does not allow '{capability}'")


def snapshot_path() -> Path:
    cfg = load_tenant(tenant_id())
    return TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).snapshot


def snapshot_version() -> str | None:
    """The serving snapshot's identity, the key of every cached query: its path (one per tenant) and mtime, so
    a new snapshot or another tenant never gets a cached answer of the old one."""
    path = snapshot_path()
    return f"{path}@{path.stat().st_mtime_ns}" if path.exists() else None


_OPEN: dict[str, tuple[str, object]] = {}  # snapshot path → (its version, the read-only DuckDB connection)
_OPEN_LOCK = threading.Lock()


def _cursor():
    """A cursor on the serving snapshot: one read-only DuckDB database per snapshot path, opened at the first
    query and reopened when a new snapshot (another mtime) replaced it. Opening the file costs 15–50 ms (its
    catalogue is read), a cursor nothing: a page's dozen queries used to pay the open each time (see the Apps
    section of docs/performance.md). Read-only, and a rename of a new snapshot into place is never blocked; the
    old database closes when its last cursor does."""
    import duckdb

    path = snapshot_path()
    version = f"{path}@{path.stat().st_mtime_ns}" if path.exists() else None
    with _OPEN_LOCK:
        found = _OPEN.get(str(path))
        if found is None or found[0] != version or version is None:
            if found is not None:
                found[1].close()
                del _OPEN[str(path)]
            con = duckdb.connect(str(path), read_only=True)
            _OPEN[str(path)] = (version, con)
        else:
            con = found[1]
        return con.cursor()


def query(sql: str, params: list | None = None):
    cur = _cursor()
    try:
        return cur.execute(sql, params or []).df()
    finally:
        cur.close()


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


@requires("quality-details")
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


# --- Bản đồ, Danh mục, Vận hành, Chất lượng (pages 2, 3, 5, 6) -------------------------------------------------

def _in(column: str, values: list | tuple | None, params: list) -> str:
    """` AND column IN (?, …)` for a non-empty filter (values bound as parameters), else nothing."""
    if not values:
        return ""
    params.extend(values)
    return f" AND {column} IN ({', '.join('?' for _ in values)})"


def _weekly_filters(start, end, agencies, fields, params: list) -> str:
    """` AND …` conditions of a weekly mart for the period (weeks starting in [start, end]), agencies and
    fields; their values appended to `params` in order."""
    sql = ""
    if start is not None:
        sql += " AND tuan_bat_dau >= ?"
        params.append(start)
    if end is not None:
        sql += " AND tuan_bat_dau <= ?"
        params.append(end)
    return sql + _in("co_quan", agencies, params) + _in("linh_vuc", fields, params)


@st.cache_data(show_spinner=False)
def tenant_scope(version: str | None) -> dict:
    """The tenant's kind ('province'|'ministry') and province code (None for a ministry)."""
    cfg = load_tenant(tenant_id())
    return {"kind": cfg.kind, "ma_tinh": cfg.admin_code if cfg.kind == "province" else None}


@st.cache_data(show_spinner=False)
def map_communes(version: str | None, start=None, end=None, agencies: tuple = (), fields: tuple = ()):
    """One row per commune of the tenant's province with its centroid and its dossier figures in the period
    (weeks starting in [start, end]) for the chosen agencies/fields: received, returned, on time, in progress,
    in progress overdue, on-time rate. Communes with no dossier are kept (zeros): the map shows all of them."""
    params: list = []
    where = "WHERE true"
    where += _weekly_filters(start, end, agencies, fields, params)
    params.append(tenant_scope(version)["ma_tinh"])
    return query(f"""
        WITH hs AS (
            SELECT ma_xa, sum(n_tiep_nhan) AS n_tiep_nhan, sum(n_da_tra) AS n_da_tra,
                   sum(n_tra_dung_han) AS n_tra_dung_han, sum(n_dang_xu_ly) AS n_dang_xu_ly,
                   sum(n_dang_xu_ly_qua_han) AS n_dang_xu_ly_qua_han
            FROM marts.ho_so_thu_tuc_tuan {where} GROUP BY ma_xa)
        SELECT t.ma AS ma_xa, t.ten, t.vi_do, t.kinh_do, t.dien_tich_km2,
               coalesce(hs.n_tiep_nhan, 0) AS n_tiep_nhan, coalesce(hs.n_da_tra, 0) AS n_da_tra,
               coalesce(hs.n_tra_dung_han, 0) AS n_tra_dung_han, coalesce(hs.n_dang_xu_ly, 0) AS n_dang_xu_ly,
               coalesce(hs.n_dang_xu_ly_qua_han, 0) AS n_dang_xu_ly_qua_han,
               hs.n_tra_dung_han / nullif(hs.n_da_tra, 0) AS ty_le_dung_han
        FROM staging.dm_toa_do t LEFT JOIN hs ON hs.ma_xa = t.ma
        WHERE t.cap = 'xa' AND t.ma_tinh = ?
        ORDER BY t.ma""", params)


@st.cache_data(show_spinner=False)
def map_digital(version: str | None):
    """The digital-society components per commune in the latest quarter reported (staging.xa_hoi_so):
    ma_xa, thanh_phan, ty_le_pct (0–100), nam, quy."""
    return query("""
        WITH latest AS (SELECT nam, quy FROM staging.xa_hoi_so ORDER BY nam DESC, quy DESC LIMIT 1)
        SELECT ma_xa, thanh_phan, avg(ty_le_pct) AS ty_le_pct, nam, quy
        FROM staging.xa_hoi_so JOIN latest USING (nam, quy)
        WHERE ma_xa IS NOT NULL GROUP BY ALL ORDER BY ma_xa, thanh_phan""")


@st.cache_data(show_spinner=False)
def map_provinces(version: str | None):
    """The 34 provinces with their centroid and the ministry's per-province licences (marts.tan_so_theo_tinh)."""
    return query("""
        WITH gp AS (
            SELECT ma_tinh, sum(n_giay_phep) AS n_giay_phep, sum(n_con_hieu_luc) AS n_con_hieu_luc,
                   sum(n_sap_het_han) AS n_sap_het_han, sum(n_het_han) AS n_het_han, sum(n_thu_hoi) AS n_thu_hoi
            FROM marts.tan_so_theo_tinh GROUP BY ma_tinh)
        SELECT t.ma AS ma_tinh, t.ten, t.vi_do, t.kinh_do, coalesce(gp.n_giay_phep, 0) AS n_giay_phep,
               coalesce(gp.n_con_hieu_luc, 0) AS n_con_hieu_luc, coalesce(gp.n_sap_het_han, 0) AS n_sap_het_han,
               coalesce(gp.n_het_han, 0) AS n_het_han, coalesce(gp.n_thu_hoi, 0) AS n_thu_hoi
        FROM staging.dm_toa_do t LEFT JOIN gp ON gp.ma_tinh = t.ma WHERE t.cap = 'tinh' ORDER BY t.ma""")


@st.cache_data(show_spinner=False)
def province_licences(version: str | None, ma_tinh: str):
    """One province's licences by kind (marts.tan_so_theo_tinh)."""
    return query("SELECT loai_giay_phep, n_giay_phep, n_con_hieu_luc, n_sap_het_han, n_het_han, n_thu_hoi "
                 "FROM marts.tan_so_theo_tinh WHERE ma_tinh = ? ORDER BY n_giay_phep DESC, loai_giay_phep",
                 [ma_tinh])


@st.cache_data(show_spinner=False)
def commune_detail(version: str | None, ma_xa: str, start=None, end=None, agencies: tuple = (), fields: tuple = ()):
    """One commune's dossiers in the period by agency and field (marts.ho_so_thu_tuc_tuan)."""
    params: list = [ma_xa]
    where = "WHERE ma_xa = ?"
    where += _weekly_filters(start, end, agencies, fields, params)
    return query(f"""
        SELECT co_quan, linh_vuc, sum(n_tiep_nhan) AS n_tiep_nhan, sum(n_da_tra) AS n_da_tra,
               sum(n_tra_dung_han) / nullif(sum(n_da_tra), 0) AS ty_le_dung_han,
               sum(n_dang_xu_ly) AS n_dang_xu_ly, sum(n_dang_xu_ly_qua_han) AS n_dang_xu_ly_qua_han
        FROM marts.ho_so_thu_tuc_tuan {where} GROUP BY ALL ORDER BY n_tiep_nhan DESC, co_quan, linh_vuc""", params)


@st.cache_data(show_spinner=False)
def databases(version: str | None):
    """The database catalogue (marts.danh_muc_csdl, Decision 1437 fields); lists joined as text."""
    return query("""
        SELECT ma_csdl, ten_csdl, ten_phan_loai, muc_dich, pham_vi, array_to_string(nguon_du_lieu, ', ') AS nguon,
               co_quan_chu_quan, array_to_string(danh_muc_mo, ', ') AS danh_muc_mo,
               array_to_string(danh_muc_chia_se, ', ') AS danh_muc_chia_se, trang_thai, lo_trinh
        FROM marts.danh_muc_csdl ORDER BY ma_csdl""")


@st.cache_data(show_spinner=False)
def datasets(version: str | None):
    """Every published table with its layer, description, database and access level (marts.danh_muc_du_lieu)."""
    return query("""
        SELECT tang, ten_bang, mo_ta, loai_nguon, ten_csdl, co_quan_chu_quan, is_co_du_lieu_ca_nhan, muc_tiep_can
        FROM marts.danh_muc_du_lieu ORDER BY tang, ten_bang""")


@st.cache_data(show_spinner=False)
def data_dictionary(version: str | None):
    """Every published table's columns with their descriptions (meta.data_dictionary)."""
    return query("""
        SELECT table_schema || '.' || table_name AS bang, table_description_vi, table_description_en, grain, owner,
               column_name, data_type, column_description
        FROM meta.data_dictionary ORDER BY table_schema, table_name, position""")


@st.cache_data(show_spinner=False)
def data_contracts(version: str | None):
    """The shared data contracts' columns (meta.data_contracts) with the sources feeding each contract."""
    return query("""
        SELECT contract, version, column_name, data_type, is_required, personal, allowed_values, description_vi,
               description_en, array_to_string(fed_by, ', ') AS fed_by
        FROM meta.data_contracts ORDER BY contract, column_name""")


@requires("van-hanh")
@st.cache_data(show_spinner=False)
def latest_loads(version: str | None):
    """Each source's latest batch, whatever its status: rows read, loaded, rejected, promoted, quarantined."""
    return query("""
        SELECT source, kind, status, run_id, loaded_at, n_rows_read, n_rows_loaded, n_rows_rejected,
               n_rows_promoted, n_rows_quarantined
        FROM meta.loads QUALIFY row_number() OVER (PARTITION BY source ORDER BY loaded_at DESC) = 1
        ORDER BY source""")


@requires("van-hanh")
@st.cache_data(show_spinner=False)
def last_promoted(version: str | None):
    """Each source's newest promoted batch (status 'passed'): when it was loaded."""
    return query("SELECT source, max(loaded_at) AS loaded_at FROM meta.loads WHERE status = 'passed' "
                 "GROUP BY source ORDER BY source")


@requires("van-hanh")
@st.cache_data(show_spinner=False)
def step_durations(version: str | None, n_runs: int = 10):
    """Step durations (seconds) of the last `n_runs` runs recorded in meta.step_runs."""
    return query("""
        WITH runs AS (SELECT run_id, min(started_at) AS started_at FROM meta.step_runs GROUP BY run_id
                      ORDER BY started_at DESC LIMIT ?)
        SELECT s.run_id, r.started_at AS run_started_at, s.step, s.started_at,
               epoch(s.finished_at) - epoch(s.started_at) AS seconds
        FROM meta.step_runs s JOIN runs r USING (run_id) ORDER BY r.started_at, s.started_at""", [n_runs])


@requires("van-hanh")
def run_log_version() -> str | None:
    """Identity of the tenant's run records file (path@mtime): the cache key of `run_history`."""
    from pipelines.settings import TenantPaths

    cfg = load_tenant(tenant_id())
    path = TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).run_log
    return f"{path}@{path.stat().st_mtime_ns}" if path.exists() else None


@requires("van-hanh")
@st.cache_data(show_spinner=False)
def run_history(log_version: str | None, limit: int = 20) -> list[dict]:
    """The tenant's last `limit` runs from its run records (`runs.jsonl`, read-only; records are written
    redacted by pipelines/runcontrol.py), newest first: run_id, via, started_at, status
    (ok|failed|died|running), steps [(step, status, seconds, error)], and the failing step's message."""
    from pipelines.runcontrol import read_records
    from pipelines.settings import TenantPaths

    if log_version is None:
        return []
    cfg = load_tenant(tenant_id())
    runs: dict[str, dict] = {}
    for rec in read_records(TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir)):
        run = runs.setdefault(rec["run_id"], {"run_id": rec["run_id"], "via": None, "started_at": None,
                                              "ended_at": None, "status": "running", "steps": [], "error": None})
        event = rec.get("event")
        if event == "run_start":
            run["via"], run["started_at"] = rec.get("via"), rec.get("started_at")
        elif event == "step_start":
            run["via"] = run["via"] or rec.get("via")
            run["started_at"] = run["started_at"] or rec.get("at")
        elif event == "run_end":
            run["status"], run["ended_at"] = rec.get("status", "failed"), rec.get("at")
            if rec.get("status") == "died" and not run["error"]:
                run["error"] = f"{rec.get('step') or ''}: {rec.get('reason') or rec.get('found_by') or 'died'}"
        elif event is None and "step" in rec:
            error = rec.get("error")
            if isinstance(error, dict):
                error = error.get("message") or str(error)
            run["steps"].append({"step": rec["step"], "status": rec.get("status"), "seconds": rec.get("seconds"),
                                 "at": rec.get("at"), "error": error})
            run["started_at"] = run["started_at"] or rec.get("at")
            if rec.get("status") == "failed":
                run["error"] = f"{rec['step']}: {error}"
                if run["via"] != "cli":
                    run["status"] = "failed"
    ordered = sorted(runs.values(), key=lambda r: r["started_at"] or "", reverse=True)
    return ordered[:limit]


@requires("van-hanh")
def schedule_status(last_promoted_at, now=None) -> dict:
    """Freshness against the tenant's cron in its timezone: the previous and next scheduled runs, and whether
    the newest promoted load is older than the previous scheduled run (a missed run)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from croniter import croniter

    cfg = load_tenant(tenant_id())
    tz = ZoneInfo(cfg.timezone)
    now = (now or datetime.now(UTC)).astimezone(tz)
    if not cfg.schedule:
        return {"schedule": None, "timezone": cfg.timezone, "previous": None, "next": None, "late": None}
    presets = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
               "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
    expr = presets.get(cfg.schedule.strip(), cfg.schedule)
    previous = croniter(expr, now).get_prev(datetime)
    following = croniter(expr, now).get_next(datetime)
    late = None
    if last_promoted_at is not None:
        late = last_promoted_at.astimezone(tz) < previous
    return {"schedule": cfg.schedule, "timezone": cfg.timezone, "previous": previous, "next": following,
            "late": late}


def airflow_run_url(run_id: str) -> str:
    """The Airflow 3 UI page of a run of the tenant's DAG (base from TONGHOP_AIRFLOW_URL)."""
    from urllib.parse import quote

    base = os.environ.get("TONGHOP_AIRFLOW_URL", "http://127.0.0.1:8080").rstrip("/")
    return f"{base}/dags/{quote('tonghop_' + tenant_id(), safe='')}/runs/{quote(run_id, safe='')}"


@requires("quality-details")
@st.cache_data(show_spinner=False)
def latest_checks(version: str | None):
    """The whole suite run on each source's latest validated batch (its newest promoted or blocked load):
    one row per expectation, with its column, severity, rows failed and quarantined, observed value."""
    return query("""
        WITH latest AS (
            SELECT source, batch_id FROM meta.loads WHERE status IN ('passed', 'blocked')
            QUALIFY row_number() OVER (PARTITION BY source ORDER BY loaded_at DESC) = 1)
        SELECT v.source, v.expectation, v.column_name, v.severity, v.is_success, v.n_elements, v.n_unexpected,
               v.n_quarantined, v.observed_value, v.description, v.validated_at
        FROM meta.validations v JOIN latest USING (source, batch_id)
        ORDER BY v.source, v.is_success, v.severity, v.expectation, v.column_name""")


@st.cache_data(show_spinner=False)
def quality_runs(version: str | None):
    """Quality score per run (its date), source and dimension, oldest first (marts.chat_luong_du_lieu)."""
    return query("""
        SELECT run_id, min(scored_at) OVER (PARTITION BY run_id) AS run_at, source, dimension, score
        FROM marts.chat_luong_du_lieu ORDER BY run_at, source, dimension""")


# --- Filters, Tổng quan, Thủ tục hành chính, báo cáo (apps/components.py, apps/report.py, pages 1 and 3) ---------
# Every function below reads pre-aggregated weekly marts (never the dossier table): a filter change is a
# GROUP BY over a few thousand rows per agency, field, commune and week.

def _isin(column: str, values, params: list) -> str:
    """` AND column IN (?, …)` for a non-empty filter (values bound as parameters), else nothing."""
    if not values:
        return ""
    params.extend(values)
    return f" AND {column} IN ({', '.join('?' for _ in values)})"


def _period_where(start, end, params: list, column: str = "tuan_bat_dau") -> str:
    """` AND start <= column <= end` (weeks by their Monday), each bound optional."""
    sql = ""
    if start is not None:
        sql += f" AND {column} >= ?"
        params.append(start)
    if end is not None:
        sql += f" AND {column} <= ?"
        params.append(end)
    return sql


@st.cache_data(show_spinner=False)
def filter_options(version: str | None) -> dict:
    """What the filter bar offers, from the snapshot: the first and last week with dossiers, agencies, fields
    and communes (code → name) — human names, as the marts carry them."""
    have = tables(version)
    mart = "marts.ho_so_thu_tuc_tuan" if "marts.ho_so_thu_tuc_tuan" in have else "marts.ho_so_tuan"
    if mart not in have:
        return {"first_week": None, "last_week": None, "agencies": [], "fields": [], "communes": {}}
    span = query(f"SELECT min(tuan_bat_dau) AS a, max(tuan_bat_dau) AS b FROM {mart}").iloc[0]
    agencies = query(f"SELECT DISTINCT co_quan FROM {mart} WHERE co_quan IS NOT NULL ORDER BY 1")["co_quan"]
    fields = query(f"SELECT DISTINCT linh_vuc FROM {mart} WHERE linh_vuc IS NOT NULL ORDER BY 1")["linh_vuc"]
    communes: dict[str, str] = {}
    if mart == "marts.ho_so_thu_tuc_tuan":
        rows = query(f"SELECT ma_xa, any_value(ten_xa) AS ten_xa FROM {mart} WHERE ma_xa IS NOT NULL "
                     "GROUP BY 1 ORDER BY 2, 1")
        communes = dict(zip(rows["ma_xa"], rows["ten_xa"], strict=True))
    return {"first_week": span["a"], "last_week": span["b"], "agencies": list(agencies), "fields": list(fields),
            "communes": communes}


def _dossier_where(version, start, end, agencies, fields, communes, params: list) -> tuple[str, str]:
    """(mart, WHERE clause) for the weekly dossier figures under the filters; the commune filter needs
    marts.ho_so_thu_tuc_tuan (a tenant without it has no commune, and the filter bar offers none)."""
    mart = "marts.ho_so_thu_tuc_tuan" if "marts.ho_so_thu_tuc_tuan" in tables(version) else "marts.ho_so_tuan"
    where = "WHERE true" + _period_where(start, end, params) + _isin("co_quan", agencies, params) \
        + _isin("linh_vuc", fields, params)
    if mart == "marts.ho_so_thu_tuc_tuan":
        where += _isin("ma_xa", communes, params)
    return mart, where


def _measures(mart: str) -> str:
    on_time, late = (("n_tra_dung_han", "n_tra_qua_han") if mart == "marts.ho_so_thu_tuc_tuan"
                     else ("n_dung_han", "n_qua_han"))
    overdue_pending = ("sum(n_dang_xu_ly_qua_han)" if mart == "marts.ho_so_thu_tuc_tuan" else "NULL::BIGINT")
    return (f"sum(n_tiep_nhan)::BIGINT AS received, sum(n_da_tra)::BIGINT AS returned, "
            f"sum({on_time})::BIGINT AS on_time, sum({late})::BIGINT AS overdue, "
            f"sum(n_dang_xu_ly)::BIGINT AS pending, {overdue_pending}::BIGINT AS pending_overdue, "
            f"sum({on_time}) / nullif(sum(n_da_tra), 0) AS on_time_rate")


@st.cache_data(show_spinner=False)
def dossier_totals(version: str | None, start=None, end=None, agencies: tuple = (), fields: tuple = (),
                   communes: tuple = ()) -> dict:
    """Dossiers received, returned (on time / late), still pending, and the on-time rate in the period."""
    params: list = []
    mart, where = _dossier_where(version, start, end, agencies, fields, communes, params)
    return query(f"SELECT {_measures(mart)} FROM {mart} {where}", params).iloc[0].to_dict()


@st.cache_data(show_spinner=False)
def dossier_weekly(version: str | None, start=None, end=None, agencies: tuple = (), fields: tuple = (),
                   communes: tuple = ()):
    """Per week: received, returned, returned late (the same three series on every chart)."""
    params: list = []
    mart, where = _dossier_where(version, start, end, agencies, fields, communes, params)
    return query(f"SELECT tuan_bat_dau, {_measures(mart)} FROM {mart} {where} GROUP BY 1 ORDER BY 1", params)


BREAKDOWNS = {"agency": "co_quan", "field": "linh_vuc", "commune": "ten_xa"}


@st.cache_data(show_spinner=False)
def dossier_breakdown(version: str | None, by: str, start=None, end=None, agencies: tuple = (),
                      fields: tuple = (), communes: tuple = ()):
    """The period's figures per agency, field or commune (`by` in BREAKDOWNS), most received first; the
    commune breakdown also carries `ma_xa` (the code the commune filter keeps)."""
    column = BREAKDOWNS[by]
    params: list = []
    mart, where = _dossier_where(version, start, end, agencies, fields, communes, params)
    if by == "commune":
        if mart != "marts.ho_so_thu_tuc_tuan":
            return None
        keys = "ma_xa, any_value(ten_xa) AS ten_xa"
        group = "ma_xa"
    else:
        keys, group = column, column
    return query(f"SELECT {keys}, {_measures(mart)} FROM {mart} {where} GROUP BY {group} "
                 f"ORDER BY received DESC, {group}", params)


PROCEDURE_MART = "marts.ho_so_ma_thu_tuc_tuan"


@st.cache_data(show_spinner=False)
def procedure_breakdown(version: str | None, start=None, end=None, agencies: tuple = (), fields: tuple = (),
                        communes: tuple = ()):
    """The drill-down's last level: the period's figures per national procedure code (with its field) under
    the filters — one agency or commune chosen — most received first (marts.ho_so_ma_thu_tuc_tuan)."""
    params: list = []
    where = "WHERE true" + _period_where(start, end, params) + _isin("co_quan", agencies, params) \
        + _isin("linh_vuc", fields, params) + _isin("ma_xa", communes, params)
    return query(f"SELECT ma_thu_tuc, linh_vuc, {_measures('marts.ho_so_thu_tuc_tuan')} FROM {PROCEDURE_MART} "
                 f"{where} GROUP BY ma_thu_tuc, linh_vuc ORDER BY received DESC, ma_thu_tuc, linh_vuc", params)


@st.cache_data(show_spinner=False)
def procedure_weekly(version: str | None, procedure: str, start=None, end=None, agencies: tuple = (),
                     fields: tuple = (), communes: tuple = ()):
    """One procedure's weeks under the filters (received, returned, late: the usual three series)."""
    params: list = [procedure]
    where = "WHERE ma_thu_tuc = ?" + _period_where(start, end, params) + _isin("co_quan", agencies, params) \
        + _isin("linh_vuc", fields, params) + _isin("ma_xa", communes, params)
    return query(f"SELECT tuan_bat_dau, {_measures('marts.ho_so_thu_tuc_tuan')} FROM {PROCEDURE_MART} {where} "
                 "GROUP BY 1 ORDER BY 1", params)


@st.cache_data(show_spinner=False)
def backlog_weekly(version: str | None, start=None, end=None, agencies: tuple = (), fields: tuple = ()):
    """Dossiers pending at the end of each week, and how many of them are past due (marts.ho_so_ton_dong_tuan;
    by agency and field only: the backlog mart has no commune)."""
    params: list = []
    where = "WHERE true" + _period_where(start, None if end is None else end + _week(), params, "tuan_ket_thuc") \
        + _isin("co_quan", agencies, params) + _isin("linh_vuc", fields, params)
    return query(f"""SELECT tuan_ket_thuc, sum(n_ton_dong)::BIGINT AS backlog,
                            sum(n_ton_dong_qua_han)::BIGINT AS backlog_overdue
                     FROM marts.ho_so_ton_dong_tuan {where} GROUP BY 1 ORDER BY 1""", params)


def _week():
    from datetime import timedelta

    return timedelta(days=6)


@st.cache_data(show_spinner=False)
def inflow_forecast(version: str | None, agencies: tuple = (), fields: tuple = ()):
    """Next weeks' forecast (marts.du_bao_ho_so_tuan) summed over the chosen agencies and fields: the middle
    value and the sums of the 80 % bounds (a range for the total that is at least as wide as the exact one)."""
    params: list = []
    where = "WHERE true" + _isin("co_quan", agencies, params) + _isin("linh_vuc", fields, params)
    return query(f"""SELECT tuan_bat_dau, any_value(tuan_truoc) AS tuan_truoc, any_value(tuan_goc) AS tuan_goc,
                            sum(n_du_bao) AS forecast, sum(n_du_bao_thap) AS forecast_low,
                            sum(n_du_bao_cao) AS forecast_high, any_value(model_version) AS model_version
                     FROM marts.du_bao_ho_so_tuan {where} GROUP BY 1 ORDER BY 1""", params)


@st.cache_data(show_spinner=False)
def forecast_backtest(version: str | None):
    """The forecast's backtest (marts.du_bao_kiem_dinh): mean absolute error per method (the model and its
    baselines: seasonal naive, 4-week moving average) over every horizon (tuan_truoc = 0 is the overall row)."""
    return query("""SELECT phuong_phap, mae, mape, n_diem FROM marts.du_bao_kiem_dinh WHERE tuan_truoc = 0
                    ORDER BY mae, phuong_phap""")


@st.cache_data(show_spinner=False)
def at_risk(version: str | None, agencies: tuple = (), fields: tuple = (), limit: int = 200):
    """Open dossiers most likely to be returned late (marts.ho_so_nguy_co_qua_han), under the filters."""
    params: list = []
    where = "WHERE true" + _isin("co_quan", agencies, params) + _isin("linh_vuc", fields, params)
    params.append(limit)
    return query(f"""SELECT ma_ho_so, co_quan, linh_vuc, ngay_nhan, ngay_hen_tra, xac_suat_qua_han
                     FROM marts.ho_so_nguy_co_qua_han {where}
                     ORDER BY xac_suat_qua_han DESC, ma_ho_so LIMIT ?""", params)


@st.cache_data(show_spinner=False)
def risk_reliability(version: str | None):
    """Overdue risk's reliability table (marts.do_tin_cay_rui_ro, models/overdue_risk.py): per probability band,
    the dossiers open at the test cut-offs, their mean predicted probability and the share that went late."""
    return query("""SELECT tu, den, n_ho_so, xac_suat_du_bao, ty_le_thuc_te FROM marts.do_tin_cay_rui_ro
                    ORDER BY tu""")


@st.cache_data(show_spinner=False)
def staffing_plan(version: str | None):
    """The published staffing plan (marts.can_bo_de_xuat) for the forecast's next week."""
    return query("""SELECT co_quan, so_can_bo_hien_tai, so_can_bo_de_xuat, thay_doi, n_du_bao, nang_suat_tuan,
                           n_qua_han_du_kien_hien_tai, n_qua_han_du_kien_de_xuat, tuan_bat_dau
                    FROM marts.can_bo_de_xuat ORDER BY co_quan""")


@st.cache_data(show_spinner=False)
def staffing_what_if(version: str | None, headcount: int):
    """The staffing plan for another total headcount (models.staffing.what_if on the read-only snapshot)."""
    from models.staffing import what_if

    con = _cursor()
    try:
        return what_if(con, int(headcount)).sort_values("co_quan").reset_index(drop=True)
    finally:
        con.close()


@st.cache_data(show_spinner=False)
def scorecard(version: str | None):
    """The digital-transformation scorecard (marts.chuyen_doi_so_chi_tieu): every target and each year's actual."""
    return query("SELECT * FROM marts.chuyen_doi_so_chi_tieu ORDER BY khung, nhom, ma_chi_tieu, nam")


@st.cache_data(show_spinner=False)
def column_labels(version: str | None, lang: str) -> dict[str, str]:
    """Column name → human label from the data dictionary ("Tiếng Việt — English" descriptions split on the
    dash; the first table describing a column wins, parentheses and codes kept out of the label)."""
    if "meta.data_dictionary" not in tables(version):
        return {}
    rows = query("""SELECT column_name, column_description FROM meta.data_dictionary
                    WHERE column_description IS NOT NULL AND table_schema = 'marts'
                    ORDER BY table_name, position""")
    labels: dict[str, str] = {}
    for name, text in zip(rows["column_name"], rows["column_description"], strict=True):
        vi, _, en = text.partition(" — ")
        label = (en if lang == "en" and en else vi).split(" (")[0].strip()
        labels.setdefault(name, label[:1].upper() + label[1:])
    return labels


# --- Phản ánh, kiến nghị (citizen feedback; page 4) — marts phan_anh_tuan and phan_anh_ton_dong_tuan -----------

@st.cache_data(show_spinner=False)
def feedback_weeks(version: str | None) -> tuple:
    """First and last week (Mondays) of the feedback mart, for the page's period choice."""
    import pandas as pd

    first, last = query("SELECT min(tuan_bat_dau) AS a, max(tuan_bat_dau) AS b FROM marts.phan_anh_tuan").iloc[0]
    return tuple(None if pd.isna(v) else pd.Timestamp(v).date() for v in (first, last))


@st.cache_data(show_spinner=False)
def feedback_weekly(version: str | None, start=None, end=None):
    """Per week: items received, answered on time, answered late."""
    params: list = []
    return query(f"""
        SELECT tuan_bat_dau, sum(n_tiep_nhan) AS received, sum(n_tra_loi_dung_han) AS fb_on_time,
               sum(n_tra_loi_qua_han) AS fb_late
        FROM marts.phan_anh_tuan WHERE true{_period_where(start, end, params)} GROUP BY 1 ORDER BY 1""", params)


@st.cache_data(show_spinner=False)
def feedback_by_field(version: str | None, start=None, end=None):
    """Per field over the period: received, answered, on-time share and mean days of the answers; of the items
    received in the period, still open and open past due (15 days)."""
    params: list = []
    return query(f"""
        SELECT linh_vuc, sum(n_tiep_nhan) AS n_tiep_nhan, sum(n_da_tra_loi) AS n_da_tra_loi,
               sum(n_tra_loi_dung_han) / nullif(sum(n_da_tra_loi), 0) AS ty_le_dung_han,
               sum(tb_ngay_tra_loi * n_da_tra_loi) / nullif(sum(n_da_tra_loi), 0) AS tb_ngay_tra_loi,
               sum(n_dang_xu_ly) AS n_dang_xu_ly, sum(n_dang_xu_ly_qua_han) AS n_dang_xu_ly_qua_han
        FROM marts.phan_anh_tuan WHERE true{_period_where(start, end, params)}
        GROUP BY 1 ORDER BY n_tiep_nhan DESC, linh_vuc""", params)


@st.cache_data(show_spinner=False)
def feedback_backlog(version: str | None):
    """Items open at each week's end, and those already past their answer deadline."""
    return query("""
        SELECT tuan_ket_thuc, sum(n_ton_dong) AS backlog, sum(n_ton_dong_qua_han) AS backlog_overdue
        FROM marts.phan_anh_ton_dong_tuan GROUP BY 1 ORDER BY 1""")
