"""Great Expectations on DuckDB by SQL pushdown: why the shim is needed, and that it is right.

Uses the real ``expectations/`` GX project (copied to tmp so nothing is written into the repo)
and small DuckDB files created in tmp_path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from pipelines.quality import gx_duckdb
from pipelines.quality.suites import ExpectationOutcome, build_data_docs, validate_query

REPO = Path(__file__).resolve().parents[2]
BATCH_QUERY = "SELECT * FROM raw.ho_so WHERE _batch_id = 'b1'"
COMMUNE_CHECK = "ma_xa must resolve to one commune of the province: current, or a pre-2025 ward code that went whole into one"

HO_SO_DDL = """
CREATE SCHEMA raw;
CREATE TABLE raw.ho_so (
    ma_ho_so VARCHAR, ma_thu_tuc VARCHAR, linh_vuc VARCHAR, co_quan VARCHAR, ma_xa VARCHAR,
    ngay_nhan DATE, ngay_hen_tra DATE, ngay_tra DATE, trang_thai VARCHAR, so_cccd VARCHAR,
    so_dien_thoai VARCHAR, ho_ten VARCHAR, ngay_cap_nhat TIMESTAMP,
    _source VARCHAR, _batch_id VARCHAR, _loaded_at TIMESTAMP
);
"""

# Batch b1: 10 rows, the faults planted in each row are commented above it. b2 is full of faults that must NOT
# be counted because the validated query selects b1 only.
#  (ma_ho_so, ma_xa, ngay_nhan, ngay_hen_tra, ngay_tra, trang_thai, so_cccd)
HO_SO_ROWS = [
    # clean
    ("H01", "00001", "2024-03-01", "2024-03-05", "2024-03-04", "da_tra", "001234567890"),
    # ngay_hen_tra == ngay_nhan (allowed: or_equal); so_cccd NULL (not checked by the regex)
    ("H02", "00002", "2024-03-01", "2024-03-01", None, "dang_xu_ly", None),
    # duplicated ma_ho_so H03 (x2); ngay_tra == ngay_nhan (allowed)
    ("H03", "00003", "2024-03-02", "2024-03-06", "2024-03-02", "da_tra", "001234567891"),
    ("H03", "00004", "2024-03-02", "2024-03-06", None, "dang_xu_ly", "001234567892"),
    # ma_ho_so NULL
    (None, "00005", "2024-03-03", "2024-03-07", None, "dang_xu_ly", "001234567893"),
    # ngay_nhan NULL (ngay_hen_tra NULL too, so the pair check skips the row)
    ("H06", "00006", None, None, None, "dang_xu_ly", "001234567894"),
    # trang_thai outside the set
    ("H07", "00007", "2024-03-04", "2024-03-08", None, "huy", "001234567895"),
    # so_cccd too short
    ("H08", "00008", "2024-03-04", "2024-03-08", None, "dang_xu_ly", "12345"),
    # ngay_hen_tra before ngay_nhan; so_cccd with a letter
    ("H09", "00009", "2024-03-05", "2024-03-01", None, "dang_xu_ly", "A01234567890"),
    # ngay_tra before ngay_nhan; 4-digit ma_xa
    ("H10", "1234", "2024-03-05", "2024-03-09", "2024-03-02", "da_tra", "001234567897"),
]
B2_ROWS = [
    (None, "x", None, None, None, "bad", "bad"),
    (None, "y", "2024-01-02", "2024-01-01", "2024-01-01", "bad", "bad"),
]


def _insert(con: duckdb.DuckDBPyConnection, rows: list[tuple], batch_id: str) -> None:
    con.executemany(
        "INSERT INTO raw.ho_so VALUES (?, 'TT01', 'dat_dai', 'UBND', ?, ?, ?, ?, ?, ?, '0900000000',"
        " 'Nguyen Van A', TIMESTAMP '2024-03-10 08:00:00', 'csv', ?, TIMESTAMP '2024-03-10 09:00:00')",
        [(*row, batch_id) for row in rows],
    )


@pytest.fixture
def ho_so_db(tmp_path: Path) -> Path:
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(HO_SO_DDL)
        _insert(con, HO_SO_ROWS, "b1")
        _insert(con, B2_ROWS, "b2")
    return db


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repo's GX project (suites as committed, no uncommitted/ state)."""
    root = tmp_path_factory.mktemp("expectations")
    shutil.copytree(REPO / "expectations" / "gx", root / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    return root


def _ephemeral_context():  # type: ignore[no-untyped-def]
    gx_duckdb.quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    return gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )


