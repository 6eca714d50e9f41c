"""Building blocks every page shares: the filter bar, tables with downloads, charts with Vietnamese formats.

API (for page authors; see also apps/layout.py for `page_header`, `has_data`, `current_lang`):

- `filter_bar(version, lang, *, communes=True) -> Filters` — period, agency, field, commune in the sidebar,
  options from the snapshot (`data.filter_options`), kept in `st.session_state` and mirrored in the URL
  (`?period=2025-Q3&agency=…&field=…&commune=<code>`), so a view is a shareable link and survives a page change.
  `Filters.start` / `.end` (Monday of the first / last week, inclusive; None = open), `.agencies`, `.fields`,
  `.communes` (commune codes) are tuples ready for `data.*(version, **f.query())`;
  `f.comparison()` gives (this period, previous period) for "what changed"; `f.describe(lang)` a sentence.
- `table(df, name, lang, *, labels=None, percent=(), dates=(), decimals=None, key=None, **dataframe_kwargs)`
  — st.dataframe with human column labels (data dictionary, then `labels`), Vietnamese number/date/percent
  display (numbers stay numbers: sorting works), and `download_buttons` under it. Returns the st.dataframe
  result (its `.selection` when `on_select` is given).
- `download_buttons(df, name, lang)` — .xlsx (openpyxl; cells starting with = + - @ tab CR prefixed with ')
  and CSV (UTF-8 with BOM), drawn only for roles with "export" (apps/auth.py). `xlsx_bytes(sheets)` /
  `csv_bytes(df)` are the pure functions behind them.
- `COLORS` / `series_scale(keys, lang)` — one colour per measure on every chart (received, returned, overdue,
  forecast, backlog…); `vn_chart(chart, lang)` — applies the Vietnamese number/time locale to an Altair chart
  (axes and tooltips: 1.234,5 and dd/mm/yyyy); `line_chart(df, x, series, lang, …)` builds the usual one
  as a Vega-Lite spec for `st.vega_lite_chart` (no Altair: see its docstring).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import date, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from apps import data, fmt
from apps.i18n import t

# --- Filters ---------------------------------------------------------------------------------------------------

FILTER_PARAMS = ("period", "agency", "field", "commune")  # URL parameter names, in this order


@dataclass(frozen=True)
class Filters:
    period: str = "all"  # "all" | "2025" | "2025-Q3" | "2025-10"
    agencies: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    communes: tuple[str, ...] = ()  # commune codes (ma_xa); names from data.filter_options
    last_week: date | None = None  # the snapshot's last week with data ("all" compares its month)

    @property
    def start(self) -> date | None:
        return period_bounds(self.period)[0]

    @property
    def end(self) -> date | None:
        return period_bounds(self.period)[1]

    def query(self, *, communes: bool = True) -> dict:
        """Keyword arguments for the data functions: start, end, agencies, fields (and communes)."""
        out = {"start": self.start, "end": self.end, "agencies": self.agencies, "fields": self.fields}
        if communes:
            out["communes"] = self.communes
        return out

    def comparison(self) -> tuple[Filters, Filters | None]:
        """(this period, the one before) — a month, quarter or year before; with "all", the last month with
        data against the month before it."""
        current = self
        if self.period == "all":
            if self.last_week is None:
                return self, None
            current = replace(self, period=f"{self.last_week:%Y-%m}")
        previous = previous_period(current.period)
        return current, (None if previous is None else replace(current, period=previous))

    def describe(self, lang: str, communes: dict[str, str] | None = None) -> str:
        parts = [period_label(self.period, lang)]
        for key, values in (("agency", self.agencies), ("field", self.fields)):
            if values:
                parts.append(f"{t(key, lang)}: {', '.join(values)}")
        if self.communes:
            names = [(communes or {}).get(c, c) for c in self.communes]
            parts.append(f"{t('commune', lang)}: {', '.join(names)}")
        return " · ".join(parts)


def period_bounds(period: str) -> tuple[date | None, date | None]:
    """Inclusive bounds on the week's Monday: "2025" → 1/1–31/12, "2025-Q3" → 1/7–30/9, "2025-10" → 1–31/10."""
    if period == "all":
        return None, None
    year = int(period[:4])
    if len(period) == 4:
        return date(year, 1, 1), date(year, 12, 31)
    if period[5] == "Q":
        q = int(period[6])
        first = date(year, 3 * q - 2, 1)
        return first, _month_end(year, 3 * q)
    month = int(period[5:7])
    return date(year, month, 1), _month_end(year, month)


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def previous_period(period: str) -> str | None:
    if period == "all":
        return None
    year = int(period[:4])
    if len(period) == 4:
        return str(year - 1)
    if period[5] == "Q":
        q = int(period[6])
        return f"{year - 1}-Q4" if q == 1 else f"{year}-Q{q - 1}"
    month = int(period[5:7])
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def period_label(period: str, lang: str) -> str:
    if period == "all":
        return t("period_all", lang)
    if len(period) == 4:
        return f"{t('year', lang)} {period}"
    if period[5] == "Q":
        return f"Quý {period[6]}/{period[:4]}" if lang == "vi" else f"Q{period[6]} {period[:4]}"
    return f"{t('month', lang)} {int(period[5:7])}/{period[:4]}" if lang == "vi" else f"{period[5:7]}/{period[:4]}"


