"""The one-click meeting report ("báo cáo giao ban"): the overview and a chosen page in one formatted .xlsx.

`build_report(version, lang, filters, page)` returns the workbook's bytes: a first sheet with the title, the
date it was made, the tenant, the data's date and the filters, the key figures against the previous period
and the digital-transformation scorecard; then one sheet per table of the chosen page. Numbers keep Excel
number formats (#,##0 / 0.0% / dd/mm/yyyy: shown 1.234 in a Vietnamese Excel), columns are sized.

Page sections: `SECTIONS[url_path] = function(version, lang, filters) -> [(title, DataFrame), …]` (human
column labels already). A page without a section adds nothing but the overview. `report_sidebar(pages)`
draws the page choice and the download button (apps/main.py calls it after the page).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime

import pandas as pd
import streamlit as st

from apps import data, fmt
from apps.components import REPORT_FILTERS, Filters, current_filters, human_columns, neutralise, write_table
from apps.i18n import t


def overview_kpis(version, lang: str, filters: Filters) -> pd.DataFrame:
    """Indicator, this period, previous period, change — the "what changed" figures under the filters."""
    current, previous = filters.comparison()
    now = data.dossier_totals(version, **current.query())
    before = data.dossier_totals(version, **previous.query()) if previous is not None else {}
    rows = []
    for key in ("received", "returned", "on_time_rate", "overdue", "pending"):
        a, b = now.get(key), before.get(key)
        a = None if pd.isna(a) else a
        b = None if b is None or pd.isna(b) else b
        rows.append({t("indicator", lang): t(key, lang), t("value", lang): a, t("previous", lang): b,
                     t("change", lang): None if a is None or b is None else a - b})
    return pd.DataFrame(rows)


def overview_scorecard(version, lang: str) -> pd.DataFrame | None:
    if "marts.chuyen_doi_so_chi_tieu" not in data.tables(version):
        return None
    return scorecard_table(version, lang)


@st.cache_data(show_spinner=False)  # per snapshot and language: a page calls it up to 3 times (~40 ms each)
def scorecard_rows(version, lang: str) -> pd.DataFrame:
    """One row per indicator of the scorecard: framework, group, name, unit, target, target year, latest
    year with data, actual, change on the year before, status (met / not_met / no_data) and the yearly
    actuals (`trend`, oldest first) — machine values, labelled by `scorecard_table`."""
    card = data.scorecard(version)
    rows = []
    for _code, g in card.groupby("ma_chi_tieu", sort=False):
        g = g.sort_values("nam", na_position="first")
        latest = g[g["is_nam_moi_nhat"].fillna(False)]
        last = latest.iloc[-1] if len(latest) else g.iloc[-1]
        has_actual = pd.notna(last["nam"])
        if not has_actual:
            status = "no_data"
        else:
            status = "met" if bool(last["is_dat"]) else "not_met"
        state_unit = last["don_vi"] == "trang_thai"
        target = (t("sc_issued", lang) if state_unit else last["gia_tri_muc_tieu"])
        actual = ((t("sc_issued", lang) if last["trang_thai_thuc_te"] == "da_ban_hanh" else last["trang_thai_thuc_te"])
                  if state_unit else last["gia_tri_thuc_te"])
        rows.append({"framework": last["khung"], "group": last["nhom"],
                     "name": last["ten_chi_tieu_en"] if lang == "en" and last["ten_chi_tieu_en"] else last["ten_chi_tieu"],
                     "unit": "" if state_unit else last["don_vi"], "target": target,
                     "target_year": last["nam_muc_tieu"], "year": last["nam"] if has_actual else None,
                     "actual": actual, "change": last["thay_doi_so_voi_nam_truoc"], "status": status,
                     "trend": [float(v) for v in g["gia_tri_thuc_te"].dropna()]})
    return pd.DataFrame(rows)


SCORECARD_LABELS = {"framework": "sc_framework", "group": "sc_group", "name": "indicator", "unit": "unit",
                    "target": "target", "target_year": "sc_target_year", "year": "sc_latest_year",
                    "actual": "actual", "change": "sc_change", "status": "sc_status", "trend": "sc_trend"}


def scorecard_table(version, lang: str) -> pd.DataFrame:
    """The scorecard with human labels and words for the status; the trend as "10,8 → 12,4 → …"."""
    df = scorecard_rows(version, lang)
    df["status"] = df["status"].map(lambda s: t(s, lang))
    df["trend"] = df["trend"].map(lambda vals: " → ".join(fmt.number(v, 1, lang) for v in vals))
    return df.rename(columns={k: t(v, lang) for k, v in SCORECARD_LABELS.items()})


def _thu_tuc(version, lang: str, f: Filters) -> list[tuple[str, pd.DataFrame]]:
    have = data.tables(version)
    out = []
    for by in ("agency", "field", "commune"):
        df = data.dossier_breakdown(version, by, **f.query())
        if df is not None:
            out.append((f"{t('tthc_performance', lang)} — {t(by, lang)}",
                        human_columns(df.drop(columns=["ma_xa"], errors="ignore"), version, lang)))
    if data.PROCEDURE_MART in have:
        procs = data.procedure_breakdown(version, **f.query())
        out.append((f"{t('tthc_performance', lang)} — {t('tthc_procedures', lang)}",
                    human_columns(procs, version, lang, {"ma_thu_tuc": t("tthc_procedure_code", lang),
                                                      "linh_vuc": t("field", lang)})))
    if "marts.du_bao_ho_so_tuan" in have:
        fc = data.inflow_forecast(version, f.agencies, f.fields)
        out.append((t("tthc_forecast", lang), human_columns(
            fc[["tuan_bat_dau", "forecast", "forecast_low", "forecast_high"]], version, lang)))
    if "marts.ho_so_nguy_co_qua_han" in have:
        out.append((t("tthc_risk", lang), human_columns(data.at_risk(version, f.agencies, f.fields, 100),
                                                          version, lang)))
    if "marts.can_bo_de_xuat" in have:
        out.append((t("tthc_staffing", lang), human_columns(data.staffing_plan(version), version, lang)))
    return out


SECTIONS: dict[str, Callable[..., list[tuple[str, pd.DataFrame]]]] = {"thu-tuc-hanh-chinh": _thu_tuc}

PERCENT_LABELS = ("xac_suat_qua_han", "ty_le_dung_han")  # rates: 0.0% in Excel


def build_report(version, lang: str, filters: Filters, page: str | None) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    opts = data.filter_options(version)
    wb = Workbook()
    ws = wb.active
    ws.title = t("nav_overview", lang)
    lines = [t("report_title", lang),
             f"{data.tenant_name(version, lang)}",
             f"{t('report_made', lang)}: {fmt.day(datetime.now(), lang)} · {t('data_as_of', lang)} "
             f"{fmt.day(opts['last_week'], lang) if opts['last_week'] is not None else '—'}",
             f"{t('report_filters', lang)}: {filters.describe(lang, opts['communes'])}"]
    for i, line in enumerate(lines, start=1):
        ws.cell(row=i, column=1, value=neutralise(line)).font = Font(bold=i == 1, size=14 if i == 1 else 11)
    row = len(lines) + 2
    known = data.column_labels(version, lang)
    percent = tuple({t("on_time_rate", lang), t("risk_prob", lang)} | {known[k] for k in PERCENT_LABELS if k in known})
    blocks: list[tuple[str, pd.DataFrame]] = []
    if "marts.ho_so_tuan" in data.tables(version) or "marts.ho_so_thu_tuc_tuan" in data.tables(version):
        blocks.append((t("report_kpis", lang), overview_kpis(version, lang, filters)))
    if (card := overview_scorecard(version, lang)) is not None:
        blocks.append((t("scorecard_title", lang), card))
    for title, df in blocks:
        ws.cell(row=row, column=1, value=title).font = Font(bold=True, size=12)
        row = write_table(ws, df, row + 1, percent=percent) + 1
    # The on-time rate row of the KPI table is a rate: give it a percent format.
    for cells in ws.iter_rows():
        if cells[0].value == t("on_time_rate", lang):
            for c in cells[1:]:
                if isinstance(c.value, float):
                    c.number_format = "0.0%"
    _widths(ws, get_column_letter)
    if page and page in SECTIONS:
        used = {ws.title}
        for title, df in SECTIONS[page](version, lang, filters):
            name = "".join(c for c in title if c not in '[]:*?/\\')[:31]
            while name in used:
                name = name[:28] + "…"
            used.add(name)
            sheet = wb.create_sheet(name)
            sheet.cell(row=1, column=1, value=neutralise(title)).font = Font(bold=True, size=12)
            sheet.cell(row=2, column=1, value=neutralise(filters.describe(lang, opts["communes"])))
            write_table(sheet, df, 4, percent=percent)
            _widths(sheet, get_column_letter)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _widths(ws, letter) -> None:
    widths: dict[int, int] = {}
    for cells in ws.iter_rows(min_row=1, max_row=min(ws.max_row, 300)):
        for c in cells:
            if c.value is not None and not (c.row <= 4 and c.column == 1):
                widths[c.column] = max(widths.get(c.column, 8), min(len(str(c.value)) + 2, 60))
    for col, width in widths.items():
        ws.column_dimensions[letter(col)].width = width


def report_sidebar(pages: list[tuple[str, str]]) -> None:
    """Sidebar: choose the page to add to the overview, download the report (built only when clicked)."""
    from apps.layout import current_lang

    version = data.snapshot_version()
    if version is None:
        return
    lang = current_lang()
    side = st.sidebar
    side.markdown(f"**{t('report', lang)}**")
    choices = [url for url, _ in pages if url in SECTIONS]
    titles = dict(pages)
    page = side.selectbox(t("report_page", lang), [None, *choices], key="report_page",
                          format_func=lambda u: t("report_none", lang) if u is None else titles[u])
    # The filters at click time: a filter change that reran only the page's fragments updates this box.
    box = st.session_state.setdefault(REPORT_FILTERS, {})
    box["filters"] = current_filters(version)
    side.download_button(t("report_download", lang), lambda: build_report(version, lang, box["filters"], page),
                         file_name=f"bao_cao_{data.tenant_id()}_{datetime.now():%Y%m%d}.xlsx",
                         mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         help=t("report_help", lang), icon=":material/summarize:", key="report_download")
