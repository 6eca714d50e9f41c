"""Chất lượng dữ liệu (data quality): scores per dimension and their trend, promotion counts, latest checks.

Everything comes from the serving snapshot (marts.chat_luong_du_lieu, meta.loads, meta.validations), so it
works in any browser: the check results GX's Data Docs would show are rendered as a table here.
"""

from __future__ import annotations

import altair as alt
import streamlit as st
import streamlit.components.v1 as components

from apps import data, fmt
from apps.i18n import t
from apps.layout import page_header

lang, version = page_header("dq_title")

trend = data.quality_trend(version)
trend["dimension"] = trend["dimension"].map(lambda d: t(d, lang))
latest = trend[trend["scored_at"] == trend.groupby("source")["scored_at"].transform("max")]
for source, rows in latest.groupby("source", sort=True):
    st.subheader(f"{t('dq_source', lang)}: {source}")
    cols = st.columns(len(rows))
    for col, (_, row) in zip(cols, rows.iterrows(), strict=True):
        col.metric(row["dimension"], fmt.percent(row["score"], 1, lang))

st.subheader(t("dq_trend", lang))
chart = (alt.Chart(trend.rename(columns={"dimension": t("dq_dimension", lang), "score": t("dq_score", lang)}))
         .mark_line(point=True)
         .encode(x=alt.X("scored_at:T", title=t("dq_run", lang)),
                 y=alt.Y(f"{t('dq_score', lang)}:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
                 color=f"{t('dq_dimension', lang)}:N", strokeDash="source:N")
         .properties(height=300))
st.altair_chart(chart, width="stretch")

st.subheader(t("dq_promotion", lang))
st.dataframe(data.promotion_counts(version).rename(columns={
    "source": t("dq_source", lang), "n_rows_read": t("dq_read", lang), "n_rows_promoted": t("dq_promoted", lang),
    "n_rows_quarantined": t("dq_quarantined", lang)}), hide_index=True, width="stretch")

st.subheader(t("dq_checks", lang))
st.dataframe(data.latest_validations(version).rename(columns={
    "source": t("dq_source", lang), "description": t("dq_check", lang), "severity": t("dq_severity", lang),
    "is_success": t("dq_passed", lang), "n_unexpected": t("dq_failed_rows", lang),
    "n_quarantined": t("dq_quarantined", lang)}), hide_index=True, width="stretch")

flags = data.anomalies(version)
if flags is not None:
    st.subheader(f"{t('dq_anomalies', lang)} ({fmt.number(len(flags), lang=lang)})")
    st.caption(t("dq_anomalies_help", lang))
    if flags.empty:
        st.info(t("dq_no_anomalies", lang))
    else:
        st.dataframe(flags.rename(columns={
            "loai": t("dq_anomaly_kind", lang), "doi_tuong": t("dq_anomaly_object", lang),
            "ky": t("dq_anomaly_period", lang), "gia_tri": t("dq_anomaly_value", lang),
            "gia_tri_ky_vong": t("dq_anomaly_expected", lang), "diem_z": t("dq_anomaly_z", lang),
            "mo_ta": t("dq_anomaly_note", lang)}), hide_index=True, width="stretch")

st.subheader(t("dq_docs", lang))
pages = data.data_docs_pages()
if not pages:
    st.info(t("dq_docs_none", lang))
else:
    st.caption(t("dq_docs_help", lang))
    labels = [f"{t('dq_docs_' + kind, lang)}: {name}" if kind != "index" else t("dq_docs_index", lang)
              for kind, name, _ in pages]
    chosen = st.selectbox(t("dq_docs_page", lang), range(len(pages)), format_func=labels.__getitem__)
    components.html(pages[chosen][2].read_text(encoding="utf-8"), height=700, scrolling=True)
    st.download_button(t("dq_docs_download", lang), data.data_docs_zip(), file_name="data_docs.zip",
                       mime="application/zip")
