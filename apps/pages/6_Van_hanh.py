"""Vận hành (operations, for engineers): each source's latest load (rows read, loaded, rejected, promoted,
quarantined), freshness against the tenant's schedule (previous and next scheduled run in its timezone),
step durations of published runs, and the recent runs with their failures and a link to Airflow.

Loads and step durations come from the serving snapshot (meta.loads, meta.step_runs). A failed run
publishes no snapshot, so runs and failures are read from the tenant's run records (`runs.jsonl`, written
redacted by pipelines/runcontrol.py) through `data.run_history`, read-only.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import altair as alt
import pandas as pd
import streamlit as st

from apps import components, data, fmt
from apps.auth import require
from apps.i18n import TEXT, t
from apps.layout import has_data, page_header
from pipelines.config import load_tenant

require("van-hanh")  # signed in, and this page allowed for the role in the chosen tenant
lang, version = page_header("ops_title")
tz = ZoneInfo(load_tenant(data.tenant_id()).timezone)


def when(value) -> str:
    """A timestamp in the tenant's timezone: 02:00 01/12/2026 (English: 2026-12-01 02:00)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return t("ops_never", lang)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = value.astimezone(tz)
    return f"{local:%H:%M %d/%m/%Y}" if lang == "vi" else f"{local:%Y-%m-%d %H:%M}"


# --- Freshness against the schedule ----------------------------------------------------------------------------
st.subheader(t("ops_freshness", lang))
promoted = data.last_promoted(version) if "meta.loads" in data.tables(version) else pd.DataFrame()
newest = promoted["loaded_at"].max() if not promoted.empty else None
sched = data.schedule_status(None if newest is None or pd.isna(newest) else newest.to_pydatetime())
if sched["schedule"] is None:
    st.info(t("ops_no_schedule", lang))
else:
    c1, c2, c3 = st.columns(3)
    c1.metric(t("ops_schedule", lang), f"{sched['schedule']} ({sched['timezone']})")
    c2.metric(t("ops_prev_run", lang), when(sched["previous"]))
    c3.metric(t("ops_next_run", lang), when(sched["next"]))
    if not promoted.empty:
        late = [r.source for r in promoted.itertuples() if r.loaded_at.astimezone(tz) < sched["previous"]]
        if late:
            st.warning(t("ops_late_sources", lang).format(prev=when(sched["previous"]), sources=", ".join(late)))
        else:
            st.success(t("ops_all_fresh", lang).format(prev=when(sched["previous"])))

# --- Latest load of each source ------------------------------------------------------------------------------
st.subheader(t("ops_loads", lang))
if has_data(version, lang, ["meta.loads"], "ops_loads_what"):
    loads = data.latest_loads(version)
    loads["status"] = loads["status"].map(lambda s: t(f"ops_status_{s}", lang) if f"ops_status_{s}" in TEXT
                                          else s)
    loads["loaded_at"] = loads["loaded_at"].map(when)
    components.table(loads, "lan_nap_gan_nhat", lang, version, labels={
        "source": t("dq_source", lang), "kind": t("ops_kind", lang), "status": t("ops_status", lang),
        "run_id": t("ops_run", lang), "loaded_at": t("ops_loaded_at", lang), "n_rows_read": t("dq_read", lang),
        "n_rows_loaded": t("ops_loaded", lang), "n_rows_rejected": t("ops_rejected", lang),
        "n_rows_promoted": t("dq_promoted", lang), "n_rows_quarantined": t("dq_quarantined", lang)})

# --- Step durations ------------------------------------------------------------------------------------------
if "meta.step_runs" in data.tables(version):
    steps = data.step_durations(version)
    if not steps.empty:
        st.subheader(t("ops_steps", lang))
        steps["run"] = steps["run_started_at"].map(when) + " · " + steps["run_id"]
        step_t, sec_t, run_t = t("ops_step", lang), t("ops_seconds", lang), t("ops_run", lang)
        chart = (alt.Chart(steps.rename(columns={"step": step_t, "seconds": sec_t, "run": run_t}))
                 .mark_bar()
                 .encode(y=alt.Y(f"{run_t}:N", title=run_t, sort=None), x=alt.X(f"{sec_t}:Q", title=sec_t,
                                                                                stack="zero"),
                         color=alt.Color(f"{step_t}:N", title=step_t, sort=None),
                         tooltip=[f"{run_t}:N", f"{step_t}:N", alt.Tooltip(f"{sec_t}:Q", format=",.1f")])
                 .properties(height=max(120, 36 * steps["run"].nunique())))
        st.altair_chart(components.vn_chart(chart, lang), width="stretch")

# --- Recent runs, failures included (runs.jsonl) ---------------------------------------------------------------
st.subheader(t("ops_runs", lang))
st.caption(t("ops_runs_help", lang))
runs = data.run_history(data.run_log_version())
if not runs:
    st.info(t("ops_no_runs", lang))
else:
    table = pd.DataFrame([{
        "run_id": r["run_id"], "via": r["via"] or "—", "started_at": when(r["started_at"]),
        "status": t(f"ops_run_{r['status']}", lang) if r["status"] in ("ok", "failed", "died", "running")
        else r["status"],
        "seconds": sum(s["seconds"] or 0 for s in r["steps"]),
        "error": r["error"] or "",
        "airflow": data.airflow_run_url(r["run_id"]) if r["via"] == "airflow" else None,
    } for r in runs])
    components.table(table, "lan_chay", lang, version, decimals={"seconds": 1}, labels={
        "run_id": t("ops_run", lang), "via": t("ops_via", lang), "started_at": t("ops_started", lang),
        "status": t("ops_status", lang), "seconds": t("ops_duration", lang), "error": t("ops_error", lang),
        "airflow": t("ops_airflow", lang)},
        column_config={t("ops_airflow", lang): st.column_config.LinkColumn(display_text=t("ops_open_airflow",
                                                                                            lang))})
    failed = [r for r in runs if r["status"] in ("failed", "died")]
    if failed:
        st.subheader(f"{t('ops_failures', lang)} ({fmt.number(len(failed), lang=lang)})")
        for r in failed:
            st.error(f"{when(r['started_at'])} · {r['run_id']} — {r['error'] or t('ops_run_' + r['status'], lang)}")
            if r["via"] == "airflow":
                st.link_button(t("ops_open_airflow", lang), data.airflow_run_url(r["run_id"]),
                               icon=":material/open_in_new:")

from apps.auth import audit_panel  # noqa: E402  (access: the SQL console and access audit, engineers only)

audit_panel(lang)
