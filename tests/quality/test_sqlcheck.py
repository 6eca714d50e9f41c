"""Small batches checked by plain DuckDB SQL (pipelines/quality/sqlcheck.py) give Great Expectations' results.

- equivalence: on crafted batches (NULLs, out-of-range values, bad codes, duplicates, a < b pairs, row count out
  of range, a missing column, an empty batch) and on the demo province's real batches, every expectation's SQL
  outcome equals GX's (success, counts, unexpected_percent to 1e-9, observed value, severity, description);
- what SQL cannot compute exactly is refused (SqlCheckUnsupported), so the caller asks GX;
- the pipeline: a source's first batch is validated by GX, a small later one by SQL, a suite change by GX
  again, and the quarantine, scores and checks recorded are the same as when GX validates the batch;
- the SQL path never imports great_expectations (a fresh process).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.quality.sqlcheck import SqlCheckUnsupported, suite_fingerprint, validate_expectations_sql
from pipelines.quality.suites import validate_expectations
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT, demo_env

REPO = Path(__file__).resolve().parents[2]


def _e(type_: str, severity: str = "warn", description: str | None = None, **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": {"severity": severity}, "severity": severity,
            "description": description}


# Every expectation type the suites use (expectations/, tenants/, pipelines/contracts.py), with the kwargs
# variants GX treats differently (mostly, strict bounds, or_equal, ignore_row_if).
SUITE = [
    _e("expect_table_row_count_to_be_between", "block", min_value=1),
    _e("expect_table_row_count_to_be_between", min_value=1, max_value=3),
    _e("expect_table_row_count_to_be_between", min_value=2, max_value=6, strict_min=True, strict_max=True),
    _e("expect_column_to_exist", "block", column="ma"),
    _e("expect_column_to_exist", "block", column="khong_co"),  # a column the batch lacks
    _e("expect_column_values_to_not_be_null", "block", column="ma"),
    _e("expect_column_values_to_not_be_null", column="ma", mostly=0.8, description="ma mostly present"),
    _e("expect_column_values_to_be_between", column="so_tien", min_value=0, max_value=100),
    _e("expect_column_values_to_be_between", column="ty_le", min_value=0, max_value=1, strict_max=True, mostly=0.5),
    _e("expect_column_values_to_be_between", column="ty_le", min_value=0.1, strict_min=True),
    _e("expect_column_values_to_be_between", column="so_tien", max_value=150),
    _e("expect_column_values_to_match_regex", column="ma_xa", regex="^[0-9]{5}$"),
    _e("expect_column_values_to_match_regex", column="ma_xa", regex="[0-9]{3}"),  # partial match, as GX on DuckDB
    _e("expect_column_values_to_not_match_regex", column="ma_xa", regex="x"),
    _e("expect_column_values_to_match_regex", column="ma_xa", regex="^(?i)[0-9A-F]+$", mostly=0.6),
    _e("expect_column_values_to_be_in_set", "block", column="ma", value_set=["A", "B", "C"]),
    _e("expect_column_values_to_not_be_in_set", column="ma", value_set=["C"]),
    _e("expect_column_values_to_be_in_set", column="lan", value_set=[1, 3]),
    _e("expect_column_values_to_be_unique", column="ma"),
    _e("expect_column_values_to_be_unique", column="lan"),
    _e("expect_compound_columns_to_be_unique", column_list=["ma", "lan"]),
    _e("expect_compound_columns_to_be_unique", column_list=["ma", "lan"], ignore_row_if="any_value_is_missing"),
    _e("expect_compound_columns_to_be_unique", column_list=["ma", "so_tien"], ignore_row_if="never"),
    _e("expect_column_pair_values_a_to_be_greater_than_b", column_A="ngay_tra", column_B="ngay_nhan"),
    _e("expect_column_pair_values_a_to_be_greater_than_b", column_A="ngay_tra", column_B="ngay_nhan", or_equal=True),
    _e("expect_column_pair_values_a_to_be_greater_than_b", column_A="ngay_tra", column_B="ngay_nhan", or_equal=True,
       ignore_row_if="either_value_is_missing"),
    _e("expect_column_pair_values_a_to_be_greater_than_b", column_A="ngay_tra", column_B="ngay_nhan",
       ignore_row_if="neither", mostly=0.3),
]

# (ma, lan, so_tien, ty_le, ma_xa, ngay_nhan, ngay_tra); faults commented per row
BAD = [
    ("A", 1, 10, 0.5, "12345", "2025-01-01", "2025-01-02"),       # clean
    ("A", 1, -5, 1.0, "1234x", "2025-01-02", "2025-01-01"),       # (A, 1) twice; negative; ratio = strict max;
                                                                  # code with a letter; returned before received
    (None, None, None, None, None, None, None),                   # all NULL
    ("B", None, 200, 0.1, "99999", "2025-01-01", None),           # out of range; ratio = strict min; not returned
    ("C", 3, 0, 0.0, "abcde", "2025-01-01", "2025-01-01"),        # forbidden C; letters; returned the same day
    ("D", 3, 5, 0.2, "0000", None, None),                         # outside the set; 4 digits; no dates
]
CLEAN = [("A", 1, 1, 0.5, "12345", "2025-01-01", "2025-01-02"), ("B", 3, 2, 0.6, "54321", "2025-01-01", "2025-01-03")]
BATCHES = {"bad": BAD, "clean": CLEAN, "all_null": [(None,) * 7], "empty": []}


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("sqlcheck") / "crafted.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE SCHEMA raw; CREATE TABLE raw.t (ma VARCHAR, lan INTEGER, so_tien BIGINT, ty_le DOUBLE, "
                    "ma_xa VARCHAR, ngay_nhan DATE, ngay_tra DATE, _batch_id VARCHAR)")
        for batch, rows in [(b, r) for b, r in BATCHES.items() if r]:
            con.executemany("INSERT INTO raw.t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(*r, batch) for r in rows])
    return db


def _same(gx, sql) -> None:
    """GX's outcome and SQL's, expectation by expectation; the message names the first that differs."""
    assert len(gx.outcomes) == len(sql.outcomes)
    for g, s in zip(gx.outcomes, sql.outcomes, strict=True):
        what = f"{g.expectation_type} {g.column}"
        assert g.error is None, f"GX could not evaluate {what}: {g.error}"
        assert (s.expectation_type, s.column, s.severity, s.description) == \
               (g.expectation_type, g.column, g.severity, g.description), what
        assert (s.success, s.element_count, s.unexpected_count, s.observed_value, s.error) == \
               (g.success, g.element_count, g.unexpected_count, g.observed_value, g.error), what
        if g.unexpected_percent is None:
            assert s.unexpected_percent is None, what
        else:
            assert s.unexpected_percent == pytest.approx(g.unexpected_percent, rel=0, abs=1e-9), what
    assert sql.expectations == gx.expectations  # what the quarantine (rowchecks) reads
    assert sql.success == gx.success and sql.n_failed == gx.n_failed


@pytest.mark.parametrize("batch", list(BATCHES))
def test_crafted_batches_give_gx_results(crafted: Path, batch: str):
    query = f"SELECT * FROM raw.t WHERE _batch_id = '{batch}'"
    gx = validate_expectations(crafted, query, "crafted", SUITE, run_name="r")
    sql = validate_expectations_sql(crafted, query, "crafted", SUITE, run_name="r")
    _same(gx, sql)
    if batch == "bad":  # the batch really exercises failures of every kind (else equality proves little)
        failed = {o.expectation_type for o in gx.outcomes if not o.success}
        assert failed == {e["type"] for e in SUITE}
        assert {o.unexpected_count for o in gx.outcomes if o.unexpected_count is not None} > {0, 1, 2}
    if batch == "clean":  # 2 rows: only the strict row count (> 2) and the missing column fail
        assert [(o.expectation_type, o.column) for o in gx.outcomes if not o.success] == [
            ("expect_table_row_count_to_be_between", None), ("expect_column_to_exist", "khong_co")]


def test_sql_accepts_an_open_connection(crafted: Path, tmp_path: Path):
    copy = tmp_path / "rw.duckdb"
    shutil.copy(crafted, copy)
    query = "SELECT * FROM raw.t WHERE _batch_id = 'bad'"
    with duckdb.connect(str(copy)) as con:  # the pipeline's read-write connection: nothing is written
        before = con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()
        outcome = validate_expectations_sql(con, query, "crafted", SUITE, run_name="r")
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == before
    _same(validate_expectations(crafted, query, "crafted", SUITE, run_name="r"), outcome)


@pytest.mark.parametrize(("expectation", "why"), [
    (_e("expect_column_values_to_not_be_null", column="khong_co"), "not a column of the batch"),
    (_e("expect_column_values_to_not_be_null", column="MA"), "not a column of the batch"),  # DuckDB would find it
    (_e("expect_column_values_to_not_be_null", column="ma", row_condition='ma=="A"', condition_parser="great_expectations"),
     "row_condition"),
    (_e("expect_column_mean_to_be_between", column="so_tien", min_value=0), "not translated"),
    (_e("expect_column_values_to_be_in_set", column="ma", value_set=[]), "value_set"),
    (_e("expect_column_values_to_be_in_set", column="lan", value_set=["1"]), "value_set"),
    (_e("expect_column_values_to_match_regex", column="lan", regex="^1$"), "regex only"),
    (_e("expect_column_values_to_match_regex", column="ma_xa", regex="("), "DuckDB could not"),
    (_e("expect_column_values_to_be_between", column="ngay_nhan", min_value="2025-01-01"), "bounds"),
    (_e("expect_column_values_to_be_between", column="so_tien", min_value=5, max_value=1), "bounds"),
    (_e("expect_column_values_to_be_between", column="so_tien", min_value=0, mostly=1.5), "mostly"),
    (_e("expect_compound_columns_to_be_unique", column_list=["ma", "lan"], ignore_row_if="sometimes"),
     "ignore_row_if"),
    (_e("expect_column_to_exist", column="ma", column_index=0), "column_index"),
])
def test_what_sql_cannot_compute_exactly_is_left_to_gx(crafted: Path, expectation: dict, why: str):
    with pytest.raises(SqlCheckUnsupported, match=why):
        validate_expectations_sql(crafted, "SELECT * FROM raw.t WHERE _batch_id = 'bad'", "s",
                                  [SUITE[0], expectation], run_name="r")


def test_fingerprint_follows_the_suite():
    same = suite_fingerprint("s", json.loads(json.dumps(SUITE)))
    assert same == suite_fingerprint("s", SUITE)
    assert suite_fingerprint("t", SUITE) != same
    changed = json.loads(json.dumps(SUITE))
    changed[1]["kwargs"]["max_value"] = 4
    assert suite_fingerprint("s", changed) != same
    changed = json.loads(json.dumps(SUITE))
    changed[0]["severity"] = "warn"
    assert suite_fingerprint("s", changed) != same


# --------------------------------------------------------------------------- the demo province's real batches


@pytest.fixture(scope="module")
def demo_warehouse(province_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's published province's warehouse (its batches as loaded, planted faults included)."""
    src = TenantPaths(province_snapshot.parent).warehouse
    dst = tmp_path_factory.mktemp("sqlcheck_demo") / "warehouse.duckdb"
    shutil.copy(src, dst)
    return dst


