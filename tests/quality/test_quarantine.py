"""Row-level quarantine and quality scores: SQL predicates agree with GX, planted faults are caught exactly,
and every row read is either promoted or quarantined."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.airflow_task import run_task_step
from pipelines.demo import planted_faults
from pipelines.errors import ValidationBlocked
from pipelines.quality import reference, rowchecks
from pipelines.quality.suites import validate_query
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_ROWS
from tests.quality.test_gx_duckdb import HO_SO_DDL, HO_SO_ROWS, _insert
from tests.security.signin import make_user, sign_in

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "expectations" / "gx" / "expectations"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's GX project plus `le_phi`, a suite for a small fee table with an amount column."""
    root = tmp_path_factory.mktemp("expectations")
    shutil.copytree(REPO / "expectations" / "gx", root / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    warn = {"severity": "warn"}
    suite = {"name": "le_phi", "meta": {}, "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "ma_ho_so"}, "meta": warn},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "so_tien", "min_value": 0},
         "meta": warn, "description": "so_tien (VND) must not be negative"},
        {"type": "expect_column_values_to_be_between",
         "kwargs": {"column": "ty_le_giam", "min_value": 0, "max_value": 1, "strict_max": True}, "meta": warn},
        {"type": "expect_column_values_to_not_be_in_set", "kwargs": {"column": "loai", "value_set": ["huy"]},
         "meta": warn},
        {"type": "expect_column_values_to_not_match_regex", "kwargs": {"column": "loai", "regex": "^x"},
         "meta": warn},
        {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["ma_ho_so", "lan_nop"]},
         "meta": warn},
        {"type": "expect_column_pair_values_a_to_be_greater_than_b",
         "kwargs": {"column_A": "ngay_nop", "column_B": "ngay_tinh"}, "meta": warn},
    ]}
    (root / "gx" / "expectations" / "le_phi.json").write_text(json.dumps(suite), encoding="utf-8")
    return root


# (ma_ho_so, lan_nop, so_tien, ty_le_giam, loai, ngay_nop, ngay_tinh); faults commented per row
LE_PHI_ROWS = [
    ("H1", 1, 50000, 0.0, "thu", "2025-01-02", "2025-01-01"),    # clean
    ("H2", 1, -20000, 0.5, "thu", "2025-01-02", "2025-01-01"),   # negative amount
    ("H3", 1, 0, 1.0, "thu", "2025-01-02", "2025-01-01"),        # ty_le_giam = 1 hits the strict max
    ("H4", 1, 10000, 0.1, "huy", "2025-01-02", "2025-01-01"),    # loai in the forbidden set
    ("H5", 1, 10000, 0.1, "xoa", "2025-01-02", "2025-01-01"),    # loai matches the forbidden regex
    ("H6", 1, 10000, 0.1, "thu", "2025-01-02", "2025-01-01"),    # (H6, 1) twice: both rows
    ("H6", 1, 10000, 0.1, "thu", "2025-01-02", "2025-01-01"),
    ("H7", 2, 10000, 0.1, "thu", "2025-01-01", "2025-01-02"),    # paid before it was assessed
    ("H8", 1, None, None, None, "2025-01-02", None),             # NULLs: only not-null checks look at them
    (None, 1, 10000, 0.1, "thu", "2025-01-02", "2025-01-01"),    # ma_ho_so NULL
]


@pytest.fixture
def le_phi_db(tmp_path: Path) -> Path:
    db = tmp_path / "le_phi.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.le_phi (ma_ho_so VARCHAR, lan_nop INTEGER, so_tien BIGINT, "
                    "ty_le_giam DOUBLE, loai VARCHAR, ngay_nop DATE, ngay_tinh DATE, _batch_id VARCHAR)")
        con.executemany("INSERT INTO raw.le_phi VALUES (?, ?, ?, ?, ?, ?, ?, 'b1')", LE_PHI_ROWS)
        con.execute("INSERT INTO raw.le_phi VALUES (NULL, 1, -1, 9, 'huy', '2025-01-01', '2025-02-01', 'b2')")
    return db


@pytest.fixture
def ho_so_db(tmp_path: Path) -> Path:
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(HO_SO_DDL)
        _insert(con, HO_SO_ROWS, "b1")
    return db


