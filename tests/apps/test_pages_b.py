"""Pages Bản đồ, Danh mục dữ liệu, Vận hành, Chất lượng dữ liệu: Streamlit AppTest on the published demo
snapshots of the province and of the ministry (which lacks commune-level and model marts), both languages.

Expected figures are computed from the snapshot itself, never written in the test."""

from __future__ import annotations

import json
import os

import duckdb
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from apps import fmt
from apps.checks_text import check_text, severity_text
from tests.conftest import project_path
from tests.security.signin import signed_in

pytestmark = pytest.mark.integration


def page(name: str, role: str = "ky_thuat") -> AppTest:
    """The page opened directly (its own `require` signs in first) by a new user with `role` on the tenant the
    fixture installed (TONGHOP_TENANT), through the real sign-in form."""
    return signed_in(str(project_path("apps", "pages", name)), role, os.environ["TONGHOP_TENANT"])


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error or all("Lỗi" not in e.value for e in at.error), [e.value for e in at.error]
    return at


def english(at: AppTest) -> AppTest:
    at.sidebar.radio[0].set_value("English").run()
    return ok(at)


def sql(paths, query: str, params=None):
    with duckdb.connect(str(paths.snapshot), read_only=True) as con:
        return con.execute(query, params or []).fetchall()


def chart_rows(at: AppTest, i: int = 0) -> int:
    """Rows of data behind the i-th Altair chart (Streamlit ships it as Arrow datasets)."""
    proto = at.get("vega_lite_chart")[i].proto
    return sum(pa.ipc.open_stream(ds.data.data).read_all().num_rows for ds in proto.datasets)


def selectbox(at: AppTest, label_start: str):
    return next(s for s in at.selectbox if s.label.startswith(label_start))


# --- checks in words ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expectation", "column", "vi", "en"), [
    ("expect_column_values_to_not_be_null", "ma_ho_so", "ma_ho_so không được trống", "ma_ho_so must not be empty"),
    ("expect_column_pair_values_a_to_be_greater_than_b", "ngay_hen_tra,ngay_nhan",
     "ngay_hen_tra phải không nhỏ hơn ngay_nhan", "ngay_hen_tra must be at least ngay_nhan"),
    ("expect_table_row_count_to_be_between", None, "số dòng của bảng phải nằm trong khoảng cho phép",
     "the table's row count must be within its range"),
    ("expect_column_kl_divergence_to_be_less_than", "x", "x: kiểm tra «column kl divergence to be less than»",
     "x: check 'column kl divergence to be less than'"),
])
def test_check_text_in_both_languages(expectation, column, vi, en):
    assert check_text(expectation, column, "vi") == vi
    assert check_text(expectation, column, "en") == en
    assert (severity_text("block", "vi"), severity_text("warn", "en")) == ("chặn", "warning")


# --- Bản đồ ------------------------------------------------------------------------------------------------------

def test_map_of_the_province_communes_and_a_commune_detail(province_app):
    n_communes, = sql(province_app, "SELECT count(*) FROM staging.dm_toa_do WHERE cap = 'xa' AND ma_tinh = '37'")[0]
    assert n_communes == 129  # every Ninh Bình commune has a centroid, from the installed package
    # The commune with the most dossiers, and its figures, straight from the mart.
    ma_xa, ten, received = sql(province_app, """
        SELECT h.ma_xa, d.ten, sum(n_tiep_nhan) FROM marts.ho_so_thu_tuc_tuan h
        JOIN staging.dm_toa_do d ON d.cap = 'xa' AND d.ma = h.ma_xa GROUP BY ALL ORDER BY 3 DESC, 1 LIMIT 1""")[0]

    at = ok(page("3_Ban_do.py"))
    assert at.title[0].value == "Bản đồ"
    assert chart_rows(at) == n_communes
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["projection"]["type"] == "mercator" and spec["mark"]["type"] == "circle"
    selectbox(at, "Xem chi tiết").set_value(ma_xa).run()
    ok(at)
    assert any(s.value == f"Chi tiết: {ten}" for s in at.subheader)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Hồ sơ tiếp nhận"] == fmt.number(received, lang="vi")

    selectbox(at, "Chỉ tiêu").set_value("ty_le_dung_han").run()
    ok(at)
    n_rated, = sql(province_app, "SELECT count(DISTINCT ma_xa) FROM marts.ho_so_thu_tuc_tuan WHERE n_da_tra > 0")[0]
    assert chart_rows(at) == n_rated  # communes with no returned dossier have no rate: not drawn as 0 %

    english(at)
    assert at.title[0].value == "Map"
    assert {m.label: m.value for m in at.metric}["Dossiers received"] == fmt.number(received, lang="en")


