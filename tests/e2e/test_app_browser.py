"""End to end in a real browser: Streamlit serves the app (apps/main.py) from the snapshot; headless Chromium
(Debian's, installed by the Makefile) signs in through the app's form as each role (a leader, an analyst, an
engineer: one walk each), checks the menu lists exactly the role's pages and a hidden page's URL does not open
it; the engineer walks every registered page, changes a filter, checks the URL and what is drawn, switches to
English; a screenshot of each page is kept (pytest tmp dir and var/test-artefacts/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request

import duckdb
import pytest

from apps import fmt
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import project_path
from tests.fixtures.servers import free_port

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


ROLES = ("lanh_dao", "phan_tich", "ky_thuat")


@pytest.fixture
def served_app(demo_tenant, tmp_path):
    from pipelines.access.store import UserStore

    assert run(demo_tenant, run_id="e2e").ok
    store = UserStore()  # the server's TONGHOP_HOME: one account per role on the demo province
    for role in ROLES:
        store.add_user(f"e2e-{role}", f"pw-e2e-{role}-1")
        store.grant(f"e2e-{role}", demo_tenant.tenant_id, role)
    port = free_port()
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(project_path("apps", "main.py")),
         "--server.address", "127.0.0.1", "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        env={**os.environ, "TONGHOP_TENANT": demo_tenant.tenant_id}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "streamlit.log").read_text()) from None
                time.sleep(0.3)
        yield url, demo_tenant
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait_rendered(page, metric: bool = True) -> None:
    page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=60_000)
    if metric:
        page.wait_for_selector("[data-testid='stMetric']", timeout=60_000)
    page.wait_for_function("!document.querySelector(\"[data-testid='stStatusWidget']\")", timeout=60_000)


def _sign_in(page, role: str) -> None:
    """Type the role's account into the app's sign-in form (a new browser session always starts there)."""
    page.wait_for_selector("input[type='password']", timeout=60_000)
    page.locator("input[autocomplete='username']").fill(f"e2e-{role}")
    page.locator("input[type='password']").fill(f"pw-e2e-{role}-1")
    page.locator("[data-testid*='FormSubmit'] button, button[data-testid*='FormSubmit']").first.click()
    _wait_rendered(page)


def _menu(page) -> list[str]:
    """The menu's page titles (each link's last line: the icon's ligature name comes first)."""
    return [t.strip().split("\n")[-1] for t in page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()]


def _y_axis_labels(page, address: str) -> list[str]:
    """The y-axis tick labels of the overview's first chart, read from the SVG Vega renders in Streamlit (each
    axis group carries an aria-label "Y-axis titled …")."""
    page.goto(address)
    _sign_in(page, "ky_thuat")
    page.wait_for_selector("[data-testid='stVegaLiteChart'] svg .role-axis-label text", timeout=60_000)
    return page.evaluate("""() => {
        const chart = document.querySelector("[data-testid='stVegaLiteChart']");
        return Array.from(chart.querySelectorAll("g.role-axis"))
            .filter(a => (a.getAttribute("aria-label") || "").startsWith("Y-axis"))
            .flatMap(a => Array.from(a.querySelectorAll(".role-axis-label text")).map(t => t.textContent));
    }""")


