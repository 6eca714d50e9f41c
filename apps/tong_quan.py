"""Tổng quan (overview), the app's first page: the tenant at a glance from the serving snapshot.

Headline dossier KPIs (marts.kpi_tong_quan), what changed since the previous period under the filters
(marts.ho_so_thu_tuc_tuan or ho_so_tuan, marts.ho_so_ton_dong_tuan), the weekly chart, the
digital-transformation scorecard (marts.chuyen_doi_so_chi_tieu) and the dossiers most at risk. Registered by
apps/main.py; every part asks `has_data` first, so a tenant lacking a mart reads why instead of an error.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from apps import components as ui
from apps import data, fmt
from apps.auth import require
from apps.i18n import t
from apps.layout import has_data, page_header
from apps.report import overview_kpis, scorecard_rows, scorecard_table

require("tong-quan")  # signed in, and this page allowed for the role in the chosen tenant
lang, version = page_header("title")
has_data(version, lang, ["marts.kpi_tong_quan", "marts.ho_so_tuan"], "dossier_kpis", stop=True)
# A filter change reruns only the fragments that depend on it (what changed + weekly chart; the at-risk list on
# agency/field): the headline figures and the scorecard are drawn once per page run.
filters = ui.filter_bar(version, lang, reruns={"period": ("tq_changes",), "commune": ("tq_changes",),
                                               "agency": ("tq_changes", "tq_risk"),
                                               "field": ("tq_changes", "tq_risk")})
have = data.tables(version)
opts = data.filter_options(version)

st.caption(f"{data.tenant_name(version, lang)} · {t('data_as_of', lang)} "
           f"{fmt.day(data.kpis(version)['data_as_of'], lang)} · {t('snapshot_at', lang)} "
           f"{data.snapshot_info(version)['published_at']:%H:%M %d/%m/%Y}")

k = data.kpis(version)
c1, c2, c3, c4 = st.columns(4)
c1.metric(t("n_ho_so", lang), fmt.number(k["n_ho_so"], lang=lang))
c2.metric(t("on_time_rate", lang), fmt.percent(k["ty_le_dung_han"], lang=lang))
c3.metric(t("pending", lang), fmt.number(k["n_dang_xu_ly"], lang=lang))
c4.metric(t("pending_overdue", lang), fmt.number(k["n_dang_xu_ly_qua_han"], lang=lang))


# --- What changed since the previous period (under the filters) -----------------------------------------------
@st.fragment(key="tq_changes")
def what_changed() -> None:
    filters = ui.current_filters(version)
    st.subheader(t("changes_title", lang))
    _changes(filters)
    st.subheader(t("weekly_chart", lang))
    weekly = data.dossier_weekly(version, **filters.query())
    st.vega_lite_chart(ui.line_chart(weekly, "tuan_bat_dau", ["received", "returned", "overdue"], lang, height=320),
                    width="stretch")


def _changes(filters) -> None:
    current, previous = filters.comparison()
    if previous is None:
        st.info(t("changes_none", lang))
        return
    st.caption(t("changes_caption", lang).format(current=current.describe(lang, opts["communes"]),
                                                 previous=ui.period_label(previous.period, lang)))
    kpi = overview_kpis(version, lang, filters)
    values = dict(zip(kpi[t("indicator", lang)], zip(kpi[t("value", lang)], kpi[t("change", lang)],
                                                     strict=True), strict=True))
    cols = st.columns(4)
    for col, key in zip(cols, ("received", "returned", "on_time_rate"), strict=False):
        value, change = values[t(key, lang)]
        if key == "on_time_rate":
            shown = fmt.percent(value, 1, lang)
            delta = None if change is None else f"{fmt.number(change * 100, 1, lang)} điểm %" \
                if lang == "vi" else None if change is None else f"{fmt.number(change * 100, 1, lang)} pts"
        else:
            shown = fmt.number(value, lang=lang)
            delta = None if change is None else fmt.number(change, lang=lang)
        col.metric(t(key, lang), shown, delta, delta_color="normal")
    if "marts.ho_so_ton_dong_tuan" in have:
        end_now = data.backlog_weekly(version, current.start, current.end, current.agencies, current.fields)
        end_before = data.backlog_weekly(version, previous.start, previous.end, previous.agencies,
                                         previous.fields)
        now_v = int(end_now["backlog"].iloc[-1]) if len(end_now) else None
        before_v = int(end_before["backlog"].iloc[-1]) if len(end_before) else None
        cols[3].metric(t("backlog_end", lang), fmt.number(now_v, lang=lang),
                       None if now_v is None or before_v is None else fmt.number(now_v - before_v, lang=lang),
                       delta_color="inverse")
        if filters.communes:
            st.caption(t("backlog_no_commune", lang))


what_changed()

# --- Digital-transformation scorecard --------------------------------------------------------------------------
st.subheader(t("scorecard_title", lang))
if has_data(version, lang, ["marts.chuyen_doi_so_chi_tieu"], "scorecard_title"):
    st.caption(t("scorecard_caption", lang))
    rows = scorecard_rows(version, lang)
    n_met = int((rows["status"] == "met").sum())
    a, b, c = st.columns(3)
    a.metric(t("met", lang), f"{n_met} / {len(rows)}")
    b.metric(t("not_met", lang), int((rows["status"] == "not_met").sum()))
    c.metric(t("no_data", lang), int((rows["status"] == "no_data").sum()))
    shown = scorecard_table(version, lang)
    shown[t("sc_trend", lang)] = rows["trend"]  # a sparkline on screen, "10,8 → 12,4" in the downloads
    for col in (t("target", lang), t("actual", lang)):  # numbers and "issued" in one column: text on screen
        shown[col] = shown[col].map(lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v))
                                    else v if isinstance(v, str) else fmt.number(v, 1, lang))
    status_col = t("sc_status", lang)
    colours = {t(s, lang): ui.COLORS[s] for s in ("met", "not_met", "no_data")}
    styled = (shown.style
              .map(lambda v: f"background-color: {colours.get(v, '')}; color: white" if v in colours else "",
                   subset=[status_col])
              .format({t("sc_change", lang): lambda v: "" if pd.isna(v) else fmt.number(v, 1, lang),
                       t("sc_latest_year", lang): lambda v: "" if pd.isna(v) else str(int(v)),
                       t("sc_target_year", lang): lambda v: "" if pd.isna(v) else str(int(v))},
                      na_rep=""))
    st.dataframe(styled, hide_index=True, width="stretch", column_config={
        t("sc_trend", lang): st.column_config.LineChartColumn(t("sc_trend", lang))})
    ui.download_buttons(scorecard_table(version, lang), "chuyen_doi_so", lang)
    # Trend per indicator with a numeric target: actual by year against the target line.
    card = data.scorecard(version)
    numeric = card[card["don_vi"] != "trang_thai"].dropna(subset=["nam"])
    if len(numeric):
        name_col = "ten_chi_tieu_en" if lang == "en" else "ten_chi_tieu"
        base = alt.Chart(numeric).encode(
            x=alt.X("nam:O", title=t("year", lang)),
            tooltip=[alt.Tooltip(f"{name_col}:N", title=t("indicator", lang)),
                     alt.Tooltip("nam:O", title=t("year", lang)),
                     alt.Tooltip("gia_tri_thuc_te:Q", title=t("actual", lang), format=",.1f"),
                     alt.Tooltip("gia_tri_muc_tieu:Q", title=t("target", lang), format=",.1f")])
        actual = base.mark_line(point=True, color=ui.COLORS["actual"]).encode(
            y=alt.Y("gia_tri_thuc_te:Q", title="%", axis=alt.Axis(format=",~f")))
        target = base.mark_rule(strokeDash=[4, 3], color=ui.COLORS["target"]).encode(y="gia_tri_muc_tieu:Q")
        chart = alt.layer(actual, target).properties(height=140, width=220).facet(
            facet=alt.Facet(f"{name_col}:N", title=None, header=alt.Header(labelLimit=220)), columns=3)
        st.altair_chart(ui.vn_chart(chart.resolve_scale(y="independent"), lang))

# --- Most at risk ----------------------------------------------------------------------------------------------
@st.fragment(key="tq_risk")
def most_at_risk() -> None:
    filters = ui.current_filters(version)
    st.subheader(t("risk_title", lang))
    if has_data(version, lang, ["marts.ho_so_nguy_co_qua_han"], "risk_title"):
        risks = data.at_risk(version, filters.agencies, filters.fields, 15)
        ui.table(risks, "ho_so_nguy_co", lang, version, percent=("xac_suat_qua_han",), key="overview_risk",
                 labels={"ma_ho_so": t("dossier", lang), "co_quan": t("agency", lang),
                         "ngay_hen_tra": t("due", lang), "xac_suat_qua_han": t("risk_prob", lang),
                         "linh_vuc": t("field", lang)})


most_at_risk()