def _by_description(outcomes: list[ExpectationOutcome]) -> dict[str, ExpectationOutcome]:
    return {o.description: o for o in outcomes}


# 1 -------------------------------------------------------------------- the bug the shim fixes


def test_unfixed_gx_sql_path_returns_no_rows(ho_so_db: Path) -> None:
    # (a) The mechanism, with SQLAlchemy only: GX reads results after `with engine.connect()`
    # has closed; the ROLLBACK issued on close runs on the same DuckDB connection and discards
    # the pending result, so fetchall() is empty. With our dialect the cursor owns its result.
    plain = sa.create_engine(f"duckdb:///{ho_so_db}")
    with plain.connect() as conn:
        result = conn.execute(sa.text("SELECT count(*) FROM raw.ho_so"))
    assert result.fetchall() == []
    plain.dispose()

    fixed = sa.create_engine(gx_duckdb.connection_string(ho_so_db))
    with fixed.connect() as conn:
        result = conn.execute(sa.text("SELECT count(*) FROM raw.ho_so"))
    assert result.fetchall() == [(12,)]
    gx_duckdb.release(fixed)

    # (b) What users see: a plain GX SQL datasource on duckdb-engine cannot compute any metric.
    import great_expectations as gx

    context = _ephemeral_context()
    ds = context.data_sources.add_sql(name="plain", connection_string=f"duckdb:///{ho_so_db}")
    batch = ds.add_query_asset(name="q", query=BATCH_QUERY).add_batch_definition_whole_table("w").get_batch()
    try:
        res = batch.validate(gx.expectations.ExpectColumnValuesToNotBeNull(column="ma_ho_so"))
    finally:
        ds.get_engine().dispose()
        ds.get_execution_engine().engine.dispose()
    assert res.success is False
    assert res.result == {}  # no element_count / unexpected_count at all
    assert "list index out of range" in json.dumps(res.exception_info)


# 2 -------------------------------------------------------------------- correct results


def test_planted_faults_exact_counts_and_severity(ho_so_db: Path, project: Path, tmp_path: Path) -> None:
    outcome = validate_query(
        ho_so_db,
        BATCH_QUERY,
        "ho_so",
        expectations_dir=project,
        run_name="run:1",
        results_dir=tmp_path / "res",
    )
    got = _by_description(outcome.outcomes)
    suite = json.loads((project / "gx" / "expectations" / "ho_so.json").read_text(encoding="utf-8"))
    # reported in the suite's order (GX itself groups results by domain)
    assert [o.description for o in outcome.outcomes] == [e["description"] for e in suite["expectations"]]
    assert all(o.error is None for o in outcome.outcomes), [o.error for o in outcome.outcomes]

    def check(description: str, severity: str, success: bool, unexpected: int | None) -> ExpectationOutcome:
        o = got[description]
        assert (o.severity, o.success, o.unexpected_count) == (severity, success, unexpected), o
        return o

    # 10 rows in b1 (the 2 rows of b2 are outside the query) -> observed 10, passes.
    assert check("table must have at least 1 row", "block", True, None).observed_value == "10"
    # only the 5th row has ma_ho_so NULL -> 1 of 10 rows = 10 %.
    nulls = check("ma_ho_so must not be null", "block", False, 1)
    assert (nulls.element_count, nulls.unexpected_percent, nulls.column) == (10, 10.0, "ma_ho_so")
    # only H06 has ngay_nhan NULL.
    check("ngay_nhan must not be null", "block", False, 1)
    # only H07 ('huy') is outside {'da_tra','dang_xu_ly'}.
    check("trang_thai must be one of {'da_tra', 'dang_xu_ly'}", "block", False, 1)
    # H03 appears twice: GX counts every row of a duplicated value -> 2 (the NULL id is ignored).
    check("ma_ho_so must be unique", "warn", False, 2)
    # H08 '12345' (too short) and H09 'A01234567890' (letter); H02's NULL is not checked -> 2.
    check("so_cccd must be 12 digits", "warn", False, 2)
    # H09 has hen_tra < nhan; H02 hen_tra == nhan is fine (or_equal); H06 both NULL is skipped -> 1.
    pair = check("ngay_hen_tra must be >= ngay_nhan", "warn", False, 1)
    assert pair.column == "ngay_hen_tra,ngay_nhan"
    # H10 returned before received; H03 tra == nhan is fine; rows with ngay_tra NULL skipped -> 1.
    check("ngay_tra must be >= ngay_nhan when set", "warn", False, 1)
    # H10 '1234' has 4 digits -> 1.
    check("ma_xa must be a 5-digit commune code", "warn", False, 1)
    # The codes 00001-00009 (Hà Nội's pre-2025 wards) and '1234' are no commune of Ninh Bình, current
    # (129 codes 13xxx-14xxx, vietnam-provinces) or legacy -> all 10 rows.
    check(COMMUNE_CHECK, "warn", False, 10)

    assert {o.description for o in outcome.blocking_failures} == {
        "ma_ho_so must not be null",
        "ngay_nhan must not be null",
        "trang_thai must be one of {'da_tra', 'dang_xu_ly'}",
    }
    assert len(outcome.warnings) == 6
    assert (outcome.success, outcome.n_passed, outcome.n_failed) == (False, 1, 9)

    # the validation result JSON is kept, one file per run_name + suite
    assert outcome.result_path == tmp_path / "res" / "run_1__ho_so.json"
    saved = json.loads(outcome.result_path.read_text(encoding="utf-8"))
    assert saved["suite_name"] == "ho_so" and saved["meta"]["run_name"] == "run:1"