def test_map_of_the_ministry_shows_provinces(ministry_app):
    assert not sql(ministry_app, "SELECT count(ma_xa) FROM marts.ho_so_thu_tuc_tuan")[0][0]  # no commune at all
    ma_tinh, ten, n = sql(ministry_app, """
        SELECT t.ma_tinh, d.ten, sum(n_giay_phep) FROM marts.tan_so_theo_tinh t
        JOIN staging.dm_toa_do d ON d.cap = 'tinh' AND d.ma = t.ma_tinh GROUP BY ALL ORDER BY 3 DESC, 1 LIMIT 1""")[0]
    at = ok(page("3_Ban_do.py"))
    assert chart_rows(at) == 34
    assert "giấy phép theo tỉnh" in at.caption[0].value
    selectbox(at, "Xem chi tiết").set_value(ma_tinh).run()
    ok(at)
    assert any(s.value == f"Chi tiết: {ten}" for s in at.subheader)
    assert {m.label: m.value for m in at.metric}["Giấy phép tần số"] == fmt.number(n, lang="vi")
    english(at)
    assert "licences by province" in at.caption[0].value


# --- Phản ánh, kiến nghị ------------------------------------------------------------------------------------------

def _feedback_expected(paths, year: int | None = None) -> dict[str, str]:
    where = f"WHERE year(tuan_bat_dau) = {int(year)}" if year else ""
    received, answered, on_time, days = sql(paths, f"""
        SELECT sum(n_tiep_nhan), sum(n_da_tra_loi), sum(n_tra_loi_dung_han) / sum(n_da_tra_loi),
               sum(tb_ngay_tra_loi * n_da_tra_loi) / sum(n_da_tra_loi) FROM marts.phan_anh_tuan {where}""")[0]
    open_, overdue = sql(paths, "SELECT sum(n_ton_dong), sum(n_ton_dong_qua_han) FROM marts.phan_anh_ton_dong_tuan "
                                "WHERE tuan_ket_thuc = (SELECT max(tuan_ket_thuc) FROM marts.phan_anh_ton_dong_tuan)")[0]
    return {"Tiếp nhận": fmt.number(received), "Đã trả lời": fmt.number(answered),
            "Tỷ lệ trả lời đúng hạn": fmt.percent(on_time), "Số ngày trả lời bình quân": fmt.number(days, 1),
            "Đang xử lý (hiện nay)": fmt.number(open_), "Đang xử lý quá hạn (hiện nay)": fmt.number(overdue)}


def test_feedback_page_for_a_leader_with_figures_from_the_marts(province_app):
    at = ok(page("4_Phan_anh_kien_nghi.py", "lanh_dao"))
    assert at.title[0].value == "Phản ánh, kiến nghị"
    assert {m.label: m.value for m in at.metric} == _feedback_expected(province_app)
    n_weeks, = sql(province_app, "SELECT count(DISTINCT tuan_bat_dau) FROM marts.phan_anh_tuan")[0]
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert len(spec["layer"][0]["data"]["values"]) == 3 * n_weeks  # received, on time, late: a point a week each
    n_fields, = sql(province_app, "SELECT count(DISTINCT linh_vuc) FROM marts.phan_anh_tuan")[0]
    assert len(at.dataframe[0].value) == n_fields
    assert not at.get("download_button")  # a leader reads; exports are the analyst's

    # A year narrows the period's figures; what is open now stays today's.
    year, = sql(province_app, "SELECT max(year(tuan_bat_dau)) FROM marts.phan_anh_tuan")[0]
    assert f"Năm {year}" in at.selectbox(key="pakn_period").options
    at.selectbox(key="pakn_period").set_value(str(year)).run()
    assert {m.label: m.value for m in ok(at).metric} == _feedback_expected(province_app, year)

    english(at)
    metrics = {m.label: m.value for m in at.metric}
    assert at.title[0].value == "Citizen feedback"
    received = sql(province_app, f"SELECT sum(n_tiep_nhan) FROM marts.phan_anh_tuan WHERE year(tuan_bat_dau) = {year}")
    assert metrics["Received"] == fmt.number(received[0][0], lang="en")  # 1,234 in English, 1.234 in Vietnamese


def test_feedback_page_of_a_tenant_without_feedback_says_how_to_get_it(ministry_app):
    # The ministry maps no source to the `phan_anh` contract: its snapshot has no feedback marts.
    assert not sql(ministry_app, "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'phan_anh%'")[0][0]
    at = ok(page("4_Phan_anh_kien_nghi.py"))
    assert not at.metric and not at.get("vega_lite_chart")
    assert any("contract phan_anh" in i.value for i in at.info), [i.value for i in at.info]


# --- Danh mục dữ liệu --------------------------------------------------------------------------------------------

