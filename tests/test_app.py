"""The app (apps/main.py with st.navigation) renders from the serving snapshot, Vietnamese first, English on
the toggle; filters round-trip through the URL; downloads are valid; the ministry sees explanations.

One snapshot per tenant per module (module fixtures below), every test reads it through AppTest."""

from __future__ import annotations

import io
import json

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from apps import components, fmt
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import project_path
from tests.security.signin import make_user, sign_in

pytestmark = pytest.mark.integration
MAIN = str(project_path("apps", "main.py"))
THU_TUC = "pages/3_Thu_tuc_hanh_chinh.py"
MINISTRY = "bo-khoa-hoc-cong-nghe"


@pytest.mark.parametrize(("value", "decimals", "vi", "en"), [
    (1234567.5, 1, "1.234.567,5", "1,234,567.5"),  # Vietnamese swaps the separators
    (3000, 0, "3.000", "3,000"),
    (None, 0, "—", "—"),
])
def test_number_formats(value, decimals, vi, en):
    assert fmt.number(value, decimals, "vi") == vi
    assert fmt.number(value, decimals, "en") == en


def test_downloads_are_valid_and_neutralise_formulas():
    from openpyxl import load_workbook

    df = pd.DataFrame({"Tên": ["=cmd|' /C calc'!A0", "+1", "-x", "@SUM(A1)", "\tx", "Hà Nội"],
                       "Số": [1234, 2, 3, 4, 5, 6], "Tỷ lệ": [0.5, 0.25, 0.1, 0.0, 1.0, 0.75]})
    wb = load_workbook(io.BytesIO(components.xlsx_bytes([("Bảng", df)], percent=("Tỷ lệ",))))
    ws = wb["Bảng"]
    assert [c.value for c in ws[1]] == ["Tên", "Số", "Tỷ lệ"]
    assert ws["A2"].value == "'=cmd|' /C calc'!A0" and ws["A2"].data_type == "s"  # text, never a formula
    assert [ws[f"A{r}"].value for r in range(3, 8)] == ["'+1", "'-x", "'@SUM(A1)", "'\tx", "Hà Nội"]
    assert ws["B2"].value == 1234 and ws["B2"].number_format == "#,##0"
    assert ws["C2"].number_format == "0.0%"
    raw = components.csv_bytes(df)
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel shows Vietnamese
    text = raw.decode("utf-8-sig")
    assert "Hà Nội" in text and "'=cmd" in text and "\n=cmd" not in text


@pytest.fixture(scope="module")
def province_snapshot(tmp_path_factory, demo_sources, demo_portals):
    """The demo province (3,000 dossiers, every mart incl. models) run once into a module home."""
    import shutil

    from pipelines.config import load_tenant
    from pipelines.demo.servers import PORT_ENV, TOKEN_ENV
    from tests.conftest import DEMO_LGSP_TOKEN, DEMO_TENANT

    home = tmp_path_factory.mktemp("province_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGHOP_HOME", str(home))
        mp.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
        mp.setenv("GX_ANALYTICS_ENABLED", "false")
        mp.setenv(PORT_ENV, str(demo_portals.server_address[1]))
        mp.setenv(TOKEN_ENV, DEMO_LGSP_TOKEN)
        shutil.copytree(demo_sources, TenantPaths.for_tenant(DEMO_TENANT).ensure().sources, dirs_exist_ok=True)
        assert run(load_tenant(DEMO_TENANT), run_id="app").ok
    return home


@pytest.fixture
def province(province_snapshot, monkeypatch):
    monkeypatch.setenv("TONGHOP_HOME", str(province_snapshot))
    monkeypatch.setenv("TONGHOP_TENANT", "ninh-binh")
    return duckdb.connect(str(TenantPaths.for_tenant("ninh-binh").snapshot), read_only=True)


def _app(query: dict | None = None, role: str = "ky_thuat", tenant: str = "ninh-binh") -> AppTest:
    """apps/main.py after a new user with `role` on `tenant` signed in through the real form (tests/security/
    signin.py); `query` is the URL's query string the session starts with (a shared link)."""
    name, password = make_user(role, tenant)
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params.update(query or {})
    return sign_in(at.run(), name, password)


