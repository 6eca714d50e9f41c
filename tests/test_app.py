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