def test_catalogue_lists_and_searches_without_accents(province_app):
    n_db, = sql(province_app, "SELECT count(*) FROM marts.danh_muc_csdl")[0]
    n_tables, = sql(province_app, "SELECT count(DISTINCT table_schema || table_name) FROM meta.data_dictionary")[0]
    at = ok(page("5_Danh_muc_du_lieu.py"))
    heads = [s.value for s in at.subheader]
    assert f"Danh mục cơ sở dữ liệu ({n_db} kết quả)" in heads
    assert f"Từ điển dữ liệu ({n_tables} kết quả)" in heads
    assert any(h.value == "Dữ liệu mở: tiến độ theo kế hoạch" for h in at.header)  # the open-data section stays

    # "hồ sơ" typed without accents finds the dossier tables, by their Vietnamese description too.
    expected, = sql(province_app, """
        SELECT count(DISTINCT table_schema || table_name) FROM meta.data_dictionary
        WHERE strip_accents(lower(concat_ws(' ', table_schema || '.' || table_name, table_description_vi,
              table_description_en, column_name, column_description))) LIKE '%ho so%'""")[0]
    at.text_input[0].set_value("HO SO").run()
    ok(at)
    heads = [s.value for s in at.subheader]
    assert f"Từ điển dữ liệu ({expected} kết quả)" in heads and 0 < expected < n_tables
    assert any("marts.ho_so_tuan" in e.label for e in at.expander)
    at.text_input[0].set_value("khongcogicakhongco").run()
    assert any("Không tìm thấy" in c.value for c in ok(at).caption)
    english(at)
    assert any(s.value.startswith("Data dictionary") for s in at.subheader)


def test_catalogue_of_the_ministry(ministry_app):
    at = ok(page("5_Danh_muc_du_lieu.py"))
    assert any(s.value.startswith("Danh mục cơ sở dữ liệu") for s in at.subheader)
    english(at)
    assert any(s.value.startswith("Shared data contracts") for s in at.subheader)


# --- Vận hành ----------------------------------------------------------------------------------------------------

def test_operations_shows_loads_schedule_and_a_failed_run(province_app, monkeypatch):
    monkeypatch.setenv("TONGHOP_AIRFLOW_URL", "http://airflow.test:8080/")
    n_sources, = sql(province_app, "SELECT count(DISTINCT source) FROM meta.loads")[0]
    # A failed Airflow run after the published one: it published nothing, only its record tells.
    with province_app.run_log.open("a", encoding="utf-8") as log:
        for rec in ({"run_id": "scheduled__2026-12-02T02:00:00", "tenant_id": "ninh-binh", "event": "step_start",
                     "step": "extract_load", "via": "airflow", "pid": 1, "host": "h", "at": "2099-01-01T00:00:00+00:00"},
                    {"run_id": "scheduled__2026-12-02T02:00:00", "tenant_id": "ninh-binh", "step": "extract_load",
                     "status": "failed", "seconds": 1.5, "at": "2099-01-01T00:00:02+00:00",
                     "error": "source ho_so: file ho_so.csv, column ngay_nhan: not a date — fix the export"}):
            log.write(json.dumps(rec) + "\n")
    at = ok(page("6_Van_hanh.py"))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Lịch chạy"] == "0 2 * * * (Asia/Ho_Chi_Minh)"
    assert metrics["Lần chạy theo lịch tiếp theo"].startswith("02:00 ")
    loads = at.dataframe[0].value
    assert len(loads) == n_sources
    failure = [e.value for e in at.error]
    assert len(failure) == 1 and "column ngay_nhan: not a date" in failure[0]
    links = [b for b in at.get("link_button")]
    assert any(b.proto.url == "http://airflow.test:8080/dags/tonghop_ninh-binh/runs/scheduled__2026-12-02T02%3A00%3A00"
               for b in links)
    english(at)
    assert {m.label for m in at.metric} >= {"Schedule", "Next scheduled run"}


def test_operations_of_the_ministry(ministry_app):
    at = ok(page("6_Van_hanh.py"))
    assert {m.label: m.value for m in at.metric}["Lịch chạy"] == "30 1 * * * (Asia/Ho_Chi_Minh)"
    english(at)


# --- Chất lượng dữ liệu ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("app", ["province_app", "ministry_app"])
def test_quality_latest_checks_show_each_source_whole_suite(app, request):
    paths = request.getfixturevalue(app)
    suites = dict(sql(paths, """
        WITH latest AS (SELECT source, batch_id FROM meta.loads WHERE status IN ('passed', 'blocked')
                        QUALIFY row_number() OVER (PARTITION BY source ORDER BY loaded_at DESC) = 1)
        SELECT source, count(*) FROM meta.validations JOIN latest USING (source, batch_id) GROUP BY source"""))
    assert max(suites.values()) > 1  # a real suite, not one check per source
    at = ok(page("2_Chat_luong_du_lieu.py"))
    shown = {e.label.split(" · ")[0]: e.label for e in at.expander}
    for source, n in suites.items():
        assert shown[source].endswith(f"/{n} kiểm tra đạt")
    texts = " ".join(str(v) for df in (d.value for d in at.dataframe) for v in df.to_numpy().ravel())
    assert "không được trống" in texts and "must not" not in texts
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["encoding"]["x"]["axis"]["format"] == "%d/%m/%Y" and spec["encoding"]["color"]["title"] == "Tiêu chí"
    english(at)
    texts = " ".join(str(v) for df in (d.value for d in at.dataframe) for v in df.to_numpy().ravel())
    assert "must not be empty" in texts
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["encoding"]["color"]["title"] == "Dimension"