def test_demo_batches_give_gx_results(demo_warehouse: Path):
    from pipelines.config import load_tenant
    from pipelines.quality.suites import source_expectations
    from pipelines.settings import EXPECTATIONS_DIR

    tenant = load_tenant(DEMO_TENANT)
    with duckdb.connect(str(demo_warehouse), read_only=True) as con:
        batches = con.execute("SELECT source, batch_id FROM meta.loads WHERE status = 'passed' ORDER BY 1").fetchall()
        columns = {s: dict(con.execute(f'SELECT column_name, column_type FROM (DESCRIBE raw."{s}")').fetchall())
                   for s, _ in batches}
    checked = 0
    failures = 0
    for source, batch in batches:
        checks = source_expectations(tenant, tenant.source(source), columns[source], EXPECTATIONS_DIR)
        if checks is None:
            continue
        suite, expectations = checks
        query = f"SELECT * FROM raw.\"{source}\" WHERE _batch_id = '{batch}'"
        gx = validate_expectations(demo_warehouse, query, suite, expectations, run_name="r")
        sql = validate_expectations_sql(demo_warehouse, query, suite, expectations, run_name="r")
        _same(gx, sql)
        checked += len(expectations)
        failures += gx.n_failed
    assert checked >= 40 and failures >= 4  # ho_so's planted faults among them


