"""The SQL console page (apps/pages/7_Truy_van_SQL.py) under each role, through the real sign-in form, on the
demo province's published snapshot: leaders are refused, analysts and engineers query, results match a bare
DuckDB query of the snapshot, every query leaves an audit row, saved queries belong to their user."""

from __future__ import annotations

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from apps import fmt
from pipelines.access.audit import AuditLog
from tests.conftest import project_path
from tests.fixtures.snapshots import MINISTRY
from tests.security.signin import make_user, sign_in

pytestmark = pytest.mark.integration
PAGE = str(project_path("apps", "pages", "7_Truy_van_SQL.py"))
QUERY = "SELECT ma_xa, sum(n_tiep_nhan) AS n FROM marts.ho_so_thu_tuc_tuan GROUP BY ma_xa ORDER BY n DESC, ma_xa"


def open_page(role, **kw) -> tuple[AppTest, str]:
    name, password = make_user(role, **kw)
    at = AppTest.from_file(PAGE, default_timeout=90).run()
    assert at.text_input(key="auth_password")  # nobody is signed in: the form, not the page
    assert not at.text_area
    return sign_in(at, name, password), name


def run_sql(at: AppTest, sql: str) -> AppTest:
    at.text_area(key="console_sql").input(sql)
    at.button(key="console_run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_leader_is_refused_and_the_refusal_audited(province_home):
    at, name = open_page("lanh_dao")
    assert not at.text_area
    assert any("không được dùng chức năng này" in e.value for e in at.error)
    row = AuditLog().recent("access", user=name)[0]
    assert (row["status"], row["tenant"], row["reason"]) == ("refused", "ninh-binh", "capability refused: truy-van-sql")


def test_analyst_queries_with_vietnamese_formats_downloads_and_audit(province_home):
    with duckdb.connect(str(province_home.snapshot), read_only=True) as con:
        expected = con.execute(QUERY).fetchall()
    at, name = open_page("phan_tich")
    assert at.title[0].value == "Truy vấn SQL"
    assert any(d.value.shape[0] > 10 for d in at.dataframe)  # the data dictionary beside the editor
    run_sql(at, QUERY)
    shown = at.dataframe[-1].value
    assert shown.shape[0] == len(expected)
    assert at.success[0].value.startswith(f"{fmt.number(len(expected), lang='vi')} dòng")
    assert len(at.get("download_button")) == 2  # .xlsx and CSV (analysts have "export")
    row = AuditLog().recent("console", user=name)[0]
    assert (row["status"], row["tenant"], row["rows"], row["sql"]) == ("ok", "ninh-binh", len(expected), QUERY)
    assert row["duration_ms"] > 0


def test_engineer_attack_refused_on_the_page_and_audited(province_home):
    at, name = open_page("ky_thuat")
    run_sql(at, "SELECT * FROM read_csv('/etc/passwd')")
    assert any("read_csv" in e.value for e in at.error)
    row = AuditLog().recent("console", user=name)[0]
    assert (row["status"], row["reason"]) == ("refused", "function_not_allowed: read_csv")


def test_saved_queries_are_per_user_and_tenant(province_home):
    at, name = open_page("phan_tich")
    at.text_area(key="console_sql").input("SELECT count(*) AS n FROM marts.ho_so_thu_tuc_tuan")
    at.text_input(key="console_save_name").input("Đếm hồ sơ")
    at.button(key="console_save").click().run()
    from pipelines.access.store import UserStore

    assert UserStore().saved_queries(name, "ninh-binh") == {"Đếm hồ sơ": "SELECT count(*) AS n FROM "
                                                                          "marts.ho_so_thu_tuc_tuan"}
    other, _ = open_page("phan_tich")
    assert not any(s.key == "console_saved" for s in other.selectbox)  # another analyst sees none of them


def test_a_forged_tenant_in_the_url_is_refused(province_home):
    name, password = make_user("phan_tich")
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.query_params["tenant"] = MINISTRY
    sign_in(at.run(), name, password)
    assert not at.text_area
    assert any("không có quyền truy cập đơn vị" in e.value for e in at.error)


PANEL = """
from apps.auth import audit_panel, gate
gate()
audit_panel("vi")
"""


def test_engineers_browse_the_audit_and_analysts_do_not(province_home):
    from pipelines.access.console import run_query

    run_query("SELECT count(*) FROM marts.ho_so_thu_tuc_tuan", user="phan.tich.x", tenant="ninh-binh")
    run_query("COPY marts.ho_so_thu_tuc_tuan TO '/tmp/x.csv'", user="phan.tich.x", tenant="ninh-binh")
    run_query("SELECT 1", user="other.tenant.user", tenant=MINISTRY, snapshot=province_home.snapshot)
    name, password = make_user("ky_thuat")
    at = sign_in(AppTest.from_string(PANEL, default_timeout=60).run(), name, password)
    assert at.subheader[0].value == "Nhật ký truy vấn SQL và truy cập"
    assert "chuỗi băm: nguyên vẹn" in at.caption[0].value
    log = at.dataframe[0].value
    assert list(log["Kết quả"]) == ["refused", "ok"]  # this tenant's two queries, newest first
    assert set(log["Người dùng"]) == {"phan.tich.x"} and log["Số dòng"].iloc[1] == 1
    name, password = make_user("phan_tich")
    at = sign_in(AppTest.from_string(PANEL, default_timeout=60).run(), name, password)
    assert not at.subheader and not at.dataframe