def period_options(first: date | None, last: date | None) -> list[str]:
    """"all", then years, quarters and months from the newest, within the snapshot's weeks."""
    if first is None or last is None:
        return ["all"]
    months = pd.period_range(first, last, freq="M")[::-1]
    years = sorted({str(m.year) for m in months}, reverse=True)
    quarters = list(dict.fromkeys(f"{m.year}-Q{m.quarter}" for m in months))
    return ["all", *years, *quarters, *(f"{m.year}-{m.month:02d}" for m in months)]


_STATE = {"period": "flt_period", "agency": "flt_agency", "field": "flt_field", "commune": "flt_commune"}


def restore_filters_from_url() -> None:
    """At a session's first run (apps/main.py): the URL's filters become the session's. Values are checked
    against the snapshot's options when the filter bar renders (an unknown value is dropped, never queried)."""
    qp = st.query_params
    if "period" in qp:
        st.session_state[_STATE["period"]] = qp["period"]
    for key in ("agency", "field", "commune"):
        if key in qp:
            st.session_state[_STATE[key]] = list(qp.get_all(key))


def filters_to_url() -> None:
    """Write the session's filters into the URL (every run: a page change clears the URL's parameters)."""
    period = st.session_state.get(_STATE["period"], "all")
    _set_param("period", None if period == "all" else period)
    for key in ("agency", "field", "commune"):
        _set_param(key, list(st.session_state.get(_STATE[key], [])) or None)


def _set_param(name: str, value) -> None:
    current = st.query_params.get_all(name)
    if value is None:
        if current:
            del st.query_params[name]
        return
    wanted = value if isinstance(value, list) else [value]
    if current != wanted:
        st.query_params[name] = value


def _on_filter_change(key: str, reruns: tuple[str, ...] = ()) -> None:
    """A filter widget changed: keep its value, write the URL and the report's filters, then rerun only the
    page's fragments that depend on this filter (`reruns`, fragment keys) — the rest of the page (headline
    figures, scorecard, sidebar) stays as drawn. Without `reruns` the whole page reruns, as before."""
    st.session_state[_STATE[key]] = st.session_state[f"w_{key}"]
    filters_to_url()
    box = st.session_state.get(REPORT_FILTERS)
    if box is not None:
        box["filters"] = current_filters(data.snapshot_version())
    if reruns:
        st.rerun(list(reruns))