# --------------------------------------------------------------------------- the pipeline



def _new_dossiers(paths: TenantPaths, tag: str) -> None:
    """A day's new and late-updated dossiers, with faults planted in some new ones (quarantined)."""
    from pipelines.demo.increment import add_dossier_changes

    db = paths.sources / "mot_cua.sqlite"
    with sqlite3.connect(str(db)) as con:
        last = datetime.fromisoformat(con.execute("SELECT max(ngay_cap_nhat) FROM ho_so").fetchone()[0])
    add_dossier_changes(db, n_new=40, n_late=6, when=last + timedelta(hours=1), tag=tag)
    with sqlite3.connect(str(db)) as con:
        new = [r for (r,) in con.execute(f"SELECT rowid FROM ho_so WHERE ma_ho_so LIKE '%-{tag}' ORDER BY rowid")]
        con.execute(f"UPDATE ho_so SET so_cccd = '12AB' WHERE rowid IN ({new[0]}, {new[1]})")  # not 12 digits
        con.execute(f"UPDATE ho_so SET ngay_tra = date(ngay_nhan, '-2 day'), trang_thai = 'da_tra' "
                    f"WHERE rowid = {new[2]}")  # returned before it was received
        con.execute(f"INSERT INTO ho_so SELECT * FROM ho_so WHERE rowid = {new[3]}")  # a repeated dossier
    st = db.stat()
    os.utime(db, ns=(st.st_atime_ns, st.st_mtime_ns - 60 * 10**9))  # an export from a minute ago: stat trusted