def test_only_warnings_do_not_block(ho_so_db: Path, project: Path) -> None:
    # H03's two rows: their faults are the duplicated id and made-up commune codes, `warn` expectations.
    outcome = validate_query(
        ho_so_db, BATCH_QUERY + " AND ma_ho_so = 'H03'", "ho_so", expectations_dir=project, run_name="r"
    )
    assert outcome.success is True
    assert outcome.blocking_failures == []
    assert [(o.description, o.unexpected_count) for o in outcome.warnings] == [
        ("ma_ho_so must be unique", 2), (COMMUNE_CHECK, 2)]


# 3 -------------------------------------------------------------------- SQL pushdown, no DataFrame


def test_checks_run_as_sql_inside_duckdb(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "big.duckdb"
    n_rows = 5000
    with duckdb.connect(str(db)) as con:
        con.execute(HO_SO_DDL)
        # every 5th row has a 4-digit ma_xa -> 1000 unexpected values for the ma_xa check
        con.execute(
            f"""INSERT INTO raw.ho_so SELECT 'H' || i, 'TT01', 'dat_dai', 'UBND',
                  CASE WHEN i % 5 = 0 THEN '1234' ELSE lpad((i % 99999)::VARCHAR, 5, '0') END,
                  DATE '2024-01-01' + (i % 300)::INT, DATE '2024-01-01' + (i % 300)::INT + 5, NULL,
                  'da_tra', lpad(i::VARCHAR, 12, '0'), '09', 'A', now()::TIMESTAMP, 'csv', 'b1', now()::TIMESTAMP
                FROM range({n_rows}) t(i)"""
        )

    import great_expectations  # noqa: F401  (import GX before the traps below are set)
    import pandas as pd
    from great_expectations.execution_engine import PandasExecutionEngine

    def no_dataframes(*args: object, **kwargs: object) -> None:
        raise AssertionError("a pandas DataFrame was built during validation")

    monkeypatch.setattr(pd.DataFrame, "__init__", no_dataframes)
    monkeypatch.setattr(PandasExecutionEngine, "__init__", no_dataframes)
    for name in ("read_sql", "read_sql_query", "read_sql_table"):
        monkeypatch.setattr(pd, name, no_dataframes)

    # record every statement and how many rows Python pulled back from each one
    statements: dict[int, str] = {}
    fetched: dict[int, int] = {}
    cursor_cls = gx_duckdb._IndependentCursor

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements[id(cursor)] = statement
        fetched[id(cursor)] = 0

    def counting(method: str):  # type: ignore[no-untyped-def]
        def fetch(self, *args):  # type: ignore[no-untyped-def]
            rows = getattr(self._duck_cursor, method)(*args)
            got = 0 if rows is None else (1 if method == "fetchone" else len(rows))
            fetched[id(self)] = fetched.get(id(self), 0) + got
            return rows

        return fetch

    for method in ("fetchone", "fetchmany", "fetchall"):
        monkeypatch.setattr(cursor_cls, method, counting(method), raising=False)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    try:
        outcome = validate_query(db, BATCH_QUERY, "ho_so", expectations_dir=project, run_name="r")
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)

    assert all(o.error is None for o in outcome.outcomes), [o.error for o in outcome.outcomes]
    ma_xa = _by_description(outcome.outcomes)["ma_xa must be a 5-digit commune code"]
    assert (ma_xa.element_count, ma_xa.unexpected_count) == (n_rows, n_rows // 5)
    assert _by_description(outcome.outcomes)["table must have at least 1 row"].observed_value == str(n_rows)

    on_table = {k: s for k, s in statements.items() if "raw.ho_so" in s}
    assert on_table, "no SQL reached DuckDB"
    # DuckDB computed the checks: aggregates over the batch query used as a subquery ...
    assert any("count(*)" in s for s in on_table.values())
    assert any("sum(CASE WHEN" in s for s in on_table.values())
    # ... and no statement shipped table rows to Python: at most one row (an aggregate) each.
    assert any(fetched[k] == 1 for k in on_table)  # the counting spy is wired in
    assert max(fetched[k] for k in on_table) <= 1, {
        s: fetched[k] for k, s in on_table.items() if fetched[k] > 1
    }
    for key, statement in on_table.items():
        if fetched[key] == 1:
            assert "count(" in statement or "sum(" in statement, statement


# 4 -------------------------------------------------------------------- connections released


def test_db_is_writable_after_validation_in_process_and_subprocess(ho_so_db: Path, project: Path) -> None:
    validate_query(ho_so_db, BATCH_QUERY, "ho_so", expectations_dir=project, run_name="r")
    assert gx_duckdb.open_connection_count(ho_so_db) == 0

    with duckdb.connect(str(ho_so_db)) as con:  # read-write, same process
        con.execute("INSERT INTO raw.ho_so (ma_ho_so, _batch_id) VALUES ('H99', 'b3')")

    code = (
        "import duckdb, sys\n"
        "with duckdb.connect(sys.argv[1]) as con:\n"
        "    con.execute(\"INSERT INTO raw.ho_so (ma_ho_so, _batch_id) VALUES ('H98', 'b3')\")\n"
        "    print(con.execute(\"SELECT count(*) FROM raw.ho_so WHERE _batch_id = 'b3'\").fetchone()[0])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ho_so_db)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"


def test_release_closes_what_a_forgotten_result_holds(ho_so_db: Path) -> None:
    engine = sa.create_engine(gx_duckdb.connection_string(ho_so_db))
    conn = engine.connect()
    result = conn.execute(sa.text("SELECT * FROM raw.ho_so"))  # never fetched nor closed
    assert gx_duckdb.open_connection_count(ho_so_db) == 2  # the connection + its cursor
    assert gx_duckdb.release(engine) == 1  # dispose() alone cannot close a checked-out one
    assert gx_duckdb.open_connection_count(ho_so_db) == 0
    duckdb.connect(str(ho_so_db)).close()  # the file lock is gone
    del result
    conn.invalidate()


def test_validation_connections_are_read_only(ho_so_db: Path) -> None:
    engine = sa.create_engine(gx_duckdb.connection_string(ho_so_db))
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError, match="read-only"):
            conn.execute(sa.text("CREATE TABLE raw.x (i INTEGER)"))
    finally:
        gx_duckdb.release(engine)


def test_validation_connections_get_the_memory_settings_by_default(ho_so_db: Path, project: Path) -> None:
    from pipelines.quality.suites import VALIDATION_DUCKDB_SETTINGS

    seen: list[tuple] = []

    def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_connection.cursor()
        cur.execute("SELECT current_setting('memory_limit'), current_setting('preserve_insertion_order')")
        seen.append(tuple(cur.fetchone()))
        cur.close()

    sa.event.listen(sa.pool.Pool, "connect", on_connect)
    try:
        validate_query(ho_so_db, BATCH_QUERY, "ho_so", expectations_dir=project, run_name="mem")
    finally:
        sa.event.remove(sa.pool.Pool, "connect", on_connect)
    # What DuckDB reports for the same settings on a plain connection (it prints the cap in MiB).
    with duckdb.connect(config=VALIDATION_DUCKDB_SETTINGS) as con:
        capped = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    with duckdb.connect() as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] != capped  # a real change
    assert seen and set(seen) == {(capped, False)}

