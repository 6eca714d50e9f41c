"""Thủ tục hành chính (administrative procedures): dossier performance with drill-down, the inflow forecast
against its baseline, backlog, the at-risk list and the staffing what-if — all under the filter bar.

Drill-down: province (every agency or commune) → one agency/commune (select its row: it becomes the filter,
so the URL carries it) → its procedures (national procedure code with its field, marts.ho_so_ma_thu_tuc_tuan)
→ one procedure's weeks (select its row).
Reads pre-aggregated marts only: ho_so_thu_tuc_tuan (or ho_so_tuan), ho_so_ma_thu_tuc_tuan, du_bao_ho_so_tuan,
du_bao_kiem_dinh, ho_so_ton_dong_tuan, ho_so_nguy_co_qua_han, can_bo_de_xuat / can_bo_qua_han_du_kien,
can_bo_mo_phong (the last quarter replayed with the staffing plan vs the roster); each part asks
`has_data`. Each part that follows the filters is an `st.fragment`: a filter change reruns only the parts that
depend on it (a period change: performance and backlog), never the forecast table or the staffing plan.
"""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from apps import components as ui
from apps import data, fmt
from apps.auth import require
from apps.i18n import TEXT, t
from apps.layout import has_data, page_header

require("thu-tuc-hanh-chinh")  # signed in, and this page allowed for the role in the chosen tenant
lang, version = page_header("tthc_title")
has_data(version, lang, ["marts.ho_so_tuan"], "tthc_performance", stop=True)
ALL_PARTS = ("tthc_perf", "tthc_forecast", "tthc_backlog", "tthc_risk", "tthc_staff")
filters = ui.filter_bar(version, lang, reruns={"period": ("tthc_perf", "tthc_backlog"),
                                               "commune": ("tthc_perf", "tthc_backlog"),
                                               "agency": ALL_PARTS, "field": ALL_PARTS[:4]})
have = data.tables(version)
opts = data.filter_options(version)
PERCENT = ("on_time_rate",)


# --- Performance with drill-down -------------------------------------------------------------------------------
def _drill(by: str) -> None:
    """Row selected at the province level: that agency/commune becomes the filter; the whole page follows."""
    rows = st.session_state["tthc_table"].selection.rows
    if rows:
        ui.set_filter(by, [st.session_state["_tthc_rows"][rows[0]]])
        st.session_state.pop("tthc_proc", None)
        st.rerun()


def _drill_up(by: str) -> None:
    ui.set_filter(by, [])
    st.session_state.pop("tthc_proc", None)
    st.rerun()


def _pick_procedure() -> None:
    rows = st.session_state["tthc_procs"].selection.rows
    st.session_state["tthc_proc"] = st.session_state["_tthc_proc_rows"][rows[0]] if rows else None


@st.fragment(key="tthc_perf")
def performance() -> None:
    filters = ui.current_filters(version)
    st.subheader(t("tthc_performance", lang))
    st.caption(t("tthc_viewing", lang).format(what=filters.describe(lang, opts["communes"])))
    levels = ["agency", "commune"] if "marts.ho_so_thu_tuc_tuan" in have else ["agency"]
    by = st.radio(t("tthc_by", lang), levels, horizontal=True, format_func=lambda k: t(k, lang), key="tthc_by")
    chosen = filters.agencies if by == "agency" else filters.communes
    if len(chosen) == 1:
        _procedures(filters, by, chosen[0])
    else:
        st.caption(t("tthc_level", lang).format(level=t("province", lang)) + " · " + t("tthc_drill", lang))
        breakdown = data.dossier_breakdown(version, by, **filters.query())
        st.session_state["_tthc_rows"] = list(breakdown["ma_xa" if by == "commune" else "co_quan"])
        shown = breakdown.drop(columns=["ma_xa"], errors="ignore")
        ui.table(shown, f"ket_qua_theo_{'co_quan' if by == 'agency' else 'xa'}", lang, version, percent=PERCENT,
                 key="tthc_table", on_select=partial(_drill, by), selection_mode="single-row")
    weekly = data.dossier_weekly(version, **filters.query())
    st.vega_lite_chart(ui.line_chart(weekly, "tuan_bat_dau", ["received", "returned", "overdue"], lang, height=260),
                    width="stretch")


