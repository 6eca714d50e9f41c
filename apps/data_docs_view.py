"""Great Expectations' Data Docs of the signed-in tenant, rendered in the page by our own code.

The Data Docs are no longer served as static files (any URL under Streamlit's static folder reached every
tenant's copy, whoever asked: issue 14). The quality page draws them here instead, after the caller checked
the "data-docs" grant, from the tenant's own validation results: the JSON GX writes per run, source and suite
into `TenantPaths.validations` (the same results GX renders into its HTML site). Nothing is read by a path the
browser names: the files are listed from the chosen tenant's folder, and the user picks one of those.

What a GX page shows, in Vietnamese or English: the suite, the run and its time, the outcome and its
statistics, then every expectation with its parameters, severity, result, rows checked and failed and the
observed value. Styled with Streamlit's own elements (no CDN: GX's HTML pulls Bootstrap and jQuery from
public CDNs and is unstyled offline). The site itself stays downloadable as a zip for engineers who want GX's
pages (`pipelines.quality.data_docs.site_zip`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from apps import components as ui
from apps import fmt
from apps.checks_text import check_text, severity_text

TEXT = {
    "docs_title": ("Data Docs (Great Expectations)", "Data Docs (Great Expectations)"),
    "docs_help": ("Kết quả kiểm tra dữ liệu của từng lần chạy, từng nguồn, như Data Docs của Great Expectations, "
                  "hiển thị ngay trong trang cho đơn vị đang chọn.",
                  "Each run's data checks per source, as Great Expectations' Data Docs show them, drawn in the "
                  "page for the chosen tenant."),
    "docs_none": ("Chưa có kết quả kiểm tra nào (bước validate chưa chạy cho đơn vị này).",
                  "No validation result yet (the validate step has not run for this tenant)."),
    "docs_pick": ("Kết quả kiểm tra", "Validation result"),
    "docs_suite": ("Bộ kỳ vọng", "Expectation suite"),
    "docs_run": ("Lần chạy", "Run"),
    "docs_at": ("Thời điểm kiểm tra", "Validated at"),
    "docs_ok": ("Đạt", "Succeeded"),
    "docs_failed": ("Không đạt", "Failed"),
    "docs_evaluated": ("Số kỳ vọng", "Expectations"),
    "docs_successful": ("Đạt", "Successful"),
    "docs_unsuccessful": ("Không đạt", "Unsuccessful"),
    "docs_percent": ("Tỷ lệ đạt", "Success rate"),
    "docs_check": ("Kỳ vọng", "Expectation"),
    "docs_column": ("Cột", "Column"),
    "docs_params": ("Tham số", "Parameters"),
    "docs_severity": ("Mức độ", "Severity"),
    "docs_result": ("Kết quả", "Result"),
    "docs_rows": ("Dòng kiểm tra", "Rows checked"),
    "docs_bad": ("Dòng không đạt", "Rows failed"),
    "docs_bad_pct": ("% không đạt", "% failed"),
    "docs_observed": ("Giá trị quan sát", "Observed value"),
    "docs_values": ("{n} giá trị cho phép", "{n} allowed values"),
    "docs_zip": ("Tải trang Data Docs gốc của GX (.zip)", "Download GX's own Data Docs site (.zip)"),
}


def _t(key: str, lang: str) -> str:
    vi, en = TEXT[key]
    return en if lang == "en" else vi


@st.cache_data(show_spinner=False, max_entries=64)
def _runs(folder: str, _stamp: tuple) -> list[dict]:
    """Every validation result in the tenant's folder (newest first): file name, suite, run, time, outcome and
    statistics. Cached per folder listing (`_stamp`: names and mtimes)."""
    out = []
    for path in Path(folder).glob("*.json"):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a file being written, or not a result: not listed
        meta = doc.get("meta") or {}
        run = meta.get("run_name") or path.stem
        out.append({"file": path.name, "suite": doc.get("suite_name") or "?", "run": run,
                    "validated_at": meta.get("validated_at") or "", "success": bool(doc.get("success")),
                    "statistics": doc.get("statistics") or {}})
    return sorted(out, key=lambda r: (r["validated_at"], r["file"]), reverse=True)


def list_runs(folder: Path) -> list[dict]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in folder.glob("*.json")))
    return _runs(str(folder), stamp)


def _params(kwargs: dict, lang: str) -> str:
    """An expectation's parameters in a few words (a long value set as its size, never its values)."""
    shown = []
    for key, value in kwargs.items():
        if key in ("batch_id", "column", "result_format"):
            continue
        if isinstance(value, list) and len(value) > 5:
            shown.append(_t("docs_values", lang).format(n=fmt.number(len(value), lang=lang)))
            continue
        if isinstance(value, float):
            value = fmt.number(value, 2, lang)
        shown.append(f"{key} = {value}")
    return "; ".join(shown)