def test_overview_in_a_real_browser(served_app, tmp_path):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Chromium missing: `make test` installs it (apt-get install chromium)"
    url, tenant = served_app
    con = duckdb.connect(str(TenantPaths.for_tenant(tenant.tenant_id).snapshot), read_only=True)
    n_ho_so = con.execute("SELECT n_ho_so FROM marts.kpi_tong_quan").fetchone()[0]
    quiet_commune, most = con.execute("""
        SELECT ma_xa, max(n) AS most FROM (SELECT ma_xa, tuan_bat_dau, sum(n_tiep_nhan) AS n
                                           FROM marts.ho_so_thu_tuc_tuan GROUP BY ALL)
        WHERE ma_xa IS NOT NULL GROUP BY ma_xa HAVING max(n) > 0 ORDER BY most, ma_xa LIMIT 1""").fetchone()
    con.close()
    assert most <= 5, f"no commune with few dossiers a week (at least {most}): the axis check needs fractional ticks"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        try:
            from apps.layout import registered_pages
            from pipelines.access.roles import role_allows

            artefacts = project_path("var", "test-artefacts")
            artefacts.mkdir(parents=True, exist_ok=True)
            # A leader and an analyst: the menu holds exactly their pages; the operations page's URL does not
            # open it (not in their navigation, and its own `require` refuses).
            for role in ("lanh_dao", "phan_tich"):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                _sign_in(page, role)
                assert _menu(page) == [t for _, t, _, u in registered_pages() if role_allows(role, u)], role
                shot = tmp_path / f"menu_{role}.png"
                page.screenshot(path=str(shot), full_page=True)
                shutil.copy(shot, artefacts / shot.name)
                page.goto(f"{url}/van-hanh")
                _sign_in(page, role)
                assert "Vận hành" not in page.locator("[data-testid='stMain'] h1").all_inner_texts(), role
                page.close()

            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            _sign_in(page, "ky_thuat")
            assert _menu(page) == [t for _, t, _, _ in registered_pages()]  # an engineer: every page
            body = page.inner_text("body")
            assert "Tổng quan thủ tục hành chính" in body
            assert "Hồ sơ tiếp nhận" in body and fmt.number(n_ho_so, lang="vi") in body
            page.wait_for_selector("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg",
                                   timeout=60_000)
            page.screenshot(path=str(tmp_path / "tong_quan_vi.png"), full_page=True)

            assert "lang=vi" in page.url
            # Toolbar in viewer mode: no Deploy button.
            assert page.locator("[data-testid='stAppDeployButton']").count() == 0

            # A filter change lands in the URL and survives walking every page of the menu.
            page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
            page.get_by_role("option", name="Quý 3/2025").click()
            page.wait_for_url("**period=2025-Q3**", timeout=60_000)
            _wait_rendered(page, metric=False)
            # Only the filtered fragment reran (keyed rerun from the filter's callback), and it drew the new period.
            page.get_by_text("Quý 3/2025 so với Quý 2/2025").wait_for(timeout=60_000)
            for _, title, _, url_path in registered_pages():
                page.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
                page.wait_for_function(f"location.pathname.endsWith('/{url_path}') || "
                                       f"'{url_path}' === 'tong-quan'", timeout=60_000)
                _wait_rendered(page, metric=False)
                page.wait_for_selector("[data-testid='stMain'] h1", timeout=60_000)  # the run may start late
                body = page.inner_text("[data-testid='stMain']")
                assert "Traceback" not in body and "Error" not in body.split("\n")[0], body[:500]
                assert page.locator("h1").count() >= 1
                assert "lang=vi" in page.url
                if url_path in ("tong-quan", "thu-tuc-hanh-chinh"):
                    assert "period=2025-Q3" in page.url, page.url
                    page.wait_for_selector("[data-testid='stVegaLiteChart'] canvas, "
                                           "[data-testid='stVegaLiteChart'] svg", timeout=60_000)
                shot = tmp_path / f"{url_path}.png"
                page.screenshot(path=str(shot), full_page=True)
                shutil.copy(shot, artefacts / shot.name)

            page.get_by_text("English", exact=True).click()
            page.wait_for_url("**lang=en**", timeout=60_000)
            _wait_rendered(page, metric=False)
            assert "lang=en" in page.url

            # Chart axes in the language's number format, as drawn: the weekly chart of a commune with at most a
            # few dossiers a week has fractional ticks (0,2 0,4 …): Vietnamese shows a decimal comma, English a
            # point, the same ticks. (At 1M dossiers the same axis reads 2.000 4.000 …, see docs/performance.md.)
            axis_vi = _y_axis_labels(page, f"{url}/?lang=vi&commune={quiet_commune}")
            axis_en = _y_axis_labels(page, f"{url}/?lang=en&commune={quiet_commune}")
            assert any("," in v for v in axis_vi) and not any("." in v for v in axis_vi), axis_vi
            assert any("." in v for v in axis_en) and not any("," in v for v in axis_en), axis_en
            assert [v.replace(",", ".") for v in axis_vi] == axis_en
        finally:
            browser.close()
