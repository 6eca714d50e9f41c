"""End to end in a real browser: Streamlit serves the overview page from the snapshot; headless Chromium
(Debian's, installed by the Makefile) reads it in Vietnamese, then switches to English."""

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


@pytest.fixture
def served_app(demo_tenant, tmp_path):
    assert run(demo_tenant, run_id="e2e").ok
    port = free_port()
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(project_path("apps", "tong_quan.py")),
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


def _wait_rendered(page) -> None:
    page.wait_for_selector("[data-testid='stAppViewContainer']", timeout=60_000)
    page.wait_for_selector("[data-testid='stMetric']", timeout=60_000)
    page.wait_for_function("!document.querySelector(\"[data-testid='stStatusWidget']\")", timeout=60_000)


def test_overview_in_a_real_browser(served_app, tmp_path):
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Chromium missing: `make test` installs it (apt-get install chromium)"
    url, tenant = served_app
    con = duckdb.connect(str(TenantPaths.for_tenant(tenant.tenant_id).snapshot), read_only=True)
    n_ho_so = con.execute("SELECT n_ho_so FROM marts.kpi_tong_quan").fetchone()[0]
    con.close()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            _wait_rendered(page)
            body = page.inner_text("body")
            assert "Tổng quan thủ tục hành chính" in body
            assert "Hồ sơ tiếp nhận" in body and fmt.number(n_ho_so, lang="vi") in body
            page.wait_for_selector("[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg",
                                   timeout=60_000)
            page.screenshot(path=str(tmp_path / "tong_quan_vi.png"), full_page=True)

            page.get_by_text("English", exact=True).click()
            page.wait_for_selector("text=Dossiers received", timeout=60_000)
            _wait_rendered(page)
            assert fmt.number(n_ho_so, lang="en") in page.inner_text("body")
        finally:
            browser.close()
