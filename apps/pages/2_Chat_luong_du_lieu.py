"""Chất lượng dữ liệu (data quality): scores per dimension and their trend, promotion counts, latest checks.

Tables go through `components.table` (human labels, Vietnamese number formats, .xlsx/CSV downloads for roles
with "export"), the trend chart through `components.vn_chart` (Vietnamese number/date locale in axes and
tooltips).

Everything comes from the serving snapshot (marts.chat_luong_du_lieu, meta.loads, meta.validations), so it
works in any browser. Every role with the page sees the scores, the trend and the promotion counts; the latest
checks of each source (in words, both languages: apps/checks_text.py) and the anomaly flags need
"quality-details"; Great Expectations' Data Docs of the tenant need "data-docs" and are drawn in the page from
the tenant's own validation results (apps/data_docs_view.py) — never served as static files a URL reaches.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from apps import components as ui
from apps import data, fmt
from apps.auth import allowed, require
from apps.checks_text import check_text, severity_text
from apps.data_docs_view import render as render_data_docs
from apps.i18n import t
from apps.layout import has_data, page_header
from pipelines.config import load_tenant
from pipelines.settings import TenantPaths

require("chat-luong-du-lieu")  # signed in, and this page allowed for the role in the chosen tenant
lang, version = page_header("dq_title")
TZ = load_tenant(data.tenant_id()).timezone
has_data(version, lang, ["marts.chat_luong_du_lieu", "meta.loads", "meta.validations", "meta.quality_scores"],
         "dq_trend_what", stop=True)
# Each source's latest batch: a dimension no check looks at is "not checked", never a free 100 %.
DIMENSIONS = ("completeness", "uniqueness", "validity", "consistency", "timeliness")
for source, rows in data.quality_latest(version).groupby("source", sort=True):
    st.subheader(f"{t('dq_source', lang)}: {source}")
    if int(rows["n_checks"].max()) == 0:
        st.warning(t("dq_source_not_checked", lang))
    scored = {r["dimension"]: r for _, r in rows.dropna(subset=["dimension"]).iterrows()}
    shown = [d for d in DIMENSIONS if d != "timeliness" or d in scored]  # timeliness: incremental sources only
    for col, dimension in zip(st.columns(len(shown)), shown, strict=True):
        row = scored.get(dimension)
        col.metric(t(dimension, lang), t("dq_not_checked", lang) if row is None or not row["n_checked"]
                   else fmt.percent(row["score"], 1, lang))
    if "timeliness" in scored and (note := data.timeliness_text(scored["timeliness"]["detail"], lang)):
        st.caption(f"{t('timeliness', lang)}: {note}")

st.subheader(t("dq_trend", lang))
# One point per run date (dd/mm/yyyy) and series: several runs on one day are averaged, never drawn as
# milliseconds of one run; legend titles and values are translated.
runs = data.quality_runs(version)
runs["dimension"] = runs["dimension"].map(lambda d: t(d, lang))
runs["run_day"] = runs["run_at"].dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize()
daily = runs.groupby(["run_day", "source", "dimension"], as_index=False)["score"].mean()
dim_t, src_t, score_t, day_t = t("dq_dimension", lang), t("dq_source", lang), t("dq_score", lang), t("dq_run_date", lang)
chart = (alt.Chart(daily.rename(columns={"dimension": dim_t, "source": src_t, "score": score_t, "run_day": day_t}))
         .mark_line(point=True)
         .encode(x=alt.X(f"{day_t}:T", title=day_t,
                         axis=alt.Axis(format="%d/%m/%Y", tickCount={"interval": "day", "step": 1}, labelAngle=0)),
                 y=alt.Y(f"{score_t}:Q", title=score_t, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")),
                 color=alt.Color(f"{dim_t}:N", title=dim_t), strokeDash=alt.StrokeDash(f"{src_t}:N", title=src_t),
                 tooltip=[alt.Tooltip(f"{day_t}:T", format="%d/%m/%Y"), f"{src_t}:N", f"{dim_t}:N",
                          alt.Tooltip(f"{score_t}:Q", format=".1%")])
         .properties(height=300))
st.altair_chart(ui.vn_chart(chart, lang), width="stretch")  # "50,0 %"-style tooltips in Vietnamese

st.subheader(t("dq_promotion", lang))
ui.table(data.promotion_counts(version), "dong_du_lieu_theo_nguon", lang, version, key="dq_promotion", labels={
    "source": t("dq_source", lang), "n_rows_read": t("dq_read", lang), "n_rows_promoted": t("dq_promoted", lang),
    "n_rows_quarantined": t("dq_quarantined", lang)})

if allowed("quality-details"):  # engineers: each check of each source, and the anomaly flags
    st.subheader(t("dq_checks", lang))
    checks = data.latest_checks(version)
    for source, rows in checks.groupby("source", sort=True):
        n_passed = int(rows["is_success"].sum())
        with st.expander(f"{source} · {t('dq_n_checks', lang).format(passed=n_passed, n=len(rows))}",
                         expanded=n_passed < len(rows)):
            # Counts stay numbers (sortable, numbers in the .xlsx), shown 1.234 in Vietnamese by ui.table.
            ui.table(pd.DataFrame({
                "check": [check_text(e, c, lang)
                          for e, c in zip(rows["expectation"], rows["column_name"], strict=True)],
                "severity": [severity_text(s, lang) for s in rows["severity"]],
                "passed": rows["is_success"].map(lambda ok: "✅" if ok else "❌").to_list(),
                "n_elements": rows["n_elements"].to_list(),
                "n_unexpected": rows["n_unexpected"].to_list(),
                "n_quarantined": rows["n_quarantined"].to_list(),
                "observed": rows["observed_value"].fillna("").to_list(),
            }).astype({"n_elements": "Int64", "n_unexpected": "Int64", "n_quarantined": "Int64"}),
                f"kiem_tra_{source}", lang, version, key=f"dq_checks_{source}", labels={
                    "check": t("dq_check", lang), "severity": t("dq_severity", lang),
                    "passed": t("dq_passed", lang),
                    "n_elements": t("dq_rows_checked", lang), "n_unexpected": t("dq_failed_rows", lang),
                    "n_quarantined": t("dq_quarantined", lang), "observed": t("dq_observed", lang)})

    flags = data.anomalies(version)
    if flags is not None:
        st.subheader(f"{t('dq_anomalies', lang)} ({fmt.number(len(flags), lang=lang)})")
        st.caption(t("dq_anomalies_help", lang))
        if flags.empty:
            st.info(t("dq_no_anomalies", lang))
        else:
            ui.table(flags, "bat_thuong", lang, version, key="dq_anomalies", decimals={"diem_z": 2}, labels={
                "loai": t("dq_anomaly_kind", lang), "doi_tuong": t("dq_anomaly_object", lang),
                "ky": t("dq_anomaly_period", lang), "gia_tri": t("dq_anomaly_value", lang),
                "gia_tri_ky_vong": t("dq_anomaly_expected", lang), "diem_z": t("dq_anomaly_z", lang),
                "mo_ta": t("dq_anomaly_note", lang)})

if allowed("data-docs"):  # engineers: GX's Data Docs of the chosen tenant, drawn here after the grant check
    tenant = load_tenant(data.tenant_id())
    paths = TenantPaths.for_tenant(tenant.tenant_id, tenant.data_dir)
    render_data_docs(paths.validations, paths.data_docs, lang, version, export=allowed("export"))
