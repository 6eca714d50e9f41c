"""A tenant's Great Expectations Data Docs, rebuilt by `validate`, open from the quality page and click through.

The page copies the tenant's site into Streamlit's static folder and links to it; a real Streamlit server
(`server.enableStaticServing`, as `make app` starts it) must then serve those links as HTML whose own
relative links, styles included, resolve too. The app runs from a copy in a temp folder so the test's
static copy never lands in the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

import pytest

from pipelines.quality import data_docs
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.fixtures.servers import free_port

REPO = Path(__file__).resolve().parents[2]
PAGE = "2_Chat_luong_du_lieu.py"


def _site(root: Path, runs: dict[str, list[str]]) -> Path:
    """A minimal Data Docs tree: index + per suite the given run-time folders (GX's layout)."""
    root.mkdir(parents=True)
    (root / "index.html").write_text("<html>v1</html>", encoding="utf-8")
    for suite, stamps in runs.items():
        for stamp in stamps:
            page = root / "validations" / suite / f"run_{stamp}" / stamp / "duckdb_query.html"
            page.parent.mkdir(parents=True)
            page.write_text(stamp, encoding="utf-8")
    return root


def test_publish_copies_once_per_build_and_links_the_newest_run_per_suite(tmp_path: Path) -> None:
    site = _site(tmp_path / "site", {"ho_so": ["20261128T100000.0Z", "20261129T090000.0Z"],
                                      "dan_cu": ["20261127T080000.0Z"]})
    target = tmp_path / "static" / "data_docs" / "t1"
    assert data_docs.publish(tmp_path / "nothing", target) is None  # no site built yet: nothing to serve
    assert data_docs.publish(site, target) == target and (target / "index.html").read_text() == "<html>v1</html>"
    (target / "expectations").mkdir()
    (target / "expectations" / "ho_so.html").write_text("suite", encoding="utf-8")
    assert data_docs.suite_pages(target) == {"ho_so": "expectations/ho_so.html"}
    # Newest per suite by GX's run-time folder (a sortable UTC stamp), not by file order.
    assert data_docs.newest_validation_pages(target) == {
        "dan_cu": "validations/dan_cu/run_20261127T080000.0Z/20261127T080000.0Z/duckdb_query.html",
        "ho_so": "validations/ho_so/run_20261129T090000.0Z/20261129T090000.0Z/duckdb_query.html"}
    # Same build: no copy (an edit of the served copy survives); a rebuild (new index mtime): fresh copy.
    (target / "index.html").write_text("edited", encoding="utf-8")
    data_docs.publish(site, target)
    assert (target / "index.html").read_text() == "edited"
    (site / "index.html").write_text("<html>v2</html>", encoding="utf-8")
    os.utime(site / "index.html", ns=(time.time_ns() + 10**9,) * 2)
    data_docs.publish(site, target)
    assert (target / "index.html").read_text() == "<html>v2</html>"
    assert sorted(p.name for p in target.parent.iterdir()) == ["t1"]  # no temp/old folders left behind
    # The zip holds the site as `data_docs/...`, without the copy's bookkeeping file.
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(data_docs.site_zip(target))).namelist()
    assert "data_docs/index.html" in names and not [n for n in names if n.endswith(".built")] and len(names) == 4


def _get(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200, url
        return response.headers.get_content_type(), response.read().decode("utf-8")


@pytest.fixture
def static_serving(monkeypatch: pytest.MonkeyPatch):
    from streamlit import config

    before = config.get_option("server.enableStaticServing")
    config.set_option("server.enableStaticServing", True)
    yield
    config.set_option("server.enableStaticServing", before)


def test_data_docs_open_from_the_quality_page_over_http(demo_tenant, tmp_path: Path, monkeypatch,
                                                        static_serving) -> None:
    from streamlit.testing.v1 import AppTest

    assert run(demo_tenant, run_id="docs").ok
    site = TenantPaths.for_tenant(demo_tenant.tenant_id).data_docs
    assert (site / "index.html").is_file()  # built by `validate` into the tenant's folder
    app = tmp_path / "app"
    (app / "pages").mkdir(parents=True)
    shutil.copy(REPO / "apps" / "tong_quan.py", app)
    shutil.copy(REPO / "apps" / "pages" / PAGE, app / "pages")
    monkeypatch.setenv("TONGHOP_TENANT", demo_tenant.tenant_id)

    at = AppTest.from_file(str(app / "pages" / PAGE), default_timeout=60).run()
    assert not at.exception, at.exception
    links = {b.proto.label: b.proto.url for b in at.get("link_button")}
    base = f"app/static/data_docs/{demo_tenant.tenant_id}"
    # The home page, and the newest result of each suite validated in this run: the demo's ho_so and
    # chi_so_xa_hoi_so sources have suites (expectations/gx/expectations/, merged with their contract's baseline),
    # its other sources are checked by their contract's baseline alone (suite `contract_<contract>`, no suite page).
    assert links["Mở Data Docs"] == f"{base}/index.html"
    baseline_only = ("can_bo", "chi_so_cds_tinh", "diem_phuc_vu", "doanh_nghiep", "phan_anh")
    assert set(links) == {"Mở Data Docs", "Bộ kỳ vọng: ho_so", "Bộ kỳ vọng: chi_so_xa_hoi_so",
                          "Kết quả kiểm tra mới nhất: ho_so", "Kết quả kiểm tra mới nhất: chi_so_xa_hoi_so",
                          *(f"Kết quả kiểm tra mới nhất: contract_{c}" for c in baseline_only)}
    assert links["Bộ kỳ vọng: ho_so"] == f"{base}/expectations/ho_so.html"
    assert links["Kết quả kiểm tra mới nhất: ho_so"].startswith(f"{base}/validations/ho_so/docs__ho_so/")
    assert (app / "static" / "data_docs" / demo_tenant.tenant_id / "index.html").is_file()

    port = free_port()
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app / "tong_quan.py"), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--server.enableStaticServing", "true",
         "--browser.gatherUsageStats", "false"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=log, stderr=subprocess.STDOUT)
    server = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{server}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "streamlit.log").read_text()) from None
                time.sleep(0.3)
        # A browser resolves the buttons' relative links against the page's URL.
        page_url = f"{server}/Chat_luong_du_lieu"
        index_url = urljoin(page_url, links["Mở Data Docs"])
        kind, index = _get(index_url)
        assert kind == "text/html" and "Expectation Suites" in index and 'href="expectations/ho_so.html"' in index
        # The stylesheet the pages share resolves from the index (relative links work on these URLs).
        assert _get(urljoin(index_url, "static/styles/data_docs_default_styles.css"))[0] == "text/css"
        kind, suite = _get(urljoin(page_url, links["Bộ kỳ vọng: ho_so"]))
        assert kind == "text/html" and "ma_ho_so must be unique" in suite
        # The run's result: the demo's planted duplicate ids make the uniqueness check fail.
        kind, result = _get(urljoin(page_url, links["Kết quả kiểm tra mới nhất: ho_so"]))
        assert kind == "text/html" and "Unsuccessful" in result and "ma_ho_so must be unique" in result
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
