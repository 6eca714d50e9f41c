"""Every page under every role and both tenants, through the real sign-in (issue 14): the menu offers exactly
the role's pages, each of them renders for the chosen tenant, a hidden page opened by its URL (its script run
directly, as the server does for a path) or a tenant asked for in the query string is refused, and exports
follow the role.

Cheap by design: both tenants' published snapshots are the session fixtures (built once, shared with tests/apps),
installed once per module with one account per role and tenant; each (role, tenant) signs in once and walks its
pages in one AppTest.
"""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from apps.layout import registered_pages
from pipelines.access.roles import role_allows
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT, project_path
from tests.fixtures.snapshots import MINISTRY
from tests.security.signin import sign_in

pytestmark = pytest.mark.integration

MAIN = str(project_path("apps", "main.py"))
ROLES = ("lanh_dao", "phan_tich", "ky_thuat")
TENANTS = {DEMO_TENANT: "Tỉnh Ninh Bình", MINISTRY: "Bộ Khoa học và Công nghệ"}
REFUSED = "không được dùng chức năng này"  # apps/auth.py: the page refusal, in Vietnamese


@pytest.fixture(scope="module")
def home(tmp_path_factory, province_snapshot, ministry_snapshot):
    """One home with both tenants' snapshots (and run records) and an account per role and tenant."""
    from pipelines.access.store import UserStore

    root = tmp_path_factory.mktemp("roles_home")
    accounts = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGHOP_HOME", str(root))
        for tenant, snapshot in ((DEMO_TENANT, province_snapshot), (MINISTRY, ministry_snapshot)):
            paths = TenantPaths.for_tenant(tenant)
            paths.root.mkdir(parents=True, exist_ok=True)
            shutil.copy(snapshot, paths.snapshot)
            shutil.copy(snapshot.parent / "runs.jsonl", paths.run_log)
        store = UserStore()
        for tenant in TENANTS:
            for role in ROLES:
                name, password = f"{role}-{tenant}"[:40], f"pw-{role}-{tenant}"
                store.add_user(name, password)
                store.grant(name, tenant, role)
                accounts[role, tenant] = (name, password)
    return root, accounts


@pytest.fixture
def as_user(home, monkeypatch):
    root, accounts = home
    monkeypatch.setenv("TONGHOP_HOME", str(root))

    def signed(script: str, role: str, tenant: str, query: dict | None = None) -> AppTest:
        at = AppTest.from_file(script, default_timeout=90)
        at.query_params.update(query or {})
        return sign_in(at.run(), *accounts[role, tenant])
    return signed


def _pages() -> list[tuple[str, str, str]]:
    """(script relative to apps/, title, url path) of every registered page."""
    apps = project_path("apps")
    return [(str(path.relative_to(apps)), title, url) for path, title, _, url in registered_pages()]


@pytest.mark.parametrize("tenant", list(TENANTS))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_walks_exactly_its_pages(as_user, role, tenant):
    at = as_user(MAIN, role, tenant)
    assert not at.exception, at.exception
    assert TENANTS[tenant] in at.caption[0].value  # the overview of the chosen tenant's own snapshot
    assert not [s for s in at.selectbox if s.key == "w_auth_tenant"]  # one tenant: no chooser
    for script, _title, url in _pages():
        if not role_allows(role, url):
            with pytest.raises(ValueError, match="navigation page"):  # not in this role's menu
                at.switch_page(script)
            continue
        at.switch_page(script).run()
        assert not at.exception, (role, tenant, url, at.exception)
        assert not [e for e in at.error if REFUSED in e.value], (role, tenant, url)
        assert at.title, (role, tenant, url)
        downloads = [b for b in at.get("download_button") if b.key != "report_download"]
        # Tables' .xlsx/CSV (and the console's results) only with "export"; leaders get the meeting report.
        if not role_allows(role, "export"):
            assert not downloads, (role, url, [b.proto.label for b in downloads])
        if url == "tong-quan":  # the meeting report in the sidebar (after the page)
            assert bool([b for b in at.get("download_button") if b.key == "report_download"]) \
                == role_allows(role, "report")
        if url == "chat-luong-du-lieu":
            subheaders = [h.value for h in at.subheader]
            assert ("Data Docs (Great Expectations)" in subheaders) == role_allows(role, "data-docs")
            assert bool(at.expander) == role_allows(role, "quality-details")  # each source's checks


@pytest.mark.parametrize("role", ["lanh_dao", "phan_tich"])
def test_a_hidden_page_opened_by_url_is_refused(as_user, role):
    """The server runs a page's script for its URL path: the script's own `require` refuses the role."""
    hidden = [(script, url) for script, _, url in _pages() if not role_allows(role, url)]
    assert ("pages/6_Van_hanh.py", "van-hanh") in hidden
    for script, url in hidden:
        at = as_user(str(project_path("apps", script)), role, DEMO_TENANT)
        assert not at.exception, at.exception
        assert any(REFUSED in e.value for e in at.error), (role, url)
        assert not at.title and not at.dataframe and not at.metric, (role, url)  # nothing of the page drawn


def test_another_tenant_in_the_query_string_is_refused(as_user):
    at = as_user(MAIN, "ky_thuat", DEMO_TENANT, {"tenant": MINISTRY, "period": "2025-Q3"})
    assert not at.exception, at.exception
    assert any(MINISTRY in e.value for e in at.error)
    assert not at.metric and not at.dataframe  # not one figure of either tenant