# The filters the meeting report's download uses (apps/report.py): a dict kept in session state, updated by a
# filter change even when only fragments rerun (the download's callable runs later, outside the script).
REPORT_FILTERS = "_report_filters"


def set_filter(key: str, values: list[str]) -> None:
    """Change one filter from code (e.g. a drill-down click, in a widget callback): state, widget and URL.
    The whole page reruns after the callback (the sidebar shows the new value, every part follows)."""
    st.session_state[_STATE[key]] = values
    st.session_state[f"w_{key}"] = values
    filters_to_url()


def filter_bar(version, lang: str, *, communes: bool = True,
               reruns: dict[str, tuple[str, ...]] | None = None) -> Filters:
    """The sidebar filters of an analytic page; returns the chosen Filters (see the module docstring).

    `reruns` (filter name → keys of the page's `st.fragment`s that depend on it): a change of that filter
    reruns only those fragments, which read `current_filters(version)`; the fragments must be rendered on
    every run of the page. A filter not named reruns the whole page."""
    reruns = reruns or {}
    opts = data.filter_options(version)
    periods = period_options(opts["first_week"], opts["last_week"])
    names = opts["communes"]
    choices = {"agency": opts["agencies"], "field": opts["fields"], "commune": list(names) if communes else []}
    # State from the URL or an earlier page, cleaned against this snapshot's options.
    period = st.session_state.get(_STATE["period"], "all")
    st.session_state[_STATE["period"]] = period = period if period in periods else "all"
    for key, allowed in choices.items():
        kept = [v for v in st.session_state.get(_STATE[key], []) if v in set(allowed)]
        st.session_state[_STATE[key]] = kept
    side = st.sidebar
    side.markdown(f"**{t('filters', lang)}**")
    # The widgets always start from the kept state (a widget's own state is dropped on a page change).
    st.session_state["w_period"] = period
    side.selectbox(t("period", lang), periods, key="w_period", format_func=lambda p: period_label(p, lang),
                   on_change=_on_filter_change, args=("period", tuple(reruns.get("period", ()))))
    labels = {"agency": t("agency", lang), "field": t("field", lang), "commune": t("commune", lang)}
    for key, allowed in choices.items():
        if key == "commune" and not communes:
            continue
        if not allowed:
            continue
        st.session_state[f"w_{key}"] = list(st.session_state[_STATE[key]])
        side.multiselect(labels[key], allowed, key=f"w_{key}", on_change=_on_filter_change,
                         args=(key, tuple(reruns.get(key, ()))),
                         format_func=(lambda c: names.get(c, c)) if key == "commune" else str,
                         placeholder=t("all_values", lang))
    filters_to_url()
    return Filters(period=period, agencies=tuple(st.session_state[_STATE["agency"]]),
                   fields=tuple(st.session_state[_STATE["field"]]),
                   communes=tuple(st.session_state[_STATE["commune"]]) if communes else (),
                   last_week=opts["last_week"])


def current_filters(version) -> Filters:
    """The session's filters without drawing the bar (the report; a fragment rerun after a filter change)."""
    opts = data.filter_options(version)
    return Filters(period=st.session_state.get(_STATE["period"], "all"),
                   agencies=tuple(st.session_state.get(_STATE["agency"], [])),
                   fields=tuple(st.session_state.get(_STATE["field"], [])),
                   communes=tuple(st.session_state.get(_STATE["commune"], [])), last_week=opts["last_week"])


# --- Tables and downloads --------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text cell a spreadsheet would run as a formula (= + - @ tab CR first) gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_bytes(df: pd.DataFrame) -> bytes:
    """CSV in UTF-8 with a BOM (Excel then shows Vietnamese correctly), formula-like text neutralised."""
    return df.map(neutralise).to_csv(index=False).encode("utf-8-sig")