def _observed(result: dict, lang: str) -> str:
    value = result.get("observed_value")
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt.number(value, 0 if float(value).is_integer() else 2, lang)
    return str(value)[:80]


def results_table(doc: dict, lang: str) -> pd.DataFrame:
    """One row per expectation of a validation result, labelled in `lang` (counts stay numbers)."""
    rows = []
    for r in doc.get("results") or []:
        cfg = r.get("expectation_config") or {}
        kwargs = cfg.get("kwargs") or {}
        res = r.get("result") or {}
        column = kwargs.get("column") or (f"{kwargs['column_A']}, {kwargs['column_B']}"
                                          if "column_A" in kwargs and "column_B" in kwargs else None)
        pct = res.get("unexpected_percent")
        rows.append({
            "check": check_text(cfg.get("type", ""), column, lang),
            "column": column or "",
            "params": _params(kwargs, lang),
            "severity": severity_text((cfg.get("meta") or {}).get("severity"), lang),
            "result": "✅" if r.get("success") else "❌",
            "rows": res.get("element_count"),
            "bad": res.get("unexpected_count"),
            "bad_pct": None if pct is None else pct / 100,
            "observed": _observed(res, lang),
        })
    df = pd.DataFrame(rows, columns=["check", "column", "params", "severity", "result", "rows", "bad", "bad_pct",
                                     "observed"])
    return df.astype({"rows": "Int64", "bad": "Int64", "bad_pct": "Float64"})


LABELS = {"check": "docs_check", "column": "docs_column", "params": "docs_params", "severity": "docs_severity",
          "result": "docs_result", "rows": "docs_rows", "bad": "docs_bad", "bad_pct": "docs_bad_pct",
          "observed": "docs_observed"}


def render(folder: Path, site: Path | None, lang: str, version, *, export: bool) -> None:
    """The Data Docs section of the quality page (the caller checked the "data-docs" grant): choose a
    validation result of this tenant, see it styled in the page; GX's own site as a zip for engineers."""
    from pipelines.quality import data_docs

    st.subheader(_t("docs_title", lang))
    st.caption(_t("docs_help", lang))
    runs = list_runs(folder)
    if not runs:
        st.info(_t("docs_none", lang))
        return
    by_file = {r["file"]: r for r in runs}

    def label(name: str) -> str:
        r = by_file[name]
        mark = "✅" if r["success"] else "❌"
        return f"{mark} {r['suite']} · {r['run']}"

    chosen = st.selectbox(_t("docs_pick", lang), list(by_file), format_func=label, key="dq_docs_run")
    run = by_file[chosen]
    doc = json.loads((Path(folder) / chosen).read_text(encoding="utf-8"))  # a name from the listing only
    stats = run["statistics"]
    with st.container(border=True):
        head, status = st.columns([4, 1])
        head.markdown(f"**{_t('docs_suite', lang)}:** `{run['suite']}`  \n"
                      f"**{_t('docs_run', lang)}:** {run['run']}  \n"
                      f"**{_t('docs_at', lang)}:** {_when(run['validated_at'])}")
        if run["success"]:
            status.success(_t("docs_ok", lang), icon=":material/check_circle:")
        else:
            status.error(_t("docs_failed", lang), icon=":material/cancel:")
        cols = st.columns(4)
        for col, key, value in zip(cols, ("docs_evaluated", "docs_successful", "docs_unsuccessful"),
                                   (stats.get("evaluated_expectations"), stats.get("successful_expectations"),
                                    stats.get("unsuccessful_expectations")), strict=False):
            col.metric(_t(key, lang), fmt.number(value, lang=lang))
        pct = stats.get("success_percent")
        cols[3].metric(_t("docs_percent", lang), fmt.percent(None if pct is None else pct / 100, 1, lang))
        table = results_table(doc, lang)
        ui.table(table, f"data_docs_{run['suite']}", lang, version, percent=("bad_pct",), key="dq_docs_table",
                 download=export, labels={k: _t(v, lang) for k, v in LABELS.items()})
    if site is not None and (site / "index.html").is_file():
        st.download_button(_t("docs_zip", lang), lambda: data_docs.site_zip(site), key="dq_docs_zip",
                           file_name=f"data_docs_{folder.parent.name}.zip", mime="application/zip")


def _when(value: str) -> str:
    from datetime import datetime

    try:
        return f"{datetime.fromisoformat(value.replace('Z', '+00:00')):%H:%M:%S %d/%m/%Y} UTC"
    except ValueError:
        return value