def _recorded(db: Path, batch: str) -> dict:
    q = lambda sql: sorted(duckdb.connect(str(db), read_only=True).execute(sql, [batch]).fetchall())  # noqa: E731
    return {
        "quarantine": q("SELECT source, row_key, n_rows, failed_expectations FROM meta.quarantine WHERE batch_id = ?"),
        "validations": q("SELECT source, suite, expectation, column_name, severity, is_success, n_elements, "
                         "n_unexpected, round(unexpected_pct, 9), observed_value, description, n_quarantined, "
                         "suite_fingerprint FROM meta.validations WHERE batch_id = ?"),
        "loads": q("SELECT source, status, n_rows_read, n_rows_promoted, n_rows_quarantined FROM meta.loads "
                   "WHERE batch_id = ?"),
        # timeliness compares the data with the load's wall-clock time: its score differs between two loads
        "scores": q("SELECT source, dimension, CASE WHEN dimension <> 'timeliness' THEN score END, n_checked, n_failed "
                    "FROM meta.quality_scores WHERE batch_id = ?"),
    }


def _engines(db: Path) -> dict[tuple[str, str], set[str]]:
    rows = duckdb.connect(str(db), read_only=True).execute(
        "SELECT batch_id, source, list(DISTINCT engine) FROM meta.validations GROUP BY ALL").fetchall()
    return {(b, s): set(e) for b, s, e in rows}