def xlsx_bytes(sheets: list[tuple[str, pd.DataFrame]], *, percent: tuple[str, ...] = (),
               preamble: list[str] | None = None) -> bytes:
    """One workbook, one sheet per (title, table): bold header, number formats (#,##0 / #,##0.0 / 0.0% /
    dd/mm/yyyy — Excel shows them with the reader's separators, 1.234,5 in Vietnamese), column widths,
    formula-like text neutralised. `preamble`: lines written above each table (title, date, tenant)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for title, df in sheets:
        name = _sheet_name(title, used)
        ws = wb.create_sheet(name)
        row = 1
        for i, line in enumerate(preamble or []):
            ws.cell(row=row, column=1, value=neutralise(line)).font = Font(bold=i == 0, size=14 if i == 0 else 11)
            row += 1
        if preamble:
            row += 1
        write_table(ws, df, row, percent=percent)
        for col, name_ in enumerate(df.columns, start=1):
            values = [str(name_)] + [str(v) for v in df.iloc[:200, col - 1].tolist()]
            ws.column_dimensions[get_column_letter(col)].width = min(max(len(v) for v in values) + 2, 60)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_table(ws, df: pd.DataFrame, row: int, *, percent: tuple[str, ...] = ()) -> int:
    """Write `df` with its header at `row` of an openpyxl sheet; return the next free row."""
    from openpyxl.styles import Font, PatternFill

    for col, name in enumerate(df.columns, start=1):
        cell = ws.cell(row=row, column=col, value=neutralise(str(name)))
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    for values in df.itertuples(index=False):
        row += 1
        for col, (name, value) in enumerate(zip(df.columns, values, strict=True), start=1):
            cell = ws.cell(row=row, column=col, value=_excel_value(value))
            if name in percent and isinstance(cell.value, float):
                cell.number_format = "0.0%"
            elif isinstance(cell.value, bool):
                pass
            elif isinstance(cell.value, int):
                cell.number_format = "#,##0"
            elif isinstance(cell.value, float):
                cell.number_format = "#,##0.0"
            elif isinstance(cell.value, date):
                cell.number_format = "dd/mm/yyyy"
    return row + 1


def _excel_value(value):
    import math

    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT or value is pd.NA:
        return None  # pd.NA: a missing count in a nullable Int64 column
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
        return value.replace(tzinfo=None)
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, (list, tuple, dict)):
        value = ", ".join(map(str, value)) if not isinstance(value, dict) else str(value)
    return neutralise(value)


def _sheet_name(title: str, used: set[str]) -> str:
    clean = "".join(c for c in title if c not in '[]:*?/\\')[:28] or "Sheet"
    name, n = clean, 1
    while name in used:
        n += 1
        name = f"{clean[:25]} {n}"
    used.add(name)
    return name


def download_buttons(df: pd.DataFrame, name: str, lang: str, *, percent: tuple[str, ...] = (),
                     key: str | None = None) -> None:
    """Two buttons: the table as .xlsx and as CSV (UTF-8 with BOM). `df` should carry human column labels.
    Only for roles with "export" (analysts, engineers; issue 14): for the others nothing is drawn, and no
    file is built."""
    from apps.auth import allowed

    if not allowed("export"):
        return
    key = key or name
    left, right, _ = st.columns([1, 1, 4])
    left.download_button(t("download_xlsx", lang), lambda: xlsx_bytes([(name, df)], percent=percent),
                         file_name=f"{name}.xlsx", key=f"dl_xlsx_{key}", icon=":material/download:",
                         mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    right.download_button(t("download_csv", lang), lambda: csv_bytes(df), file_name=f"{name}.csv",
                          mime="text/csv", key=f"dl_csv_{key}", icon=":material/download:")


def human_columns(df: pd.DataFrame, version, lang: str, labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Rename columns to human labels: `labels` first, then the data dictionary, then the i18n text."""
    from apps.i18n import TEXT

    known = data.column_labels(version, lang)
    out = {}
    for c in df.columns:
        if labels and c in labels:
            out[c] = labels[c]
        elif c in TEXT:
            out[c] = t(c, lang)
        elif c in known:
            out[c] = known[c]
        else:
            out[c] = c
        while list(out.values()).count(out[c]) > 1:  # two columns never share a label
            out[c] = f"{out[c]} ({c})"
    shown = df.copy(deep=False)  # new labels on the same columns: rename() converted arrow text (~5 ms/table)
    shown.columns = [out[c] for c in df.columns]
    return shown


