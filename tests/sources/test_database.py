"""PostgreSQL and SQLite sources against real servers/files: watermarks, idempotence, drift, bad input."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from pipelines.config import SourceConfig
from pipelines.errors import SourceError
from pipelines.load import load_sources
from pipelines.warehouse import connect
from tests.fixtures.tenants import tenant_of


def _pg_source(name: str = "ho_so", **overrides) -> SourceConfig:
    fields = dict(name=name, kind="postgres", connection={"env": "TEST_PG_DSN"},
                  options={"table": "public.ho_so"}, primary_key=["ma_ho_so"],
                  incremental_column="ngay_cap_nhat")
    fields.update(overrides)
    return SourceConfig(**fields)


@pytest.fixture
def pg(postgres_server, monkeypatch):
    """A fresh `ho_so` table with 1,000 dossiers updated one minute apart from 2025-07-01 08:00."""
    monkeypatch.setenv("TEST_PG_DSN", postgres_server.dsn)
    postgres_server.execute(
        "DROP TABLE IF EXISTS ho_so",
        "CREATE TABLE ho_so (ma_ho_so text PRIMARY KEY, ma_xa text, so_tien numeric(14,2), "
        "trang_thai text, ngay_cap_nhat timestamp NOT NULL)",
        "INSERT INTO ho_so SELECT 'HS' || lpad(i::text, 6, '0'), lpad((i % 50)::text, 5, '0'), i * 1.5, "
        "'dang_xu_ly', timestamp '2025-07-01 08:00' + i * interval '1 minute' FROM generate_series(1, 1000) i")
    return postgres_server


def _loads(con, source="ho_so"):
    return con.execute("SELECT batch_id, status, n_rows_read, n_rows_loaded, n_rows_rejected, watermark, "
                       "fingerprint FROM meta.loads WHERE source = ? ORDER BY loaded_at", [source]).fetchall()


def _promote(con, batch_id):
    """What `validate` does for a passing batch (the loader only ever reads loaded/passed watermarks)."""
    con.execute("UPDATE meta.loads SET status = 'passed' WHERE batch_id = ?", [batch_id])


def test_postgres_incremental_by_watermark(pg, paths):
    tenant = tenant_of(_pg_source())
    with connect(paths.warehouse) as con:
        [first] = load_sources(con, tenant, paths, "r1")
        # All 1,000 rows; the watermark is the newest update, row 1000 = 08:00 + 1000 min = 2025-07-02 00:40.
        assert (first.status, first.n_rows_read, first.n_rows_loaded) == ("loaded", 1000, 1000)
        assert first.watermark == "2025-07-02 00:40:00"
        _promote(con, "r1")

        # Nothing changed at the origin: nothing is fetched, the run records `unchanged`, watermark kept.
        [again] = load_sources(con, tenant, paths, "r2")
        assert (again.status, again.n_rows_loaded) == ("unchanged", 0)
        assert _loads(con)[-1][5] == "2025-07-02 00:40:00"

        # Two rows change at the origin, one new row arrives: exactly those three are fetched.
        pg.execute("UPDATE ho_so SET trang_thai = 'da_tra', ngay_cap_nhat = '2025-07-03 09:00' "
                   "WHERE ma_ho_so IN ('HS000001', 'HS000500')",
                   "INSERT INTO ho_so VALUES ('HS001001', '00001', 10, 'moi', '2025-07-03 10:00')")
        [third] = load_sources(con, tenant, paths, "r3")
        assert (third.status, third.n_rows_read, third.n_rows_loaded) == ("loaded", 3, 3)
        assert third.watermark == "2025-07-03 10:00:00"
        assert con.execute("SELECT list(ma_ho_so ORDER BY ma_ho_so) FROM raw.ho_so WHERE _batch_id = 'r3'"
                           ).fetchone()[0] == ["HS000001", "HS000500", "HS001001"]
        # numeric(14,2) comes back as DECIMAL(14,2), not text: 500 * 1.5 = 750.00 exactly.
        assert con.execute("SELECT so_tien FROM raw.ho_so WHERE ma_ho_so = 'HS000500' AND _batch_id = 'r3'"
                           ).fetchone()[0] == Decimal("750.00")

        # A retry of r3 (same batch id) re-reads from r2's watermark, not from its own: same 3 rows.
        [retry] = load_sources(con, tenant, paths, "r3")
        assert (retry.n_rows_loaded, con.execute("SELECT count(*) FROM raw.ho_so").fetchone()[0]) == (3, 1003)


def test_blocked_batch_watermark_is_not_used(pg, paths):
    tenant = tenant_of(_pg_source())
    with connect(paths.warehouse) as con:
        load_sources(con, tenant, paths, "r1")
        # r1 failed validation: its rows were never promoted, so r2 must fetch them again (all 1,000).
        con.execute("UPDATE meta.loads SET status = 'blocked' WHERE batch_id = 'r1'")
        [second] = load_sources(con, tenant, paths, "r2")
        assert second.n_rows_loaded == 1000


def test_postgres_query_with_types_and_fingerprint(pg, paths):
    src = _pg_source(options={"query": "SELECT ma_ho_so, ma_xa, ngay_cap_nhat FROM ho_so WHERE ma_xa = '00007';",
                              "types": {"ma_xa": "VARCHAR"}}, incremental_column=None,
                     write_disposition="replace")
    tenant = tenant_of(src)
    with connect(paths.warehouse) as con:
        [first] = load_sources(con, tenant, paths, "r1")
        # ma_xa = i % 50 = 7 for i = 7, 57, ..., 957: 20 rows.
        assert first.n_rows_loaded == 20
        _promote(con, "r1")
        # Same query, same rows: the fingerprint (query, range, count, content hash) matches → nothing loads.
        [again] = load_sources(con, tenant, paths, "r2")
        assert again.status == "unchanged"
        fp1, fp2 = (row[6] for row in _loads(con))
        assert fp1 == fp2 and fp1.startswith("sha256:")
        # The stream was landed to be fingerprinted, then taken back out: raw holds r1's rows only.
        assert con.execute("SELECT _batch_id, count(*) FROM raw.ho_so GROUP BY ALL").fetchall() == [("r1", 20)]


def test_skip_source_stages_the_stream_and_still_recognises_the_same_input(pg, paths):
    """`skip_source` reads the stream into a temp table first; the fingerprint then comes from the landed rows."""
    src = _pg_source(incremental_column=None, on_error="skip_source")
    with connect(paths.warehouse) as con:
        [first] = load_sources(con, tenant_of(src), paths, "r1")
        assert (first.status, first.n_rows_read, first.n_rows_loaded) == ("loaded", 1000, 1000)
        _promote(con, "r1")
        [again] = load_sources(con, tenant_of(src), paths, "r2")
        assert again.status == "unchanged"
        assert con.execute("SELECT count(*) FROM raw.ho_so").fetchone()[0] == 1000
        # Without skip_source the same rows give the same fingerprint: one identity per input, whatever the path.
        [third] = load_sources(con, tenant_of(src.model_copy(update={"on_error": "fail_run"})), paths, "r3")
        assert third.status == "unchanged"
        assert len({row[6] for row in _loads(con)}) == 1


def test_query_failing_midway_leaves_nothing(pg, paths):
    """The stream is landed as it arrives: an error after thousands of rows must still roll everything back."""
    ok = _pg_source(incremental_column=None)
    # 1 / (i - 30000) divides by zero at row 30,000, after several Arrow batches have been sent.
    failing = _pg_source("chia", options={"query": "SELECT i AS ma_ho_so, 1.0 / (i - 30000) AS ty_le "
                                                   "FROM generate_series(1, 60000) i"}, incremental_column=None)
    with connect(paths.warehouse) as con:
        with pytest.raises(SourceError) as err:
            load_sources(con, tenant_of(ok, failing), paths, "r1")
        text = str(err.value)
        assert "source 'chia'" in text and "division by zero" in text and "re-run" in text
        assert con.execute("SELECT count(*) FROM meta.loads").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw'"
                           ).fetchone()[0] == 0


def test_numeric_precision_survives_the_text_transfer(pg, paths):
    src = _pg_source("so", options={"query": "SELECT 'a' AS ma_ho_so, 12345678901234.56::numeric(16,2) AS tien, "
                                             "1.5::numeric AS ty_le, 'NaN'::numeric AS khong_so, 7 AS n"},
                     incremental_column=None)
    with connect(paths.warehouse) as con:
        load_sources(con, tenant_of(src), paths, "r1")
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'so'").fetchall())
        assert (types["tien"], types["ty_le"], types["khong_so"], types["n"]) == (
            "DECIMAL(16,2)", "DOUBLE", "DOUBLE", "INTEGER")
        tien, ty_le, khong_so = con.execute("SELECT tien, ty_le, isnan(khong_so) FROM raw.so").fetchone()
        assert (tien, ty_le, khong_so) == (Decimal("12345678901234.56"), 1.5, True)


def test_unreachable_database_rolls_back_and_skip_source_keeps_others(pg, paths, monkeypatch):
    (paths.root / "a.sqlite").unlink(missing_ok=True)
    db = sqlite3.connect(paths.root / "a.sqlite")
    db.execute("CREATE TABLE xa (ma_xa TEXT, ten TEXT)")
    db.execute("INSERT INTO xa VALUES ('00001', 'Phường Hoa Lư')")
    db.commit()
    db.close()
    good = SourceConfig(name="xa", kind="sqlite", location="a.sqlite", options={"table": "xa"},
                        primary_key=["ma_xa"])
    monkeypatch.setenv("DEAD_PG_DSN", "postgresql://u:secret@127.0.0.1:1/none")
    dead = _pg_source("ho_so_chet", connection={"env": "DEAD_PG_DSN"})
    with connect(paths.warehouse) as con:
        with pytest.raises(SourceError) as err:
            load_sources(con, tenant_of(good, dead), paths, "r1")
        # The message names the source and the server (password hidden) and says what to check.
        text = str(err.value)
        assert "source 'ho_so_chet'" in text and "127.0.0.1:1" in text and "secret" not in text
        assert "reachable" in text
        # fail_run (default): the whole load rolled back, the good source too.
        assert con.execute("SELECT count(*) FROM meta.loads").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw'"
                           ).fetchone()[0] == 0

        skipping = dead.model_copy(update={"on_error": "skip_source"})
        results = {r.source: r for r in load_sources(con, tenant_of(good, skipping), paths, "r2")}
        assert results["ho_so_chet"].status == "skipped" and "reachable" in results["ho_so_chet"].error
        assert results["xa"].n_rows_loaded == 1


def test_missing_env_variable(paths, monkeypatch):
    monkeypatch.delenv("TEST_PG_DSN", raising=False)
    with connect(paths.warehouse) as con, pytest.raises(SourceError, match="TEST_PG_DSN is not set"):
        load_sources(con, tenant_of(_pg_source()), paths, "r1")


def test_sqlite_incremental_and_type_drift(paths):
    db = sqlite3.connect(paths.root / "cu.sqlite")
    db.execute("CREATE TABLE ho_so (ma_ho_so TEXT, so_trang INTEGER, ngay_cap_nhat TEXT)")
    db.executemany("INSERT INTO ho_so VALUES (?, ?, ?)",
                   [(f"C{i:04d}", i, f"2025-06-{i:02d} 10:00:00") for i in range(1, 21)])
    db.commit()
    src = SourceConfig(name="cu", kind="sqlite", location="cu.sqlite", options={"table": "ho_so"},
                       primary_key=["ma_ho_so"], incremental_column="ngay_cap_nhat")
    with connect(paths.warehouse) as con:
        [first] = load_sources(con, tenant_of(src), paths, "r1")
        assert (first.n_rows_loaded, first.watermark) == (20, "2025-06-20 10:00:00")
        _promote(con, "r1")
        # A new dossier arrives with a page count typed as text ("12 trang"): it no longer fits BIGINT.
        db.execute("INSERT INTO ho_so VALUES ('C0021', '12 trang', '2025-06-21 10:00:00')")
        db.execute("INSERT INTO ho_so VALUES ('C0022', '7', '2025-06-22 10:00:00')")
        db.commit()
        with pytest.raises(SourceError, match="column 'so_trang' changed type.*'12 trang'"):
            load_sources(con, tenant_of(src), paths, "r2")
        # on_drift: quarantine keeps the misfit row out of raw and loads the other one.
        quarantining = src.model_copy(update={"on_drift": "quarantine"})
        [second] = load_sources(con, tenant_of(quarantining), paths, "r2")
        assert (second.n_rows_read, second.n_rows_loaded, second.n_rows_rejected) == (2, 1, 1)
        assert con.execute("SELECT row_json->>'ma_ho_so', _reason FROM raw._rejected_cu").fetchall() == [
            ("C0021", "column 'so_trang' does not fit BIGINT")]
        assert con.execute("SELECT so_trang FROM raw.cu WHERE ma_ho_so = 'C0022'").fetchone()[0] == 7
    db.close()


def test_sqlite_not_a_database(paths):
    (paths.root / "x.sqlite").write_bytes(b"ma;ten\n1;a\n")
    src = SourceConfig(name="x", kind="sqlite", location="x.sqlite", options={"table": "x"}, primary_key=["ma"])
    with connect(paths.warehouse) as con, pytest.raises(SourceError, match="not a SQLite database"):
        load_sources(con, tenant_of(src), paths, "r1")


def test_missing_column_is_named(pg, paths):
    tenant = tenant_of(_pg_source(incremental_column=None))
    with connect(paths.warehouse) as con:
        load_sources(con, tenant, paths, "r1")
        pg.execute("ALTER TABLE ho_so DROP COLUMN trang_thai")
        with pytest.raises(SourceError, match=r"column\(s\) \['trang_thai'\] disappeared"):
            load_sources(con, tenant, paths, "r2")


def test_watermark_sql_is_a_literal_not_code():
    from pipelines.sources.dbquery import build_query

    src = _pg_source()
    sql = build_query(src, "x", {"table": "public.ho_so"}, "2025' OR '1'='1")
    # The quote is doubled: the whole value stays one string literal.
    assert sql.endswith("WHERE \"ngay_cap_nhat\" > '2025'' OR ''1''=''1'")
