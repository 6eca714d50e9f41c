"""Truy vấn SQL (SQL console, analysts and engineers): one SELECT at a time on the tenant's serving snapshot.

The statement runs in pipelines/access/console.py's sandbox (DuckDB's parser decides it is one SELECT; a
read-only, no-file-access, configuration-locked DuckDB over this tenant's snapshot only; time and row limits)
and every attempt is audited. Results in Vietnamese formats, downloadable (.xlsx / CSV) for roles with
"export"; queries saved per user and tenant; the data dictionary beside the editor.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from apps import fmt
from apps.auth import allowed, require, store
from apps.components import download_buttons
from apps.layout import language_picker
from pipelines.access import console
from pipelines.text import strip_diacritics

session = require("truy-van-sql")
console.prewarm()  # a worker process ready before the first query (pipelines/access/console_worker.py)
lang = language_picker()
tenant, user = session.tenant, session.user
limits = console.Limits.from_env()

TEXT = {
    "title": ("Truy vấn SQL", "SQL console"),
    "help": ("Chỉ đọc bản dữ liệu phục vụ của đơn vị {tenant}. Mỗi lần một câu lệnh SELECT (hoặc WITH); tối đa "
             "{rows} dòng và {secs} giây. Mọi truy vấn, kể cả bị từ chối, đều được ghi nhật ký.",
             "Reads only the serving snapshot of {tenant}. One SELECT (or WITH) statement at a time; at most "
             "{rows} rows and {secs} s. Every query, refused ones included, is logged."),
    "sql": ("Câu lệnh SQL", "SQL statement"),
    "run": ("Chạy", "Run"),
    "saved": ("Truy vấn đã lưu", "Saved queries"),
    "none": ("— chọn —", "— choose —"),
    "save_name": ("Tên truy vấn để lưu", "Name to save the query under"),
    "save": ("Lưu", "Save"),
    "delete": ("Xóa truy vấn đã chọn", "Delete the chosen query"),
    "saved_ok": ("Đã lưu «{name}».", "Saved '{name}'."),
    "dictionary": ("Từ điển dữ liệu", "Data dictionary"),
    "dict_search": ("Tìm bảng hoặc cột", "Find a table or column"),
    "no_dictionary": ("Bản dữ liệu chưa có từ điển dữ liệu.", "The snapshot has no data dictionary."),
    "rows": ("{rows} dòng · {secs} giây", "{rows} rows · {secs} s"),
    "truncated": ("Chỉ hiển thị {limit} dòng đầu tiên; hãy thêm điều kiện lọc, gộp nhóm hoặc LIMIT.",
                  "Only the first {limit} rows are shown; add filters, aggregate or use LIMIT."),
    "no_export": ("Vai trò của bạn không có quyền tải dữ liệu xuống.", "Your role may not download data."),
    "bang": ("Bảng", "Table"), "mo_ta_bang": ("Mô tả bảng", "Table description"),
    "column_name": ("Cột", "Column"), "data_type": ("Kiểu", "Type"), "mo_ta_cot": ("Mô tả cột", "Description"),
}


def _t(key: str) -> str:
    vi, en = TEXT[key]
    return en if lang == "en" else vi


@st.cache_data(show_spinner=False, max_entries=16)
def dictionary(tenant: str, version: int) -> pd.DataFrame:  # version: the snapshot's mtime (a new one reloads)
    return console.read_dictionary(tenant)


def _load_saved() -> None:
    name = st.session_state.get("console_saved")
    queries = store().saved_queries(user, tenant)
    if name in queries:
        st.session_state["console_sql"] = queries[name]
        st.session_state["console_save_name"] = name


def show(frame: pd.DataFrame) -> None:
    """The result with Vietnamese number/date formats (numbers stay numbers: sorting works)."""
    formats = {}
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_bool_dtype(series):
            continue
        if pd.api.types.is_integer_dtype(series):
            formats[name] = lambda v: "" if pd.isna(v) else fmt.number(v, 0, lang)
        elif pd.api.types.is_float_dtype(series):
            formats[name] = lambda v: "" if pd.isna(v) else fmt.number(v, 2, lang)
        elif pd.api.types.is_datetime64_any_dtype(series):
            formats[name] = lambda v: "" if pd.isna(v) else fmt.day(v, lang)
    st.dataframe(frame.style.format(formats) if formats else frame, hide_index=True, width="stretch")


st.title(_t("title"))
st.caption(_t("help").format(tenant=tenant, rows=fmt.number(limits.rows, 0, lang), secs=f"{limits.seconds:g}"))

editor, side = st.columns([3, 2], gap="large")
with editor:
    saved = store().saved_queries(user, tenant)
    if saved:
        st.selectbox(_t("saved"), [None, *saved], key="console_saved", on_change=_load_saved,
                     format_func=lambda n: _t("none") if n is None else n)
    sql = st.text_area(_t("sql"), key="console_sql", height=220,
                       placeholder="SELECT ma_xa, sum(n_tiep_nhan) FROM marts.ho_so_thu_tuc_tuan GROUP BY 1")
    run_col, name_col, save_col = st.columns([1, 3, 1], vertical_alignment="bottom")
    run = run_col.button(_t("run"), type="primary", key="console_run", icon=":material/play_arrow:")
    save_name = name_col.text_input(_t("save_name"), key="console_save_name")
    if save_col.button(_t("save"), key="console_save", icon=":material/bookmark_add:") and save_name.strip():
        store().save_query(user, tenant, save_name, sql)
        st.toast(_t("saved_ok").format(name=save_name.strip()))
    chosen = st.session_state.get("console_saved")
    if saved and chosen in saved and st.button(_t("delete"), key="console_delete", icon=":material/delete:"):
        store().delete_query(user, tenant, chosen)
        st.session_state.pop("console_saved", None)
        st.rerun()

with side:
    st.subheader(_t("dictionary"))
    snapshot = console.snapshot_of(tenant)
    words = dictionary(tenant, snapshot.stat().st_mtime_ns if snapshot.exists() else 0)
    if words.empty:
        st.caption(_t("no_dictionary"))
    else:
        needle = strip_diacritics(st.text_input(_t("dict_search"), key="console_dict_search")).casefold().strip()
        if needle:
            hay = words.fillna("").astype(str).agg(" ".join, axis=1).map(lambda s: strip_diacritics(s).casefold())
            words = words[hay.str.contains(needle, regex=False)]
        st.dataframe(words.rename(columns={c: _t(c) for c in words.columns if c in TEXT}), hide_index=True,
                     height=420, width="stretch")

if run:
    with st.spinner("…"):
        result = console.run_query(sql, user=user, tenant=tenant, limits=limits)
    st.session_state["console_result"] = (user, tenant, result)

kept = st.session_state.get("console_result")
if kept is not None and kept[:2] == (user, tenant):  # never another user's or tenant's result
    result = kept[2]
    if result.frame is not None:
        st.success(_t("rows").format(rows=fmt.number(result.rows, 0, lang),
                                     secs=fmt.number(result.duration_ms / 1000, 2, lang)))
        if result.status == "truncated":
            st.warning(_t("truncated").format(limit=fmt.number(limits.rows, 0, lang)))
        show(result.frame)
        if allowed("export", session):
            download_buttons(result.frame, "truy_van_sql", lang, key="console")
        else:
            st.caption(_t("no_export"))
    else:
        st.error(result.message(lang))