def _sql_counts(db: Path, source: str, outcome, primary_key: list[str]) -> tuple[dict[int, int], dict[int, int]]:
    """Per-check failing rows by the SQL translation, and rows quarantined per check (into a scratch meta)."""
    checks = rowchecks.row_checks(outcome.expectations)
    with duckdb.connect(str(db)) as con:
        con.execute((REPO / "warehouse" / "meta" / "schema.sql").read_text(encoding="utf-8"))
        rowchecks.flag_batch(con, source, "b1", checks, primary_key)
        failing = rowchecks.check_counts(con, checks)
        quarantined = rowchecks.quarantine_rows(con, "r", source, "b1", checks, datetime.now(UTC))
    return failing, quarantined


@pytest.mark.parametrize(("db_fixture", "source", "suite", "key"), [
    ("ho_so_db", "ho_so", "ho_so", ["ma_ho_so"]),
    ("le_phi_db", "le_phi", "le_phi", ["ma_ho_so", "lan_nop"]),
])
def test_sql_predicates_count_what_gx_counts(request, project, db_fixture, source, suite, key):
    db = request.getfixturevalue(db_fixture)
    outcome = validate_query(db, f"SELECT * FROM raw.{source} WHERE _batch_id = 'b1'", suite,
                             expectations_dir=project, run_name="r")
    failing, _ = _sql_counts(db, source, outcome, key)
    gx_counts = {i: o.unexpected_count for i, o in enumerate(outcome.outcomes) if i in failing}
    # Every row-level expectation of the suite is translated (ho_so: all but the row count) ...
    assert len(failing) == len([o for o in outcome.outcomes if o.expectation_type in rowchecks.TRANSLATIONS])
    # ... and its predicate fails exactly the rows GX counts as unexpected, check by check.
    assert failing == gx_counts


def test_negative_amounts_and_friends_are_quarantined(le_phi_db, project):
    outcome = validate_query(le_phi_db, "SELECT * FROM raw.le_phi WHERE _batch_id = 'b1'", "le_phi",
                             expectations_dir=project, run_name="r")
    by_type = {(o.expectation_type, o.column): o.unexpected_count for o in outcome.outcomes}
    # One row per fault as commented in LE_PHI_ROWS; the duplicated key counts both of its rows.
    assert by_type == {
        ("expect_column_values_to_not_be_null", "ma_ho_so"): 1,
        ("expect_column_values_to_be_between", "so_tien"): 1,
        ("expect_column_values_to_be_between", "ty_le_giam"): 1,
        ("expect_column_values_to_not_be_in_set", "loai"): 1,
        ("expect_column_values_to_not_match_regex", "loai"): 1,
        ("expect_compound_columns_to_be_unique", "ma_ho_so,lan_nop"): 2,
        ("expect_column_pair_values_a_to_be_greater_than_b", "ngay_nop,ngay_tinh"): 1,
    }
    _, quarantined = _sql_counts(le_phi_db, "le_phi", outcome, ["ma_ho_so", "lan_nop"])
    assert sum(quarantined.values()) == 8  # H1 and H8 are the only clean rows of the 10
    with duckdb.connect(str(le_phi_db), read_only=True) as con:
        keys = con.execute("SELECT row_key, n_rows FROM meta.quarantine ORDER BY row_key").fetchall()
        negative = con.execute("SELECT failed_expectations FROM meta.quarantine WHERE row_key = '[\"H2\",\"1\"]'"
                               ).fetchone()[0]
    assert ('["H6","1"]', 2) in keys and len(keys) == 7  # 8 rows, H6's two under one key
    assert negative == ["so_tien (VND) must not be negative"]