# 5 -------------------------------------------------------------------- suite lookup


def test_missing_suite_raises_lookup_error(ho_so_db: Path, project: Path) -> None:
    with pytest.raises(LookupError) as info:
        validate_query(ho_so_db, BATCH_QUERY, "khong_co", expectations_dir=project, run_name="r")
    message = str(info.value)
    assert "'khong_co'" in message and str(project.resolve()) in message and "khong_co.json" in message


def test_folder_without_gx_project_raises_lookup_error(ho_so_db: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no_project"
    empty.mkdir()
    with pytest.raises(LookupError, match="'ho_so'.*no GX project"):
        validate_query(ho_so_db, BATCH_QUERY, "ho_so", expectations_dir=empty, run_name="r")
    assert list(empty.iterdir()) == []  # nothing scaffolded


def test_unknown_severity_is_rejected_before_running(ho_so_db: Path, project: Path) -> None:
    suite = json.loads((project / "gx" / "expectations" / "ho_so.json").read_text(encoding="utf-8"))
    suite["name"] = "ho_so_typo"
    suite["expectations"][1]["meta"]["severity"] = "blok"
    (project / "gx" / "expectations" / "ho_so_typo.json").write_text(json.dumps(suite), encoding="utf-8")
    with pytest.raises(ValueError, match="meta.severity must be one of"):
        validate_query(ho_so_db, BATCH_QUERY, "ho_so_typo", expectations_dir=project, run_name="r")


# misc ------------------------------------------------------------------------------------------


def test_importing_suites_does_not_import_gx() -> None:
    code = "import sys, pipelines.quality.suites; sys.exit('great_expectations' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=60).returncode == 0


def test_data_docs_go_to_untracked_folder(ho_so_db: Path, project: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    validate_query(
        ho_so_db, BATCH_QUERY, "ho_so", expectations_dir=project, run_name="r1", results_dir=results
    )
    index = build_data_docs(project, results_dir=results)
    site = project / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert index == site / "index.html" and index.is_file()
    assert (site / "expectations" / "ho_so.html").is_file()
    assert list((site / "validations" / "ho_so" / "r1").rglob("*.html"))


def test_tenant_data_docs_are_built_apart_and_keep_the_newest_results(
    ho_so_db: Path, project: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    for run in ("r1", "r2", "r3"):
        validate_query(ho_so_db, BATCH_QUERY, "ho_so", expectations_dir=project, run_name=run, results_dir=results)
    site = tmp_path / "tenant" / "data_docs"
    shared_before = sorted((project / "gx").rglob("*"))
    index = build_data_docs(project, results_dir=results, site_dir=site, max_results=2)
    assert index == site / "index.html" and index.is_file()
    assert (site / "expectations" / "ho_so.html").is_file()
    shown = sorted(p.name for p in (site / "validations" / "ho_so").iterdir())
    assert shown == ["r2", "r3"]  # the newest two result files only (a folder per run name)
    # Rebuilt in place (swapped in whole), and nothing was written into the shared GX project.
    build_data_docs(project, results_dir=results, site_dir=site, max_results=1)
    assert sorted(p.name for p in (site / "validations" / "ho_so").iterdir()) == ["r3"]
    assert sorted((project / "gx").rglob("*")) == shared_before
    assert [p.name for p in site.parent.iterdir()] == ["data_docs"]  # no temp folders left behind
