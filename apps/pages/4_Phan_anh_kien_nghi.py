"""Phản ánh, kiến nghị (citizen feedback): how many items citizens and businesses sent, how many were answered
within the 15-day deadline and how long answers took, what is still open now and overdue — per week and per field.

Reads pre-aggregated marts only (marts.phan_anh_tuan, marts.phan_anh_ton_dong_tuan: counts, no sender, no
subject), so no personal data can reach the page. A tenant without a source for the `phan_anh` contract gets
the sentence that says how to add one (`has_data`), never an error.
"""

from __future__ import annotations

import streamlit as st

from apps import components as ui
from apps import data, fmt
from apps.auth import require
from apps.i18n import t
from apps.layout import has_data, page_header

require("phan-anh-kien-nghi")  # signed in, and this page allowed for the role in the chosen tenant
lang, version = page_header("pakn_title")
has_data(version, lang, ["marts.phan_anh_tuan", "marts.phan_anh_ton_dong_tuan"], "pakn_what", stop=True)

backlog = data.feedback_backlog(version)
as_of = backlog["tuan_ket_thuc"].max() if len(backlog) else None
st.caption(t("pakn_intro", lang).format(as_of=fmt.day(as_of, lang) if as_of is not None else "—"))

first, last = data.feedback_weeks(version)
periods = ui.period_options(first, last)
period = st.selectbox(t("period", lang), periods, key="pakn_period",
                      format_func=lambda p: ui.period_label(p, lang))
start, end = ui.period_bounds(period)

# --- Figures of the period, and what is open now ------------------------------------------------------------------
fields = data.feedback_by_field(version, start, end)
received, answered = int(fields["n_tiep_nhan"].sum()), int(fields["n_da_tra_loi"].sum())
on_time = (fields["ty_le_dung_han"] * fields["n_da_tra_loi"]).sum() / answered if answered else None
mean_days = (fields["tb_ngay_tra_loi"] * fields["n_da_tra_loi"]).sum() / answered if answered else None
now = backlog.iloc[-1] if len(backlog) else None

st.subheader(t("pakn_kpis", lang))
cols = st.columns(3)
cols[0].metric(t("received", lang), fmt.number(received, lang=lang))
cols[1].metric(t("pakn_answered", lang), fmt.number(answered, lang=lang))
cols[2].metric(t("pakn_on_time_rate", lang), fmt.percent(on_time, lang=lang))
cols = st.columns(3)
cols[0].metric(t("pakn_mean_days", lang), fmt.number(mean_days, 1, lang=lang))
cols[1].metric(t("pakn_open_now", lang), fmt.number(None if now is None else now["backlog"], lang=lang))
cols[2].metric(t("pakn_open_overdue_now", lang), fmt.number(None if now is None else now["backlog_overdue"], lang=lang))

# --- Per week -----------------------------------------------------------------------------------------------------
st.subheader(t("pakn_weekly", lang))
weekly = data.feedback_weekly(version, start, end)
st.vega_lite_chart(ui.line_chart(weekly, "tuan_bat_dau", ["received", "fb_on_time", "fb_late"], lang,
                                 y_title=t("pakn_count", lang), height=260), width="stretch")

st.subheader(t("pakn_backlog", lang))
st.vega_lite_chart(ui.line_chart(backlog, "tuan_ket_thuc", ["backlog", "backlog_overdue"], lang,
                                 y_title=t("pakn_count", lang), height=220), width="stretch")

# --- Per field ----------------------------------------------------------------------------------------------------
st.subheader(t("pakn_by_field", lang))
ui.table(fields, "phan_anh_theo_linh_vuc", lang, version, percent=("ty_le_dung_han",), key="pakn_fields", labels={
    "linh_vuc": t("field", lang), "n_tiep_nhan": t("received", lang), "n_da_tra_loi": t("pakn_answered", lang),
    "ty_le_dung_han": t("pakn_on_time_rate", lang), "tb_ngay_tra_loi": t("pakn_mean_days", lang),
    "n_dang_xu_ly": t("pakn_col_open", lang),
    "n_dang_xu_ly_qua_han": t("pakn_col_open_overdue", lang)})