def _first(at) -> dict[str, str]:
    """Metric label -> value, the first (headline) one when the what-changed row repeats a label."""
    out: dict[str, str] = {}
    for m in at.metric:
        out.setdefault(m.label, m.value)
    return out


def _ok(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_menu_lists_the_pages_with_vietnamese_titles(province):
    from apps.layout import registered_pages

    titles = [title for _, title, _, _ in registered_pages()]
    assert titles[:2] == ["Tổng quan", "Thủ tục hành chính"]
    assert "Chất lượng dữ liệu" in titles and "Danh mục dữ liệu" in titles


def test_overview_page_from_snapshot(province):
    n_ho_so, rate = province.execute("SELECT n_ho_so, ty_le_dung_han FROM marts.kpi_tong_quan").fetchone()
    n_met, n_ind = province.execute("SELECT count(DISTINCT ma_chi_tieu) FILTER (WHERE is_dat AND is_nam_moi_nhat), "
                                    "count(DISTINCT ma_chi_tieu) FROM marts.chuyen_doi_so_chi_tieu").fetchone()
    at = _app()
    _ok(at)
    assert at.title[0].value == "Tổng quan thủ tục hành chính"
    metrics = _first(at)
    assert metrics["Hồ sơ tiếp nhận"] == fmt.number(n_ho_so, lang="vi")
    assert metrics["Tỷ lệ trả đúng hạn"] == fmt.percent(rate, lang="vi")
    assert metrics["Đạt"] == f"{n_met} / {n_ind}"  # the scorecard counts what the mart says
    assert "Tỉnh Ninh Bình" in at.caption[0].value
    assert len(at.get("vega_lite_chart")) >= 2
    assert at.query_params.get("lang") == "vi"

    at.sidebar.radio(key="w_lang").set_value("English").run()
    _ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dossiers received"] == fmt.number(n_ho_so, lang="en")
    assert at.query_params["lang"] == "en"


def test_what_changed_honours_the_period_filter(province):
    """October 2025 against September 2025, from the weekly mart: the metric and its delta are the mart's sums."""
    now, before = (province.execute(
        "SELECT sum(n_tiep_nhan) FROM marts.ho_so_thu_tuc_tuan WHERE tuan_bat_dau BETWEEN ? AND ?",
        list(components.period_bounds(p))).fetchone()[0] for p in ("2025-10", "2025-09"))
    at = _app({"period": "2025-10"})
    _ok(at)
    got = {m.label: m for m in at.metric}["Tiếp nhận"]
    assert got.value == fmt.number(now) and got.delta == fmt.number(now - before)


def test_filters_round_trip_through_the_url_and_survive_a_page_change(province):
    agency, field = province.execute("SELECT co_quan, linh_vuc FROM marts.ho_so_thu_tuc_tuan "
                                     "GROUP BY ALL ORDER BY sum(n_tiep_nhan) DESC LIMIT 1").fetchone()
    at = _app({"lang": "en", "period": "2025-Q3", "agency": agency, "field": "no such field"})
    _ok(at)
    assert at.sidebar.radio(key="w_lang").value == "English"
    assert at.sidebar.selectbox(key="w_period").value == "2025-Q3"
    assert at.sidebar.multiselect(key="w_agency").value == [agency]
    assert at.sidebar.multiselect(key="w_field").value == []  # an unknown value is dropped, never queried
    assert "field" not in at.query_params

    at.sidebar.multiselect(key="w_field").set_value([field]).run()
    assert at.query_params["field"] == field
    at.switch_page(THU_TUC).run()
    _ok(at)
    assert at.title[0].value == "Administrative procedures"
    assert at.query_params["period"] == "2025-Q3" and at.query_params["agency"] == agency
    assert at.sidebar.multiselect(key="w_field").value == [field]
    # One agency chosen: the performance table drills down to its procedure fields.
    assert any("→ " + agency + " →" in c.value for c in at.caption)


def test_drill_down_reaches_the_procedure(province):
    """Province → one agency (the URL's filter, as a row click sets it) → its procedures, figures from
    marts.ho_so_ma_thu_tuc_tuan → one procedure's weeks; the drill-up button returns to the province."""
    agency, = province.execute("SELECT co_quan FROM marts.ho_so_ma_thu_tuc_tuan GROUP BY 1 "
                               "ORDER BY sum(n_tiep_nhan) DESC LIMIT 1").fetchone()
    expected = dict(((c, f), n) for c, f, n in province.execute(
        "SELECT ma_thu_tuc, linh_vuc, sum(n_tiep_nhan) FROM marts.ho_so_ma_thu_tuc_tuan WHERE co_quan = ? "
        "AND tuan_bat_dau BETWEEN ? AND ? GROUP BY ALL", [agency, *components.period_bounds("2025-Q3")]).fetchall())
    at = _app({"period": "2025-Q3", "agency": agency})
    at.switch_page(THU_TUC).run()
    _ok(at)
    assert any(f"→ {agency} → Thủ tục" in c.value for c in at.caption)
    procs = next(d.value for d in at.dataframe if "Mã thủ tục" in d.value.columns)
    got = dict(zip(zip(procs["Mã thủ tục"], procs["Lĩnh vực"], strict=True), procs["Tiếp nhận"], strict=True))
    assert got == expected and len(got) > 1
    code, field = next(iter(expected))
    at.session_state["tthc_proc"] = (code, field)  # what selecting its row stores (AppTest cannot click a row)
    at.run()
    _ok(at)
    assert any(f"Thủ tục {code} ({field}) tại {agency}" in m.value for m in at.markdown)
    assert len(at.get("vega_lite_chart")) == 5  # + the procedure's weeks (and the risk reliability diagram)
    at.button(key="tthc_up").click().run()
    _ok(at)
    assert "agency" not in at.query_params and at.sidebar.multiselect(key="w_agency").value == []
    assert any("Toàn tỉnh · " in c.value for c in at.caption)


def test_a_filter_change_reruns_only_the_filtered_fragments(province):
    """The period's callback reruns the overview's filtered fragment only: the new period is drawn, kept in the
    URL and in the meeting report's filters; the headline figures (outside the fragment) are not redrawn."""
    at = _app()
    _ok(at)
    at.sidebar.selectbox(key="w_period").set_value("2025-09").run()
    _ok(at)
    assert at.query_params["period"] == "2025-09"
    assert [c.value for c in at.caption] == ["Tháng 9/2025 so với Tháng 8/2025"]  # only the fragment's output
    assert not at.title and "Hồ sơ tiếp nhận" not in [m.label for m in at.metric]
    assert at.session_state["_report_filters"]["filters"].period == "2025-09"
    at.run()  # a full run draws everything again with the kept period
    _ok(at)
    assert at.title[0].value == "Tổng quan thủ tục hành chính" and at.sidebar.selectbox(key="w_period").value == "2025-09"


def test_procedures_page_both_languages_and_what_if(province):
    at = _app()
    at.switch_page(THU_TUC).run()
    _ok(at)
    assert at.title[0].value == "Thủ tục hành chính"
    assert not at.info, [i.value for i in at.info]  # the province has every mart
    assert len(at.get("vega_lite_chart")) == 4  # performance, forecast with baseline, backlog, risk reliability
    reliability = json.loads(at.get("vega_lite_chart")[-1].proto.spec)["layer"][1]["data"]["values"]
    assert reliability and all(0 <= p["Xác suất dự báo"] <= 1 for p in reliability)
    slider = at.slider(key="tthc_headcount")
    published = province.execute("SELECT sum(so_can_bo_hien_tai) FROM marts.can_bo_de_xuat").fetchone()[0]
    assert slider.value == published
    slider.set_value(slider.min).run()
    _ok(at)
    label = next(m.label for m in at.metric if m.label.startswith("Giả định"))
    assert fmt.number(slider.min) in label
    at.sidebar.radio(key="w_lang").set_value("English").run()
    _ok(at)
    assert at.title[0].value == "Administrative procedures"
    assert any(m.label.startswith("What-if") for m in at.metric)


def test_meeting_report_is_one_formatted_workbook(province, monkeypatch):
    from openpyxl import load_workbook

    from apps import auth, report
    from apps.data import snapshot_version

    # The workbook builder alone, outside a Streamlit run: the tenant a signed-in session would have chosen.
    monkeypatch.setattr(auth, "current_tenant", lambda: "ninh-binh")

    n_ho_so = province.execute("SELECT sum(n_tiep_nhan) FROM marts.ho_so_thu_tuc_tuan").fetchone()[0]
    raw = report.build_report(snapshot_version(), "vi", components.Filters(), "thu-tuc-hanh-chinh")
    wb = load_workbook(io.BytesIO(raw))
    assert wb.sheetnames[0] == "Tổng quan" and len(wb.sheetnames) >= 5
    first = wb["Tổng quan"]
    assert first["A1"].value == "Báo cáo tình hình giải quyết thủ tục hành chính"
    assert first["A2"].value == "Tỉnh Ninh Bình"
    values = [c.value for row in first.iter_rows() for c in row]
    assert "Bảng điểm chuyển đổi số" in values
    by_agency = wb[wb.sheetnames[1]]
    header = [c.value for c in by_agency[4]]
    assert "Cơ quan" in header and "Tiếp nhận" in header
    col = header.index("Tiếp nhận")
    assert sum(r[col].value for r in by_agency.iter_rows(min_row=5) if r[col].value) == n_ho_so
    assert by_agency.cell(row=5, column=col + 1).number_format == "#,##0"


def test_page_without_snapshot_says_what_to_do(monkeypatch):
    monkeypatch.setenv("TONGHOP_TENANT", "ninh-binh")
    at = _app()
    assert not at.exception
    assert "tonghop run" in at.warning[0].value


@pytest.fixture(scope="module")
def ministry_snapshot(tmp_path_factory, demo_portals):
    """The ministry's demo data (3,000 rows) run once by the CLI's runner into a module home."""
    import shutil

    from pipelines.config import load_tenant
    from pipelines.demo.ministry import api as ministry_api
    from pipelines.demo.ministry import generate_ministry
    from pipelines.demo.servers import PORT_ENV
    from tests.conftest import DEMO_ROWS

    home = tmp_path_factory.mktemp("ministry_home")
    sources = tmp_path_factory.mktemp("ministry_sources")
    generate_ministry(sources, rows=DEMO_ROWS, seed=37)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGHOP_HOME", str(home))
        mp.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
        mp.setenv("GX_ANALYTICS_ENABLED", "false")
        mp.setenv(PORT_ENV, str(demo_portals.server_address[1]))
        mp.setenv(ministry_api.TOKEN_ENV, demo_portals.ministry_token)
        shutil.copytree(sources, TenantPaths.for_tenant(MINISTRY).ensure().sources, dirs_exist_ok=True)
        report = run(load_tenant(MINISTRY), run_id="app")
        assert report.ok, report.summary()
    return home


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_ministry_pages_explain_what_they_lack(ministry_snapshot, monkeypatch, lang):
    """The ministry runs no model: the overview shows its dossier KPIs and, where the at-risk list, the
    forecast or the staffing would be, the explanation of the data it needs — never an exception."""
    monkeypatch.setenv("TONGHOP_HOME", str(ministry_snapshot))
    monkeypatch.setenv("TONGHOP_TENANT", MINISTRY)
    snapshot = TenantPaths.for_tenant(MINISTRY).snapshot
    with duckdb.connect(str(snapshot), read_only=True) as con:
        n_ho_so, = con.execute("SELECT n_ho_so FROM marts.kpi_tong_quan").fetchone()
        tables = {t for t, in con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables")
                  .fetchall()}
    assert "marts.ho_so_nguy_co_qua_han" not in tables and "marts.du_bao_ho_so_tuan" not in tables

    at = _app({"lang": lang}, tenant=MINISTRY)
    _ok(at)
    label = "Hồ sơ tiếp nhận" if lang == "vi" else "Dossiers received"
    assert {m.label: m.value for m in at.metric}[label] == fmt.number(n_ho_so, lang=lang)
    assert "Bộ Khoa học và Công nghệ" in at.caption[0].value or "Ministry" in at.caption[0].value
    boxes = [box.value for box in at.info]
    assert any("marts.ho_so_nguy_co_qua_han ← model overdue_risk" in b for b in boxes), boxes

    at.switch_page(THU_TUC).run()
    _ok(at)
    boxes = [box.value for box in at.info]
    for mart in ("marts.du_bao_ho_so_tuan", "marts.ho_so_nguy_co_qua_han", "marts.can_bo_de_xuat"):
        assert any(mart in b for b in boxes), (mart, boxes)
