"""Tổng quan (overview): headline KPIs and the weekly dossier chart, read from the serving snapshot."""

from __future__ import annotations

import altair as alt
import streamlit as st

from apps import data, fmt
from apps.i18n import t
from apps.layout import has_data, page_header

lang, version = page_header("title")
has_data(version, lang, ["marts.kpi_tong_quan", "marts.ho_so_tuan"], "dossier_kpis", stop=True)

st.caption(f"{data.tenant_name(version, lang)} · {t('data_as_of', lang)} "
           f"{fmt.day(data.kpis(version)['data_as_of'], lang)} · {t('snapshot_at', lang)} "
           f"{data.snapshot_info(version)['published_at']:%H:%M %d/%m/%Y}")

k = data.kpis(version)
c1, c2, c3, c4 = st.columns(4)
c1.metric(t("n_ho_so", lang), fmt.number(k["n_ho_so"], lang=lang))
c2.metric(t("on_time_rate", lang), fmt.percent(k["ty_le_dung_han"], lang=lang))
c3.metric(t("pending", lang), fmt.number(k["n_dang_xu_ly"], lang=lang))
c4.metric(t("pending_overdue", lang), fmt.number(k["n_dang_xu_ly_qua_han"], lang=lang))

st.subheader(t("weekly_chart", lang))
weekly = data.weekly(version).rename(columns={"received": t("received", lang), "returned": t("returned", lang),
                                              "overdue": t("overdue", lang)})
long = weekly.melt("tuan_bat_dau", var_name=t("series", lang), value_name=t("count", lang))
chart = (alt.Chart(long).mark_line()
         .encode(x=alt.X("tuan_bat_dau:T", title=t("week", lang), axis=alt.Axis(format="%d/%m/%Y")),
                 y=alt.Y(f"{t('count', lang)}:Q", axis=alt.Axis(format=",d")),
                 color=f"{t('series', lang)}:N")
         .properties(height=320))
if lang == "vi":
    alt.renderers.set_embed_options(formatLocale={"decimal": ",", "thousands": ".", "grouping": [3],
                                                  "currency": ["", " ₫"]})
st.altair_chart(chart, width="stretch")

st.subheader(t("risk_title", lang))
has_data(version, lang, ["marts.ho_so_nguy_co_qua_han"], "risk_title", stop=True)
risks = data.top_risks(version)
risks["ngay_hen_tra"] = risks["ngay_hen_tra"].map(lambda d: fmt.day(d, lang))
risks["xac_suat_qua_han"] = risks["xac_suat_qua_han"].map(lambda p: fmt.percent(p, 0, lang))
st.dataframe(risks.rename(columns={"ma_ho_so": t("dossier", lang), "co_quan": t("agency", lang),
                                   "ngay_hen_tra": t("due", lang), "xac_suat_qua_han": t("risk_prob", lang),
                                   "model_version": t("model_version", lang)}),
             hide_index=True, width="stretch")