def test_demo_planted_faults_are_quarantined_exactly(demo_tenant):
    paths = TenantPaths.for_tenant(demo_tenant.tenant_id)
    assert run(demo_tenant, run_id="r1").ok
    planted = planted_faults(DEMO_ROWS)
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        got = dict(con.execute("SELECT description, n_unexpected FROM meta.validations WHERE source = 'ho_so' "
                               "AND NOT is_success").fetchall())
        held = dict(con.execute("SELECT description, n_quarantined FROM meta.validations WHERE source = 'ho_so' "
                                "AND NOT is_success").fetchall())
        loads = con.execute("SELECT source, n_rows_read, n_rows_promoted, n_rows_quarantined, n_rows_rejected "
                            "FROM meta.loads WHERE run_id = 'r1' ORDER BY source").fetchall()
        unbalanced = con.execute("SELECT count(*) FROM meta.loads WHERE n_rows_promoted IS NULL "
                                 "OR n_rows_read <> n_rows_promoted + n_rows_quarantined").fetchone()[0]
        n_staging = con.execute("SELECT count(*) FROM staging.ho_so").fetchone()[0]
        leaked = con.execute("SELECT count(*) FROM staging.ho_so s JOIN meta.quarantine q "
                             "ON q.row_key = to_json([s.ma_ho_so])::VARCHAR").fetchone()[0]
        scores = {d: (n_checked, n_failed) for d, n_checked, n_failed in con.execute(
            "SELECT dimension, n_checked, n_failed FROM meta.quality_scores WHERE source = 'ho_so'").fetchall()}
        chi_so_scores = con.execute("SELECT min(score) FROM meta.quality_scores WHERE source = 'chi_so_xa_hoi_so' "
                                    "AND dimension <> 'timeliness'").fetchone()[0]
    finally:
        con.close()
    dup = planted["ma_ho_so_duplicate"]
    expected = {
        "so_cccd must be 12 digits": planted["so_cccd_invalid"],
        "ngay_tra must be >= ngay_nhan when set": planted["ngay_tra_before_ngay_nhan"],
        "ma_xa must resolve to one commune of the province: current, or a pre-2025 ward code that went whole into one":
            planted["ma_xa_unknown"],
        # each planted duplicate is an extra copy of a clean dossier: 2 rows share its id, both held back
        "ma_ho_so must be unique": 2 * dup,
    }
    assert got == expected  # GX's counts: exactly the planted faults, nothing else fails
    assert held == expected  # quarantine: the same rows (each planted fault is on its own row)
    n_read = DEMO_ROWS + dup
    n_bad = sum(expected.values())
    # 129 communes x 8 quarters, all clean; every dossier line read is promoted or quarantined
    assert unbalanced == 0  # every source of the run, with or without a suite
    assert [row for row in loads if row[0] in ("chi_so_xa_hoi_so", "ho_so")] == [
        ("chi_so_xa_hoi_so", 1032, 1032, 0, 0), ("ho_so", n_read, n_read - n_bad, n_bad, 0)]  # 0 rejected at load
    assert n_staging == n_read - n_bad and leaked == 0
    assert scores["uniqueness"] == (n_read, 2 * dup)
    assert scores["validity"] == (n_read, planted["so_cccd_invalid"])
    # dates out of order and unknown communes are consistency (pair / referential) faults
    assert scores["consistency"] == (n_read, planted["ngay_tra_before_ngay_nhan"] + planted["ma_xa_unknown"])
    # required columns: the key ma_ho_so and the not-null checks' ma_ho_so, ngay_nhan -> 2; no NULLs planted
    assert scores["completeness"] == (n_read * 2, 0)
    # The demo's newest update is from 1 Nov 2025 and its schedule is daily: stale on any later clock.
    assert scores["timeliness"] == (1, 1) and chi_so_scores == 1.0

    # A retry of the batch replaces its quarantine instead of adding to it; the mart keeps the trend.
    assert run(demo_tenant, run_id="r1").ok
    snap = duckdb.connect(str(paths.snapshot), read_only=True)
    try:
        assert snap.execute("SELECT sum(n_rows) FROM meta.quarantine").fetchone()[0] == n_bad
        trend = snap.execute("SELECT DISTINCT run_id, source, dimension FROM marts.chat_luong_du_lieu "
                             "WHERE source IN ('chi_so_xa_hoi_so', 'ho_so')").fetchall()
    finally:
        snap.close()
    assert len(trend) == 4 + 5  # chi_so: 4 dimensions (no incremental column), ho_so: 5


def test_blocked_batch_promotes_nothing_and_fails_the_airflow_task(demo_tenant):
    paths = TenantPaths.for_tenant(demo_tenant.tenant_id)
    # one dossier without a reception date: `ngay_nhan must not be null` is a blocking check
    with closing(sqlite3.connect(paths.sources / "mot_cua.sqlite")) as db, db:
        db.execute("UPDATE ho_so SET ngay_nhan = NULL WHERE rowid = 1")
    run_task_step(demo_tenant.tenant_id, "extract_load", "a1")
    with pytest.raises(ValidationBlocked, match="ngay_nhan must not be null"):
        run_task_step(demo_tenant.tenant_id, "validate", "a1")  # Airflow fails a task that raises
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        status, promoted = con.execute("SELECT status, n_rows_promoted FROM meta.loads WHERE source = 'ho_so'"
                                       ).fetchone()
    assert (status, promoted) == ("blocked", 0)