def test_first_batch_by_gx_small_later_one_by_sql_suite_change_by_gx(
        province_snapshot: Path, demo_portals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog):
    home = province_snapshot.parent.parent
    results = {}
    for mode in ("sql", "gx"):
        shutil.copytree(home / DEMO_TENANT, tmp_path / mode / DEMO_TENANT)
        demo_env(monkeypatch, tmp_path / mode, demo_portals)
        paths = TenantPaths.for_tenant(DEMO_TENANT)
        if mode == "gx":
            monkeypatch.setenv("TONGHOP_SQLCHECK_MAX_ROWS", "0")  # every batch by GX, as before this change
        # the copy's first run reads every source again (new paths): nothing new, nothing validated
        assert run(DEMO_TENANT, steps=["extract_load", "validate"], run_id="first").ok
        _new_dossiers(paths, "d1")
        docs_before = sorted(p.name for p in paths.validations.glob("*.json"))
        report = run(DEMO_TENANT, steps=["extract_load", "validate"], run_id="day1")
        assert report.ok, report.summary()
        metrics = next(r.metrics for r in report.results if r.step == "validate")
        assert metrics["n_batches"] == 1 and metrics[f"n_batches_{mode}"] == 1, metrics
        engines = _engines(paths.warehouse)
        # the published province's batches were its first: GX validated every one of them
        first = [e for (b, _), e in engines.items() if b == "opendata"]
        assert len(first) >= 2 and all(e == {"gx"} for e in first)
        assert engines[("day1", "ho_so")] == {mode}
        # Data Docs and the GX result files are GX's: an SQL-checked batch adds no result
        docs_after = sorted(p.name for p in paths.validations.glob("*.json"))
        assert (docs_after == docs_before) == (mode == "sql")
        results[mode] = _recorded(paths.warehouse, "day1")
    assert results["sql"]["quarantine"], "the planted faults must be quarantined"
    assert len(results["sql"]["quarantine"]) >= 4
    assert results["sql"] == results["gx"]  # quarantine, checks, promotion counts and scores: the same

    # The suite changes (a reviewed edit of ho_so.json): the next batch is GX's again, then SQL's.
    monkeypatch.delenv("TONGHOP_SQLCHECK_MAX_ROWS")
    demo_env(monkeypatch, tmp_path / "sql", demo_portals)
    paths = TenantPaths.for_tenant(DEMO_TENANT)
    project = tmp_path / "expectations"
    shutil.copytree(REPO / "expectations" / "gx", project / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    suite_file = project / "gx" / "expectations" / "ho_so.json"
    suite = json.loads(suite_file.read_text(encoding="utf-8"))
    suite["expectations"].append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "co_quan"},
                                  "meta": {"severity": "warn"}})
    suite_file.write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr("pipelines.steps.EXPECTATIONS_DIR", project)
    for day, engine in (("day2", "gx"), ("day3", "sql")):
        _new_dossiers(paths, day.replace("day", "d"))
        report = run(DEMO_TENANT, steps=["extract_load", "validate"], run_id=day)
        assert report.ok, report.summary()
        assert _engines(paths.warehouse)[(day, "ho_so")] == {engine}, day
    fingerprints = duckdb.connect(str(paths.warehouse), read_only=True).execute(
        "SELECT batch_id, any_value(suite_fingerprint) FROM meta.validations WHERE source = 'ho_so' "
        "GROUP BY ALL").fetchall()
    by_batch = dict(fingerprints)
    assert by_batch["day2"] == by_batch["day3"] != by_batch["day1"] == by_batch["opendata"]

    # A check SQL does not compute (a column mean): GX validates every batch of that suite, and the log says why.
    suite["expectations"].append({"type": "expect_column_value_lengths_to_be_between",
                                  "kwargs": {"column": "ma_ho_so", "min_value": 1}, "meta": {"severity": "warn"}})
    suite_file.write_text(json.dumps(suite, ensure_ascii=False), encoding="utf-8")
    for day in ("day4", "day5"):
        _new_dossiers(paths, day.replace("day", "d"))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="tonghop.steps"):
            report = run(DEMO_TENANT, steps=["extract_load", "validate"], run_id=day)
        assert report.ok, report.summary()
        assert _engines(paths.warehouse)[(day, "ho_so")] == {"gx"}, day
    assert "expect_column_value_lengths_to_be_between is not translated to SQL" in caplog.text


# --------------------------------------------------------------------------- no GX import on the SQL path

_NO_GX = """
import sys
from pathlib import Path
from pipelines.runner import run
report = run("ninh-binh", steps=["validate"], run_id="day1")
assert report.ok, report.summary()
v = next(r.metrics for r in report.results if r.step == "validate")
print(v["n_batches_sql"], v["n_batches_gx"], "great_expectations" in sys.modules,
      sorted(m for m in sys.modules if m.split(".")[0] in ("great_expectations", "pandas", "sqlalchemy"))[:3])
"""


def test_the_sql_path_does_not_import_great_expectations(province_snapshot: Path, demo_portals, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    shutil.copytree(province_snapshot.parent, tmp_path / DEMO_TENANT)
    demo_env(monkeypatch, tmp_path, demo_portals)
    paths = TenantPaths.for_tenant(DEMO_TENANT)
    assert run(DEMO_TENANT, steps=["extract_load", "validate"], run_id="first").ok
    _new_dossiers(paths, "d1")
    assert run(DEMO_TENANT, steps=["extract_load"], run_id="day1").ok
    done = subprocess.run([sys.executable, "-c", _NO_GX], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    n_sql, n_gx, gx_imported, *_ = done.stdout.split()
    assert (n_sql, n_gx, gx_imported) == ("1", "0", "False"), done.stdout