def _procedures(filters, by: str, value: str) -> None:
    """One agency/commune chosen: its procedures; one procedure selected: its weeks."""
    name = value if by == "agency" else opts["communes"].get(value, value)
    st.caption(t("tthc_level", lang).format(level=f"{t('province', lang)} → {name} → {t('tthc_procedures', lang)}"))
    st.button(t("tthc_drill_up", lang).format(name=name), key="tthc_up", on_click=_drill_up, args=(by,))
    if not has_data(version, lang, [data.PROCEDURE_MART], "tthc_procedures"):
        ui.table(data.dossier_breakdown(version, "field", **filters.query()), "ket_qua_theo_linh_vuc", lang,
                 version, percent=PERCENT, key="tthc_fields")
        return
    procs = data.procedure_breakdown(version, **filters.query())
    st.session_state["_tthc_proc_rows"] = [(c, f) for c, f in zip(procs["ma_thu_tuc"], procs["linh_vuc"],
                                                                  strict=True)]
    st.caption(t("tthc_procedure_pick", lang))
    ui.table(procs, "ket_qua_theo_thu_tuc", lang, version, percent=PERCENT, key="tthc_procs",
             labels={"ma_thu_tuc": t("tthc_procedure_code", lang), "linh_vuc": t("field", lang)},
             on_select=_pick_procedure,
             selection_mode="single-row")
    picked = st.session_state.get("tthc_proc")
    if picked and tuple(picked) in set(st.session_state["_tthc_proc_rows"]):
        code, field = picked
        st.markdown("**" + t("tthc_procedure_weeks", lang).format(code=code, field=field, name=name) + "**")
        weeks = data.procedure_weekly(version, code, **{**filters.query(), "fields": (field,)})
        st.vega_lite_chart(ui.line_chart(weeks, "tuan_bat_dau", ["received", "returned", "overdue"], lang,
                                      height=220), width="stretch")


performance()


# --- Inflow forecast and its baseline --------------------------------------------------------------------------
@st.fragment(key="tthc_forecast")
def forecast() -> None:
    st.subheader(t("tthc_forecast", lang))
    if has_data(version, lang, ["marts.du_bao_ho_so_tuan", "marts.du_bao_kiem_dinh"], "tthc_forecast"):
        _forecast(ui.current_filters(version))


def _forecast(filters) -> None:
    fc = data.inflow_forecast(version, filters.agencies, filters.fields)
    history = data.dossier_weekly(version, agencies=filters.agencies, fields=filters.fields)
    origin = fc["tuan_goc"].iloc[0] if len(fc) else None
    past = history[history["tuan_bat_dau"] <= pd.Timestamp(origin)] if origin is not None else history
    baseline = float(past["received"].tail(4).mean()) if len(past) else None
    recent = past.tail(16)[["tuan_bat_dau", "received"]]
    frame = pd.concat([recent, fc[["tuan_bat_dau", "forecast", "forecast_low", "forecast_high"]]],
                      ignore_index=True)
    frame["tuan_bat_dau"] = pd.to_datetime(frame["tuan_bat_dau"])
    frame["baseline"] = frame["forecast"].where(frame["forecast"].isna(), baseline)
    st.caption(t("tthc_forecast_caption", lang).format(origin=fmt.day(origin, lang)))
    st.vega_lite_chart(ui.line_chart(frame, "tuan_bat_dau", ["forecast", "received", "baseline"], lang,
                                  band=("forecast_low", "forecast_high"), dashed=("baseline",), height=280),
                    width="stretch")
    ui.table(fc[["tuan_bat_dau", "tuan_truoc", "forecast", "forecast_low", "forecast_high"]], "du_bao_ho_so",
             lang, version, key="tthc_forecast_table")
    st.markdown(f"**{t('tthc_backtest', lang)}**")
    bt = data.forecast_backtest(version)
    bt["phuong_phap"] = bt["phuong_phap"].map(lambda m: t(f"m_{m}", lang) if f"m_{m}" in TEXT else m)
    ui.table(bt, "kiem_dinh_du_bao", lang, version, key="tthc_backtest", decimals={"mae": 3, "mape": 2},
             labels={"phuong_phap": t("method", lang), "mae": t("mae", lang), "mape": t("mape", lang),
                     "n_diem": t("n_points", lang)})


forecast()


# --- Backlog ---------------------------------------------------------------------------------------------------
@st.fragment(key="tthc_backlog")
def backlog() -> None:
    filters = ui.current_filters(version)
    st.subheader(t("tthc_backlog", lang))
    if has_data(version, lang, ["marts.ho_so_ton_dong_tuan"], "tthc_backlog"):
        weeks = data.backlog_weekly(version, filters.start, filters.end, filters.agencies, filters.fields)
        if filters.communes:
            st.caption(t("backlog_no_commune", lang))
        st.vega_lite_chart(ui.line_chart(weeks, "tuan_ket_thuc", ["backlog", "backlog_overdue"], lang, height=240),
                        width="stretch")


backlog()