NOW = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("age", "score"), [
    (timedelta(hours=20), 1.0),   # within one daily interval
    (timedelta(days=2), 1.0),     # one missed delivery is tolerated (2 intervals)
    (timedelta(days=8), 0.25),    # 2 days allowed / 8 days old
    (None, 0.0),                  # no incremental value at all: unknown freshness scores 0
])
def test_timeliness_formula(age, score):
    interval = rowchecks.schedule_interval("0 2 * * *", NOW.replace(tzinfo=None))
    assert interval == timedelta(days=1)
    got, n_checked, n_failed = rowchecks.timeliness(None if age is None else NOW - age, NOW, interval)
    assert got == pytest.approx(score) and n_checked == 1 and n_failed == (score < 1)


def test_reference_value_sets_match_the_installed_package():
    # A suite generated before a vietnam-provinces update must be re-synced (python -m pipelines.quality.reference)
    n_referenced = 0
    for path in sorted(SUITES.glob("*.json")):
        for e in json.loads(path.read_text(encoding="utf-8"))["expectations"]:
            ref = (e.get("meta") or {}).get("reference")
            if ref:
                n_referenced += 1
                assert e["kwargs"]["value_set"] == reference.reference_values(ref), path.name
    assert n_referenced == 2  # ho_so.ma_xa and chi_so_xa_hoi_so.ma_xa
    assert len(reference.commune_codes(37)) == 129  # Ninh Bình's communes and wards since 1 July 2025


def test_unknown_dimension_is_rejected():
    with pytest.raises(ValueError, match="meta.dimension"):
        rowchecks.row_checks([{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"},
                               "meta": {"dimension": "beauty"}, "severity": "warn", "description": "a"}])


def test_quality_page_shows_scores_from_the_snapshot(demo_tenant, monkeypatch):
    from streamlit.testing.v1 import AppTest

    assert run(demo_tenant, run_id="app").ok
    monkeypatch.setenv("TONGHOP_TENANT", demo_tenant.tenant_id)
    name, password = make_user("ky_thuat", demo_tenant.tenant_id)  # an engineer: details and Data Docs too
    at = AppTest.from_file(str(REPO / "apps" / "pages" / "2_Chat_luong_du_lieu.py"), default_timeout=60).run()
    sign_in(at, name, password)
    assert not at.exception, at.exception
    assert at.title[0].value == "Chất lượng dữ liệu"
    metrics = [(m.label, m.value) for m in at.metric]
    # ho_so: 4 of its 3,002 rows share an id (the planted duplicates) -> uniqueness 99,87 % shown as 99,9 %;
    # nothing planted is NULL -> completeness 100,0 %.
    assert ("Duy nhất", "99,9 %") in metrics and ("Đầy đủ", "100,0 %") in metrics
    assert len(at.get("vega_lite_chart")) == 1
    # Promotion counts, latest checks, and the anomaly model's flags (marts.bat_thuong, strongest first).
    with duckdb.connect(str(TenantPaths.for_tenant(demo_tenant.tenant_id).snapshot), read_only=True) as con:
        n_flags = con.execute("SELECT count(*) FROM marts.bat_thuong").fetchone()[0]
        n_checked = con.execute("""
            WITH latest AS (SELECT source, batch_id FROM meta.loads WHERE status IN ('passed', 'blocked')
                            QUALIFY row_number() OVER (PARTITION BY source ORDER BY loaded_at DESC) = 1)
            SELECT count(DISTINCT source) FROM meta.validations JOIN latest USING (source, batch_id)""").fetchone()[0]
    shown = min(n_flags, 50)
    assert f"Bất thường cần xem lại ({shown})" in [h.value for h in at.subheader]
    # One table of promotion counts, one of checks per checked source (its whole suite), the flags, Data Docs.
    assert len(at.dataframe) == 1 + n_checked + (1 if n_flags else 0) + 1  # + the Data Docs result
    if n_flags:
        assert len(at.dataframe[-2].value) == shown
    # Great Expectations' Data Docs, rebuilt by `validate`: drawn in the page (one more table: the chosen
    # validation result), never linked as static files (tests/quality/test_data_docs_app.py).
    assert "Data Docs (Great Expectations)" in [h.value for h in at.subheader]
    # Every table has its .xlsx and CSV buttons (components.table); GX's own site as a zip is the one more.
    assert not at.get("link_button") and len(at.get("download_button")) == 2 * len(at.dataframe) + 1
    at.sidebar.radio[0].set_value("English").run()
    assert at.title[0].value == "Data quality" and "Completeness" in [m.label for m in at.metric]
