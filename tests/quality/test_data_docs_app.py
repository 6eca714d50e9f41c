"""A tenant's Great Expectations Data Docs in the app: drawn in the quality page after the "data-docs" grant
check, from the chosen tenant's own validation results — never served as static files a URL could reach
(issue 14: the static folder used to hold every tenant's copy, open to anyone who knew the path).

Both demo tenants' published folders (session fixtures, built once) are installed in the test's home: one
server, two tenants, each engineer sees only the results of the tenant they are granted.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipelines.quality import data_docs
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT
from tests.fixtures.servers import free_port
from tests.fixtures.snapshots import MINISTRY
from tests.security.signin import make_user, sign_in

REPO = Path(__file__).resolve().parents[2]
MAIN = str(REPO / "apps" / "main.py")
PAGE = "pages/2_Chat_luong_du_lieu.py"


def test_site_zip_holds_the_site_without_bookkeeping(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "expectations").mkdir(parents=True)
    (site / "index.html").write_text("<html>v1</html>", encoding="utf-8")
    (site / "expectations" / "ho_so.html").write_text("suite", encoding="utf-8")
    (site / ".built").write_text("1", encoding="utf-8")
    names = zipfile.ZipFile(io.BytesIO(data_docs.site_zip(site))).namelist()
    assert sorted(names) == ["data_docs/expectations/ho_so.html", "data_docs/index.html"]


@pytest.fixture
def two_tenants(province_snapshot, ministry_snapshot, _isolated_home) -> dict[str, Path]:
    """Both tenants' folders (snapshot, run records, validation results, GX site) in this test's home."""
    out = {}
    for tenant, snapshot in ((DEMO_TENANT, province_snapshot), (MINISTRY, ministry_snapshot)):
        target = TenantPaths.for_tenant(tenant).root
        shutil.copytree(snapshot.parent, target, ignore=shutil.ignore_patterns("*.lock", "warehouse.duckdb"))
        out[tenant] = target
    return out


def _results(root: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in (root / "validations").glob("*.json")}


def _signed_in(role: str, grants: dict[str, str], tenant: str = DEMO_TENANT) -> AppTest:
    name, password = make_user(role, grants=grants)
    at = AppTest.from_file(MAIN, default_timeout=90).run()
    sign_in(at, name, password)
    if len(grants) > 1:
        at.selectbox(key="w_auth_tenant").set_value(tenant).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_engineer_sees_the_chosen_tenants_results_drawn_in_the_page(two_tenants) -> None:
    province = _results(two_tenants[DEMO_TENANT])
    ministry = _results(two_tenants[MINISTRY])
    assert province and ministry and not set(province) & set(ministry)
    at = _signed_in("ky_thuat", {DEMO_TENANT: "ky_thuat", MINISTRY: "ky_thuat"})
    assert "Data Docs (Great Expectations)" in [h.value for h in at.subheader]
    runs = at.selectbox(key="dq_docs_run")
    assert len(runs.options) == len(province)  # this tenant's results, every one of them, nothing else
    # The ho_so result: its table is the result file's expectations, the failed ones marked as GX marks them.
    ho_so = next(name for name, doc in province.items() if doc["suite_name"] == "ho_so")
    runs.select_index(next(i for i, o in enumerate(runs.options) if " ho_so · " in o)).run()
    assert not at.exception, at.exception
    doc = province[ho_so]
    table = next(d.value for d in at.dataframe if "Kỳ vọng" in d.value.columns)
    assert len(table) == len(doc["results"])
    assert (table["Kết quả"] == "❌").sum() == doc["statistics"]["unsuccessful_expectations"] > 0
    assert "ma_ho_so không được trùng lặp" in set(table["Kỳ vọng"])  # the demo's planted duplicate ids
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Số kỳ vọng"] == str(doc["statistics"]["evaluated_expectations"])
    zips = [b for b in at.get("download_button") if b.proto.label.startswith("Tải trang Data Docs")]
    assert len(zips) == 1
    # The same user switches to the ministry: now only the ministry's results are listed.
    at.selectbox(key="w_auth_tenant").set_value(MINISTRY).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert len(at.selectbox(key="dq_docs_run").options) == len(ministry)


@pytest.mark.parametrize("role", ["lanh_dao", "phan_tich"])
def test_data_docs_need_the_grant(two_tenants, role) -> None:
    at = _signed_in(role, {DEMO_TENANT: role})
    assert at.title[0].value == "Chất lượng dữ liệu"  # the page itself is theirs
    assert "Data Docs (Great Expectations)" not in [h.value for h in at.subheader]
    assert not [s for s in at.selectbox if s.key == "dq_docs_run"]
    assert not [b for b in at.get("download_button") if b.proto.label.startswith("Tải trang Data Docs")]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError:  # not listening yet
        return 0, ""


def test_no_url_serves_data_docs(two_tenants, tmp_path: Path) -> None:
    """The server as `make app` starts it: the paths the static copies used to have answer nothing, and
    the repository's static folder holds no tenant's files."""
    port = free_port()
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", MAIN, "--server.address", "127.0.0.1", "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT)
    server = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while _get(f"{server}/_stcore/health")[0] != 200:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError((tmp_path / "streamlit.log").read_text())
            time.sleep(0.3)
        for tenant in (DEMO_TENANT, MINISTRY):
            for path in ("index.html", "static/styles/data_docs_default_styles.css"):
                status, body = _get(f"{server}/app/static/data_docs/{tenant}/{path}")
                assert status == 404 or "Expectation" not in body, (tenant, path, status)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert not (REPO / "apps" / "static" / "data_docs").exists()
