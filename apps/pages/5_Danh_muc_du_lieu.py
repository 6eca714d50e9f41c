"""Danh mục dữ liệu (data catalogue): the tenant's databases (Decision 1437 fields), its published tables,
the data dictionary of every table and column, the shared data contracts — one search box over all of them,
accent-insensitive ("ho so" finds "hồ sơ") — and its open data.

Each section lives in its own module or block; this page only lays them out, so the open-data and
catalogue owners never edit the same lines.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from apps import components, data
from apps.auth import require
from apps.i18n import t
from apps.layout import has_data, page_header
from apps.open_data_view import render_open_data
from pipelines.text import strip_diacritics

require("danh-muc-du-lieu")  # signed in, and this page allowed for the role in the chosen tenant
lang, version = page_header("catalogue_title")


# --- Databases, datasets, data dictionary, contracts (searchable) ------------------------------------------
def folded(text: str) -> str:
    return strip_diacritics(text or "").casefold()


def matching(frame: pd.DataFrame, columns: list[str], needle: str) -> pd.DataFrame:
    """Rows whose `columns` contain `needle` (spaces collapsed), ignoring case and Vietnamese accents."""
    phrase = " ".join(folded(needle).split())
    if not phrase or frame.empty:
        return frame
    haystack = frame[columns].map(lambda v: "" if v is None or v != v else str(v)).agg(" ".join, axis=1).map(folded)
    return frame[haystack.map(lambda text: phrase in " ".join(text.split()))]


needle = st.text_input(t("cat_search", lang), key="catalogue_search")


def section(title_key: str, frame: pd.DataFrame, columns: list[str], name: str, labels: dict[str, str],
            **kwargs) -> None:
    found = matching(frame, columns, needle)
    st.subheader(f"{t(title_key, lang)} ({t('cat_found', lang).format(n=len(found))})")
    if found.empty:
        st.caption(t("cat_nothing", lang).format(q=needle) if needle else "—")
        return
    components.table(found, name, lang, version, labels=labels, key=f"cat_{name}", **kwargs)


if has_data(version, lang, ["marts.danh_muc_csdl"], "cat_databases_what"):
    section("cat_databases", data.databases(version),
            ["ma_csdl", "ten_csdl", "ten_phan_loai", "muc_dich", "co_quan_chu_quan", "nguon"], "danh_muc_csdl", {
                "ma_csdl": t("cat_code", lang), "ten_csdl": t("cat_name", lang),
                "ten_phan_loai": t("cat_class", lang), "muc_dich": t("cat_purpose", lang),
                "pham_vi": t("cat_scope", lang), "nguon": t("cat_sources", lang),
                "co_quan_chu_quan": t("cat_owner", lang), "danh_muc_mo": t("cat_open", lang),
                "danh_muc_chia_se": t("cat_shared", lang), "trang_thai": t("cat_status", lang),
                "lo_trinh": t("cat_roadmap", lang)})

if has_data(version, lang, ["marts.danh_muc_du_lieu"], "cat_datasets"):
    section("cat_datasets", data.datasets(version), ["ten_bang", "mo_ta", "ten_csdl", "co_quan_chu_quan"],
            "danh_muc_du_lieu", {
                "tang": t("cat_layer", lang), "ten_bang": t("cat_table", lang), "mo_ta": t("cat_description", lang),
                "loai_nguon": t("cat_source_kind", lang), "ten_csdl": t("cat_database", lang),
                "co_quan_chu_quan": t("cat_owner", lang), "is_co_du_lieu_ca_nhan": t("cat_personal", lang),
                "muc_tiep_can": t("cat_access", lang)})

if has_data(version, lang, ["meta.data_dictionary"], "cat_dictionary"):
    dictionary = data.data_dictionary(version)
    description = "table_description_vi" if lang == "vi" else "table_description_en"
    found = matching(dictionary, ["bang", "table_description_vi", "table_description_en", "column_name",
                                  "column_description"], needle)
    n_tables = found["bang"].nunique()
    st.subheader(f"{t('cat_dictionary', lang)} ({t('cat_found', lang).format(n=n_tables)})")
    st.caption(t("cat_dictionary_help", lang))
    if found.empty:
        st.caption(t("cat_nothing", lang).format(q=needle))
    for table, columns in found.groupby("bang", sort=True):
        first = columns.iloc[0]
        with st.expander(f"{table} — {first[description] or ''} · "
                         f"{t('cat_n_columns', lang).format(n=len(columns))}", expanded=bool(needle) and n_tables <= 3):
            if first["grain"] or first["owner"]:
                st.caption(f"{t('cat_grain', lang)}: {first['grain'] or '—'} · {t('cat_owner', lang)}: "
                           f"{first['owner'] or '—'}")
            components.table(columns[["column_name", "data_type", "column_description"]], f"tu_dien_{table}", lang,
                             version, key=f"dict_{table}", labels={
                                 "column_name": t("cat_column", lang), "data_type": t("cat_type", lang),
                                 "column_description": t("cat_description", lang)})
    if not found.empty:  # the whole (filtered) dictionary in one file
        components.download_buttons(found.rename(columns={
            "bang": t("cat_table", lang), "column_name": t("cat_column", lang), "data_type": t("cat_type", lang),
            "column_description": t("cat_description", lang)}), "tu_dien_du_lieu", lang, key="dict_all")

if has_data(version, lang, ["meta.data_contracts"], "cat_contracts"):
    contracts = data.data_contracts(version)
    description = "description_vi" if lang == "vi" else "description_en"
    section("cat_contracts", contracts.drop(columns=["description_en" if lang == "vi" else "description_vi"]),
            ["contract", "column_name", description, "fed_by"], "hop_dong_du_lieu", {
                "contract": t("cat_contract", lang), "version": t("cat_version", lang),
                "column_name": t("cat_column", lang), "data_type": t("cat_type", lang),
                "is_required": t("cat_required", lang), "personal": t("cat_personal_kind", lang),
                "allowed_values": t("cat_allowed", lang), description: t("cat_description", lang),
                "fed_by": t("cat_fed_by", lang)})

# --- Open data: progress against the plan, refusals (apps/open_data_view.py) ------------------------------
render_open_data(lang)
# --- end of the open-data section ----------------------------------------------------------------------------