def table(df: pd.DataFrame, name: str, lang: str, version=None, *, labels: dict[str, str] | None = None,
          percent: tuple[str, ...] = (), decimals: dict[str, int] | None = None, key: str | None = None,
          download: bool = True, **kwargs):
    """Show a table with human labels and Vietnamese formats, and its downloads (see the module docstring).
    `percent` / `decimals` name the original columns."""
    shown = human_columns(df, version, lang, labels)
    renamed = dict(zip(df.columns, shown.columns, strict=True))
    formats = {}
    for original, label in renamed.items():
        series = df[original]
        if original in percent:
            formats[label] = lambda v: "" if pd.isna(v) else fmt.percent(v, 1, lang)
        elif pd.api.types.is_bool_dtype(series):
            continue
        elif pd.api.types.is_integer_dtype(series):
            formats[label] = lambda v: "" if pd.isna(v) else fmt.number(v, 0, lang)
        elif pd.api.types.is_float_dtype(series):
            d = (decimals or {}).get(original, 1)
            formats[label] = lambda v, d=d: "" if pd.isna(v) else fmt.number(v, d, lang)
        elif pd.api.types.is_datetime64_any_dtype(series) or (len(series) and isinstance(series.iloc[0], date)):
            formats[label] = lambda v: "" if v is None or pd.isna(v) else fmt.day(v, lang)
    # A Styler costs ~15 ms per table to marshal (pandas renders every cell's display text): only when a
    # column needs a Vietnamese format; text-only tables (e.g. the data dictionary's ~40) go as they are.
    result = st.dataframe(shown.style.format(formats) if formats else shown, hide_index=True, width="stretch",
                          key=key, **kwargs)
    if download:
        download_buttons(shown, name, lang, percent=tuple(renamed[p] for p in percent if p in renamed),
                         key=key or name)
    return result


# --- Charts ----------------------------------------------------------------------------------------------------

# One colour per measure, the same on every chart (Tableau-10 hues; overdue red, forecast purple).
COLORS = {
    "received": "#1f77b4", "returned": "#2ca02c", "overdue": "#d62728", "forecast": "#9467bd",
    "baseline": "#8c564b", "backlog": "#ff7f0e", "backlog_overdue": "#e377c2", "pending": "#17becf",
    "target": "#7f7f7f", "actual": "#1f77b4", "met": "#2ca02c", "not_met": "#d62728", "no_data": "#bcbd22",
    "fb_on_time": "#2ca02c", "fb_late": "#d62728",
}

VI_LOCALE = {
    "number": {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", " ₫"]},
    "time": {"dateTime": "%A, %e %B %Y, %X", "date": "%d/%m/%Y", "time": "%H:%M:%S",
             "periods": ["SA", "CH"],
             "days": ["Chủ nhật", "Thứ hai", "Thứ ba", "Thứ tư", "Thứ năm", "Thứ sáu", "Thứ bảy"],
             "shortDays": ["CN", "T2", "T3", "T4", "T5", "T6", "T7"],
             "months": [f"Tháng {m}" for m in range(1, 13)],
             "shortMonths": [f"Th{m}" for m in range(1, 13)]},
}
DATE_FORMAT = {"vi": "%d/%m/%Y", "en": "%Y-%m-%d"}


def series_scale(keys: list[str], lang: str) -> alt.Scale:
    """A colour scale over the translated names of `keys` (e.g. ["received", "returned", "overdue"])."""
    return alt.Scale(domain=[t(k, lang) for k in keys], range=[COLORS[k] for k in keys])


def vn_chart(chart, lang: str):
    """The chart with the language's number and time locale (axes, tooltips): 1.234,5 and dd/mm/yyyy in
    Vietnamese. Apply last (it configures the top-level chart)."""
    if lang == "vi":
        return chart.configure(locale=VI_LOCALE)
    return chart


def _json_value(value):
    """A cell as Vega-Lite reads it: dates as local ISO date-times, missing values as null, numpy as Python."""
    if value is None or value is pd.NaT or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (pd.Timestamp, date)):
        return f"{value:%Y-%m-%d}T00:00:00"  # local midnight: the day shown is the day meant, in any timezone
    return value.item() if hasattr(value, "item") else value


