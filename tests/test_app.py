"""The overview page renders from the serving snapshot, in Vietnamese first, English on the toggle."""

from __future__ import annotations

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from apps import fmt
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import project_path

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("value", "decimals", "vi", "en"), [
    (1234567.5, 1, "1.234.567,5", "1,234,567.5"),  # Vietnamese swaps the separators
    (3000, 0, "3.000", "3,000"),
    (None, 0, "—", "—"),
])
def test_number_formats(value, decimals, vi, en):
    assert fmt.number(value, decimals, "vi") == vi
    assert fmt.number(value, decimals, "en") == en


def test_overview_page_from_snapshot(demo_tenant, monkeypatch):
    assert run(demo_tenant, run_id="app").ok
    monkeypatch.setenv("TONGHOP_TENANT", demo_tenant.tenant_id)
    con = duckdb.connect(str(TenantPaths.for_tenant(demo_tenant.tenant_id).snapshot), read_only=True)
    n_ho_so, rate = con.execute("SELECT n_ho_so, ty_le_dung_han FROM marts.kpi_tong_quan").fetchone()
    con.close()

    at = AppTest.from_file(str(project_path("apps", "tong_quan.py")), default_timeout=60).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Tổng quan thủ tục hành chính"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Hồ sơ tiếp nhận"] == fmt.number(n_ho_so, lang="vi")
    assert metrics["Tỷ lệ trả đúng hạn"] == fmt.percent(rate, lang="vi")
    assert "," in metrics["Tỷ lệ trả đúng hạn"]  # decimal comma
    assert len(at.get("vega_lite_chart")) == 1
    assert "Tỉnh Ninh Bình" in at.caption[0].value

    at.sidebar.radio[0].set_value("English").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dossiers received"] == fmt.number(n_ho_so, lang="en")


def test_page_without_snapshot_says_what_to_do(monkeypatch):
    monkeypatch.setenv("TONGHOP_TENANT", "ninh-binh")
    at = AppTest.from_file(str(project_path("apps", "tong_quan.py")), default_timeout=60).run()
    assert not at.exception
    assert "tonghop run" in at.warning[0].value


MINISTRY = "bo-khoa-hoc-cong-nghe"


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


def test_ministry_overview_renders_and_explains_what_it_lacks(ministry_snapshot, monkeypatch):
    """The ministry runs no overdue_risk model: its overview shows its dossier KPIs and, where the at-risk
    list would be, the explanation of the data it needs — never an exception."""
    monkeypatch.setenv("TONGHOP_HOME", str(ministry_snapshot))
    monkeypatch.setenv("TONGHOP_TENANT", MINISTRY)
    snapshot = TenantPaths.for_tenant(MINISTRY).snapshot
    with duckdb.connect(str(snapshot), read_only=True) as con:
        n_ho_so, = con.execute("SELECT n_ho_so FROM marts.kpi_tong_quan").fetchone()
        tables = {t for t, in con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables")
                  .fetchall()}
    assert "marts.ho_so_nguy_co_qua_han" not in tables and "marts.tan_so_theo_tinh" in tables

    at = AppTest.from_file(str(project_path("apps", "tong_quan.py")), default_timeout=60).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["Hồ sơ tiếp nhận"] == fmt.number(n_ho_so, lang="vi")
    assert "Bộ Khoa học và Công nghệ" in at.caption[0].value
    boxes = [box.value for box in at.info]
    assert any("marts.ho_so_nguy_co_qua_han" in b for b in boxes), boxes
    assert len(at.get("vega_lite_chart")) == 1

    at.sidebar.radio[0].set_value("English").run()
    assert not at.exception, at.exception
    assert any("marts.ho_so_nguy_co_qua_han" in box.value for box in at.info)
