"""Bản đồ (map): the tenant's communes — or, for a ministry, the provinces — as a bubble map coloured and
sized by a chosen indicator, click a bubble (or choose below) for that unit's details.

No tile server and no download: the centroids come from `staging.dm_toa_do`, built from the installed
`vietnamadminunits` package when the pipeline runs; Altair draws them with a Mercator projection. Figures
are pre-aggregated per commune in SQL (apps/data.py: `map_communes`, `map_digital`, `map_provinces`).
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from apps import components, data, fmt
from apps.auth import require
from apps.i18n import TEXT, t
from apps.layout import has_data, page_header

require("ban-do")  # signed in, and this page allowed for the role in the chosen tenant
lang, version = page_header("map_title")
scope = data.tenant_scope(version)


def bubble_map(frame: pd.DataFrame, key_field: str, value: str, value_title: str, value_format: str,
               tooltip: list, selection_name: str, key: str):
    """A point map: one circle per unit at its centroid, colour and size by `value`, click selects `key_field`."""
    pick = alt.selection_point(fields=[key_field], name=selection_name, on="click", clear="dblclick")
    chart = (alt.Chart(frame).mark_circle(stroke="#333333", strokeWidth=0.4)
             .encode(longitude="kinh_do:Q", latitude="vi_do:Q",
                     color=alt.Color(f"{value}:Q", title=value_title, scale=alt.Scale(scheme="yelloworangered"),
                                     legend=alt.Legend(format=value_format)),
                     size=alt.Size(f"{value}:Q", title=value_title, legend=None, scale=alt.Scale(range=[20, 600])),
                     opacity=alt.condition(pick, alt.value(0.9), alt.value(0.35)),
                     tooltip=tooltip)
             .add_params(pick)
             .project(type="mercator")
             .properties(height=560))
    event = st.altair_chart(components.vn_chart(chart, lang), width="stretch", on_select="rerun", selection_mode=selection_name, key=key)
    points = (event.selection.get(selection_name) if event else None) or []
    return points[0].get(key_field) if points else None


def chooser(options: pd.DataFrame, code: str, clicked: str | None, label_key: str) -> str | None:
    """A select box of the units, preset to the clicked one: the keyboard way to the same details."""
    codes = [None, *options[code]]
    names = dict(zip(options[code], options["ten"], strict=True))
    index = codes.index(clicked) if clicked in names else 0
    return st.selectbox(f"{t('map_choose', lang)} ({t(label_key, lang).lower()})", codes, index=index,
                        format_func=lambda c: t("map_none_chosen", lang) if c is None else names[c],
                        key=f"choose_{code}_{clicked or ''}")


def tx(key: str) -> str:
    """Text of `key`, or for a digital-society component without a translation its readable code."""
    return TEXT[key][lang] if key in TEXT else key.removeprefix("xhs_").replace("_", " ")


def percent_or_dash(v) -> str:
    return fmt.percent(None if pd.isna(v) else float(v), 1, lang)


# --- a ministry: provinces ---------------------------------------------------------------------------------
if scope["kind"] != "province":
    if not has_data(version, lang, ["staging.dm_toa_do", "marts.tan_so_theo_tinh"], "map_what_province"):
        st.info(t("map_no_location", lang))
        st.stop()
    st.caption(t("map_ministry_note", lang) + " " + t("map_help_province", lang))
    provinces = data.map_provinces(version)
    measures = {"n_giay_phep": "licences", "n_con_hieu_luc": "licences_valid", "n_sap_het_han": "licences_expiring",
                "n_het_han": "licences_expired", "n_thu_hoi": "licences_revoked"}
    value = st.selectbox(t("map_indicator", lang), list(measures), format_func=lambda m: t(measures[m], lang))
    shown = provinces.assign(label=provinces[value].map(lambda v: fmt.number(v, lang=lang)))
    clicked = bubble_map(shown, "ma_tinh", value, t(measures[value], lang), ",d",
                         [alt.Tooltip("ten:N", title=t("province", lang)),
                          alt.Tooltip("label:N", title=t(measures[value], lang))], "tinh", "ban_do_tinh")
    chosen = chooser(provinces, "ma_tinh", clicked, "province")
    if chosen:
        row = provinces.set_index("ma_tinh").loc[chosen]
        st.subheader(t("map_detail", lang).format(name=row["ten"]))
        cols = st.columns(len(measures))
        for col, (m, label) in zip(cols, measures.items(), strict=True):
            col.metric(t(label, lang), fmt.number(int(row[m]), lang=lang))
        detail = data.province_licences(version, chosen)
        components.table(detail, f"giay_phep_{chosen}", lang, version,
                         labels={"loai_giay_phep": t("licence_kind", lang),
                                 **{m: t(label, lang) for m, label in measures.items()}})
    st.stop()

# --- a province: its communes --------------------------------------------------------------------------------
has_data(version, lang, ["staging.dm_toa_do", "marts.ho_so_thu_tuc_tuan"], "map_what", stop=True)
# The shared filters (period, agency, field, commune; kept in the URL): one chosen commune opens its details.
f = components.filter_bar(version, lang)
communes = data.map_communes(version, f.start, f.end, f.agencies, f.fields)
st.caption(f"{f.describe(lang)} · {t('map_help', lang)}")

indicators = {"n_tiep_nhan": ("n_ho_so", ",d", "count"), "ty_le_dung_han": ("on_time_rate", ".0%", "rate"),
              "n_dang_xu_ly": ("backlog", ",d", "count"), "n_dang_xu_ly_qua_han": ("pending_overdue", ",d", "count")}
digital = (data.map_digital(version) if "staging.xa_hoi_so" in data.tables(version)
           else pd.DataFrame(columns=["ma_xa", "thanh_phan", "ty_le_pct", "nam", "quy"]))
quarter = ""
if not digital.empty:
    quarter = t("map_quarter", lang).format(q=int(digital["quy"].iloc[0]), y=int(digital["nam"].iloc[0]))
    wide = digital.pivot_table(index="ma_xa", columns="thanh_phan", values="ty_le_pct").div(100)
    wide.columns = [f"xhs_{c}" for c in wide.columns]
    communes = communes.merge(wide, left_on="ma_xa", right_index=True, how="left")
    for column in wide.columns:
        indicators[column] = (column, ".0%", "rate")


def indicator_label(m: str) -> str:
    label = tx(indicators[m][0])
    return f"{t('digital_society', lang)}: {label} ({quarter})" if m.startswith("xhs_") else label


value = st.selectbox(t("map_indicator", lang), list(indicators), format_func=indicator_label, key="map_indicator")
key, axis_format, kind = indicators[value]
shown = communes.dropna(subset=[value]) if kind == "rate" else communes
shown = shown.assign(label=shown[value].map(percent_or_dash if kind == "rate" else
                                            (lambda v: fmt.number(v, lang=lang))),
                     received=shown["n_tiep_nhan"].map(lambda v: fmt.number(v, lang=lang)))
clicked = bubble_map(shown, "ma_xa", value, tx(key), axis_format,
                     [alt.Tooltip("ten:N", title=t("commune", lang)),
                      alt.Tooltip("label:N", title=indicator_label(value)),
                      alt.Tooltip("received:N", title=t("n_ho_so", lang))], "xa", "ban_do_xa")

chosen = chooser(communes, "ma_xa", clicked or (f.communes[0] if len(f.communes) == 1 else None), "commune")
if chosen:
    row = communes.set_index("ma_xa").loc[chosen]
    st.subheader(t("map_detail", lang).format(name=row["ten"]))
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric(t("n_ho_so", lang), fmt.number(int(row["n_tiep_nhan"]), lang=lang))
    c2.metric(t("on_time_rate", lang), percent_or_dash(row["ty_le_dung_han"]))
    c3.metric(t("backlog", lang), fmt.number(int(row["n_dang_xu_ly"]), lang=lang))
    c4.metric(t("pending_overdue", lang), fmt.number(int(row["n_dang_xu_ly_qua_han"]), lang=lang))
    c5.metric(t("map_area", lang), "—" if pd.isna(row["dien_tich_km2"])
              else f"{fmt.number(float(row['dien_tich_km2']), 1, lang)} km²")
    detail = data.commune_detail(version, chosen, f.start, f.end, f.agencies, f.fields)
    if detail.empty:
        st.info(t("map_no_dossier", lang))
    else:
        components.table(detail, f"ho_so_xa_{chosen}", lang, version, percent=("ty_le_dung_han",), labels={
            "co_quan": t("agency", lang), "linh_vuc": t("field", lang), "n_tiep_nhan": t("n_ho_so", lang),
            "n_da_tra": t("returned", lang), "ty_le_dung_han": t("on_time_rate", lang),
            "n_dang_xu_ly": t("backlog", lang), "n_dang_xu_ly_qua_han": t("pending_overdue", lang)})
    if not digital.empty:
        mine = digital[digital["ma_xa"] == chosen]
        if not mine.empty:
            st.markdown(f"**{t('digital_society', lang)} ({quarter})**")
            st.dataframe(pd.DataFrame({
                t("map_indicator", lang): [tx(f"xhs_{c}") for c in mine["thanh_phan"]],
                "%": [fmt.percent(v / 100, 1, lang) for v in mine["ty_le_pct"]]}), hide_index=True, width="stretch")