def line_chart(df: pd.DataFrame, x: str, series: list[str], lang: str, *, y_title: str | None = None,
               x_title: str | None = None, height: int = 300, band: tuple[str, str] | None = None,
               dashed: tuple[str, ...] = ()) -> dict:
    """Weekly lines of `series` (column names = COLORS keys) against date column `x`, with a shared legend,
    tooltips in the language's formats and an optional shaded band (low, high columns) in the first
    series' colour. Returns a Vega-Lite spec (with the language's locale) for `st.vega_lite_chart`.

    Written as a plain spec, not with Altair: Altair validates every chart against the Vega-Lite JSON schema
    and deep-copies it on `layer` (~50 ms per chart, the largest cost of a filter change; docs/performance.md);
    the few hundred weekly points go inline."""
    names = {k: t(k, lang) for k in series}
    s_name, x_title = t("series", lang), x_title or t("week", lang)
    y_title = y_title or t("count", lang)
    xs = [_json_value(v) for v in df[x]]
    values = [{x: xv, s_name: names[k], "value": _json_value(v)}
              for k in series for xv, v in zip(xs, df[k], strict=True)]
    x_enc = {"field": x, "type": "temporal", "title": x_title, "axis": {"format": DATE_FORMAT[lang]}}
    lines = {
        "data": {"values": values},
        "mark": {"type": "line", "point": len(df) < 30},
        "encoding": {
            "x": x_enc,
            "y": {"field": "value", "type": "quantitative", "title": y_title, "axis": {"format": ",~f"}},
            "color": {"field": s_name, "type": "nominal", "title": s_name,
                      "scale": {"domain": [names[k] for k in series], "range": [COLORS[k] for k in series]}},
            "strokeDash": {"field": s_name, "type": "nominal", "legend": None,
                           "scale": {"domain": [names[k] for k in series],
                                     "range": [[4, 3] if k in dashed else [1, 0] for k in series]}},
            "tooltip": [{"field": x, "type": "temporal", "title": x_title, "format": DATE_FORMAT[lang]},
                        {"field": s_name, "type": "nominal", "title": s_name},
                        {"field": "value", "type": "quantitative", "title": y_title, "format": ",.1~f"}]}}
    layers = [lines]
    if band is not None:
        low, high = band
        rows = [{x: xv, low: _json_value(a), high: _json_value(b)}
                for xv, a, b in zip(xs, df[low], df[high], strict=True)]
        layers.insert(0, {
            "data": {"values": rows},
            "mark": {"type": "area", "opacity": 0.2, "color": COLORS[series[0]]},
            "encoding": {
                "x": x_enc, "y": {"field": low, "type": "quantitative"}, "y2": {"field": high},
                "tooltip": [{"field": x, "type": "temporal", "title": x_title, "format": DATE_FORMAT[lang]},
                            {"field": low, "type": "quantitative", "title": t("forecast_low", lang),
                             "format": ",.1f"},
                            {"field": high, "type": "quantitative", "title": t("forecast_high", lang),
                             "format": ",.1f"}]}})
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v6.json", "height": height, "layer": layers}
    if lang == "vi":
        spec["config"] = {"locale": VI_LOCALE}
    return spec