# --- At-risk list ----------------------------------------------------------------------------------------------
@st.fragment(key="tthc_risk")
def at_risk() -> None:
    filters = ui.current_filters(version)
    st.subheader(t("tthc_risk", lang))
    if has_data(version, lang, ["marts.ho_so_nguy_co_qua_han"], "tthc_risk"):
        ui.table(data.at_risk(version, filters.agencies, filters.fields), "ho_so_nguy_co_qua_han", lang, version,
                 percent=("xac_suat_qua_han",), key="tthc_risk",
                 labels={"ma_ho_so": t("dossier", lang), "xac_suat_qua_han": t("risk_prob", lang),
                         "ngay_hen_tra": t("due", lang)})


at_risk()


# --- Staffing what-if ------------------------------------------------------------------------------------------
@st.fragment(key="tthc_staff")
def staffing() -> None:
    """The slider lives in this fragment: moving it reruns only the what-if."""
    st.subheader(t("tthc_staffing", lang))
    if has_data(version, lang, ["marts.can_bo_de_xuat", "marts.can_bo_qua_han_du_kien", "marts.du_bao_ho_so_tuan"],
                "tthc_staffing"):
        _staffing(ui.current_filters(version))


def _staffing(filters) -> None:
    plan = data.staffing_plan(version)
    total = int(plan["so_can_bo_hien_tai"].sum())
    headcount = st.slider(t("tthc_headcount", lang), min_value=max(len(plan), total // 2),
                          max_value=total * 2, value=total, key="tthc_headcount")
    a, b = st.columns(2)
    a.metric(f"{t('tthc_staff_published', lang)}: {t('tthc_staff_over', lang)}",
             fmt.number(plan["n_qua_han_du_kien_de_xuat"].sum(), 1, lang))
    try:
        alt_plan = data.staffing_what_if(version, headcount)
    except ValueError as exc:
        st.warning(t("tthc_staff_error", lang).format(error=exc))
        return
    b.metric(f"{t('tthc_staff_whatif', lang)} ({fmt.number(headcount, lang=lang)}): "
             f"{t('tthc_staff_over', lang)}", fmt.number(alt_plan["n_qua_han_du_kien_de_xuat"].sum(), 1, lang),
             fmt.number(alt_plan["n_qua_han_du_kien_de_xuat"].sum() - plan["n_qua_han_du_kien_de_xuat"].sum(),
                        1, lang), delta_color="inverse")
    merged = plan[["co_quan", "so_can_bo_hien_tai", "so_can_bo_de_xuat", "n_du_bao",
                   "n_qua_han_du_kien_de_xuat"]].merge(
        alt_plan[["co_quan", "so_can_bo_de_xuat", "n_qua_han_du_kien_de_xuat"]].rename(columns={
            "so_can_bo_de_xuat": "so_can_bo_gia_dinh",
            "n_qua_han_du_kien_de_xuat": "n_qua_han_du_kien_gia_dinh"}), on="co_quan", how="outer")
    if filters.agencies:
        merged = merged[merged["co_quan"].isin(filters.agencies)]
    ui.table(merged, "bo_tri_can_bo", lang, version, key="tthc_staff")


staffing()


# --- Overdue risk: reliability diagram (models/overdue_risk.py, marts.do_tin_cay_rui_ro) -------------------------
TEXT.update({
    "tthc_reliability": {"vi": "Độ tin cậy của xác suất quá hạn", "en": "Reliability of the overdue probability"},
    "reliability_predicted": {"vi": "Xác suất dự báo", "en": "Predicted probability"},
    "reliability_realised": {"vi": "Tỷ lệ quá hạn thực tế", "en": "Realised late share"},
    "reliability_n": {"vi": "Số hồ sơ", "en": "Dossiers"},
    "reliability_help": {"vi": "Hồ sơ đang xử lý tại các ngày kiểm tra gần nhất, chấm theo khoảng xác suất: điểm "
                               "nằm trên đường chéo nghĩa là xác suất dự báo khớp với tỷ lệ quá hạn thực tế.",
                         "en": "Dossiers open at the latest check dates, grouped by probability band: a dot on the "
                               "diagonal means the predicted probability matched the share that went late."},
})


def reliability() -> None:
    st.subheader(t("tthc_reliability", lang))
    if not has_data(version, lang, ["marts.do_tin_cay_rui_ro"], "tthc_reliability"):
        return
    table = data.risk_reliability(version)
    st.caption(t("reliability_help", lang))
    x, y, n = t("reliability_predicted", lang), t("reliability_realised", lang), t("reliability_n", lang)
    points = [{x: float(r.xac_suat_du_bao), y: float(r.ty_le_thuc_te), n: int(r.n_ho_so)} for r in table.itertuples()]
    axis = {"format": ".0%"}
    spec = {"height": 280, "layer": [
        {"data": {"values": [{x: 0.0, y: 0.0}, {x: 1.0, y: 1.0}]}, "mark": {"type": "line", "strokeDash": [4, 3],
                                                                          "color": "#888"},
         "encoding": {"x": {"field": x, "type": "quantitative"}, "y": {"field": y, "type": "quantitative"}}},
        {"data": {"values": points}, "mark": {"type": "circle", "opacity": 0.8},
         "encoding": {"x": {"field": x, "type": "quantitative", "title": x, "axis": axis, "scale": {"domain": [0, 1]}},
                      "y": {"field": y, "type": "quantitative", "title": y, "axis": axis, "scale": {"domain": [0, 1]}},
                      "size": {"field": n, "type": "quantitative", "title": n, "legend": {"format": ",d"}},
                      "tooltip": [{"field": x, "type": "quantitative", "format": ".1%"},
                                  {"field": y, "type": "quantitative", "format": ".1%"},
                                  {"field": n, "type": "quantitative", "format": ",d"}]}}]}
    if lang == "vi":
        spec["config"] = {"locale": ui.VI_LOCALE}
    st.vega_lite_chart(spec, width="stretch")


reliability()


# --- Staffing: the last quarter replayed with the plan vs the roster (models/staffing.py, marts.can_bo_mo_phong) --
TEXT.update({
    "tthc_staff_sim": {"vi": "Bố trí cán bộ: mô phỏng quý vừa qua", "en": "Staffing: the last quarter replayed"},
    "staff_sim_actual": {"vi": "Hồ sơ quá hạn với số cán bộ thực tế", "en": "Late dossiers with the actual roster"},
    "staff_sim_plan": {"vi": "Hồ sơ quá hạn với kế hoạch của mô hình", "en": "Late dossiers with the model's plan"},
    "staff_sim_officers": {"vi": "Cán bộ: thực tế / kế hoạch", "en": "Officers: actual / plan"},
    "staff_sim_help": {
        "vi": "Quý {start} – {end}: {n} hồ sơ, mô phỏng lại với cùng các hồ sơ và cùng tổng biên chế, chỉ khác cách "
              "bố trí cán bộ giữa các cơ quan (kế hoạch lập đầu quý). Số liệu ghi nhận: {recorded} hồ sơ quá hạn.",
        "en": "Quarter {start} – {end}: {n} dossiers replayed, the same dossiers and the same total headcount, only "
              "the officers placed differently (the plan made at the quarter's start). Recorded: {recorded} late."},
})


@st.cache_data(show_spinner=False)
def _staff_replay(version: str | None) -> pd.DataFrame:
    return data.query("""SELECT tu_ngay, den_ngay, co_quan, n_ho_so, so_can_bo_thuc_te, so_can_bo_ke_hoach,
                                n_qua_han_ghi_nhan, n_qua_han_thuc_te, n_qua_han_ke_hoach, la_tong
                         FROM marts.can_bo_mo_phong ORDER BY la_tong DESC, co_quan""")


def staffing_replay() -> None:
    st.subheader(t("tthc_staff_sim", lang))
    if not has_data(version, lang, ["marts.can_bo_mo_phong"], "tthc_staff_sim"):
        return
    table = _staff_replay(version)
    total = table[table["la_tong"]].iloc[0]
    a, b, c = st.columns(3)
    a.metric(t("staff_sim_actual", lang), fmt.number(int(total["n_qua_han_thuc_te"]), lang=lang))
    b.metric(t("staff_sim_plan", lang), fmt.number(int(total["n_qua_han_ke_hoach"]), lang=lang),
             fmt.number(int(total["n_qua_han_ke_hoach"] - total["n_qua_han_thuc_te"]), lang=lang),
             delta_color="inverse")
    c.metric(t("staff_sim_officers", lang), f"{fmt.number(int(total['so_can_bo_thuc_te']), lang=lang)} / "
             f"{fmt.number(int(total['so_can_bo_ke_hoach']), lang=lang)}")
    st.caption(t("staff_sim_help", lang).format(start=fmt.day(total["tu_ngay"], lang), end=fmt.day(total["den_ngay"], lang),
                                                n=fmt.number(int(total["n_ho_so"]), lang=lang),
                                                recorded=fmt.number(int(total["n_qua_han_ghi_nhan"]), lang=lang)))
    changed = table[~table["la_tong"] & ((table["so_can_bo_ke_hoach"] != table["so_can_bo_thuc_te"])
                                         | (table["n_qua_han_ke_hoach"] != table["n_qua_han_thuc_te"]))]
    ui.table(changed.drop(columns=["tu_ngay", "den_ngay", "la_tong"]), "mo_phong_can_bo", lang, version,
             key="tthc_staff_sim")


staffing_replay()
