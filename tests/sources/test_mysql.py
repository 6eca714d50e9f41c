"""`mysql` sources against a real MariaDB server: watermarks, exact decimals, idempotence, bad input."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from pipelines.config import SourceConfig
from pipelines.errors import SourceError
from pipelines.load import load_sources
from pipelines.warehouse import connect
from tests.fixtures.tenants import tenant_of


def _source(name: str = "can_bo", **overrides) -> SourceConfig:
    fields = dict(name=name, kind="mysql", connection={"env": "TEST_MYSQL_DSN"}, options={"table": "can_bo"},
                  primary_key=["ma_can_bo"], incremental_column="cap_nhat")
    fields.update(overrides)
    return SourceConfig(**fields)


@pytest.fixture
def my(mysql_server, monkeypatch):
    """A fresh `can_bo` (civil servants) table: 500 rows updated one minute apart from 2025-07-01 08:00."""
    monkeypatch.setenv("TEST_MYSQL_DSN", mysql_server.dsn)
    mysql_server.execute(
        "DROP TABLE IF EXISTS can_bo",
        "CREATE TABLE can_bo (ma_can_bo VARCHAR(12) PRIMARY KEY, ho_ten VARCHAR(100), ma_xa CHAR(5), "
        "he_so_luong DECIMAL(4,2), ty_le DECIMAL(30,15), ngay_vao DATE, dang_lam TINYINT(1), "
        "cap_nhat DATETIME(6) NOT NULL)",
        "INSERT INTO can_bo SELECT CONCAT('CB', LPAD(seq, 6, '0')), "
        "ELT(1 + seq % 3, 'Nguyễn Văn Tuấn', 'Trần Thị Hà', 'Lê Đức Thắng'), LPAD(seq % 40, 5, '0'), "
        "2.34 + (seq % 5) * 0.33, seq + 0.123456789012345, DATE '2010-01-01' + INTERVAL seq DAY, seq % 2, "
        "TIMESTAMP '2025-07-01 08:00:00' + INTERVAL seq MINUTE FROM seq_1_to_500")
    return mysql_server


def test_mysql_incremental_exact_decimals_and_unicode(my, paths):
    tenant = tenant_of(_source())
    with connect(paths.warehouse) as con:
        [first] = load_sources(con, tenant, paths, "r1")
        assert (first.status, first.n_rows_read, first.n_rows_loaded) == ("loaded", 500, 500)
        # Row 500 = 08:00 + 500 min = 16:20 on the same day.
        assert first.watermark == "2025-07-01 16:20:00"
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'can_bo'").fetchall())
        # Declared precision kept (ConnectorX alone gives DECIMAL(38,10) and rounds at 10 decimals).
        assert (types["he_so_luong"], types["ty_le"], types["ngay_vao"]) == ("DECIMAL(4,2)", "DECIMAL(30,15)", "DATE")
        row = con.execute("SELECT ho_ten, he_so_luong, ty_le FROM raw.can_bo WHERE ma_can_bo = 'CB000001'").fetchone()
        # seq 1: 1 % 3 = 1 → ELT(2) = 'Trần Thị Hà'; 2.34 + 0.33; all 15 decimals of 1.123456789012345.
        assert row == ("Trần Thị Hà", Decimal("2.67"), Decimal("1.123456789012345"))
        con.execute("UPDATE meta.loads SET status = 'passed'")

        [again] = load_sources(con, tenant, paths, "r2")
        assert (again.status, again.n_rows_loaded) == ("unchanged", 0)

        my.execute("UPDATE can_bo SET dang_lam = 0, cap_nhat = '2025-07-03 09:00' WHERE ma_can_bo = 'CB000007'",
                   "INSERT INTO can_bo VALUES ('CB000501', 'Phạm Thị Lan', '00001', 3.00, 0.5, '2025-07-03', 1, "
                   "'2025-07-03 10:00')")
        [third] = load_sources(con, tenant, paths, "r3")
        assert (third.status, third.n_rows_read, third.n_rows_loaded) == ("loaded", 2, 2)
        assert third.watermark == "2025-07-03 10:00:00"
        assert con.execute("SELECT list(ma_can_bo ORDER BY ma_can_bo) FROM raw.can_bo WHERE _batch_id = 'r3'"
                           ).fetchone()[0] == ["CB000007", "CB000501"]


def test_mysql_query_source_is_idempotent(my, paths):
    src = _source("can_bo_xa", options={"query": "SELECT ma_can_bo, ma_xa, cap_nhat FROM can_bo WHERE ma_xa = '00007'"},
                  incremental_column=None, write_disposition="replace")
    with connect(paths.warehouse) as con:
        [first] = load_sources(con, tenant_of(src), paths, "r1")
        assert first.n_rows_loaded == 13  # seq % 40 = 7 for 7, 47, ..., 487
        con.execute("UPDATE meta.loads SET status = 'passed'")
        [again] = load_sources(con, tenant_of(src), paths, "r2")
        assert again.status == "unchanged"
        assert con.execute("SELECT count(*) FROM raw.can_bo_xa").fetchone()[0] == 13


def test_mysql_unreachable_fails_fast_and_rolls_back(paths, monkeypatch):
    monkeypatch.setenv("TEST_MYSQL_DSN", "mysql://u:secret@127.0.0.1:1/none")
    with connect(paths.warehouse) as con:
        started = time.monotonic()
        with pytest.raises(SourceError) as err:
            load_sources(con, tenant_of(_source()), paths, "r1")
        text = str(err.value)
        assert "source 'can_bo'" in text and "cannot reach 127.0.0.1:1" in text and "secret" not in text
        assert time.monotonic() - started < 10
        assert con.execute("SELECT count(*) FROM meta.loads").fetchone()[0] == 0


def test_mysql_missing_table_is_named(my, paths):
    with connect(paths.warehouse) as con, pytest.raises(SourceError) as err:
        load_sources(con, tenant_of(_source(options={"table": "khong_co"})), paths, "r1")
    assert "source 'can_bo'" in str(err.value) and "khong_co" in str(err.value)


def test_mysql_watermark_literal_escapes_backslashes():
    from pipelines.sources.dbquery import MYSQL, build_query

    sql = build_query(_source(), "x", {"table": "can_bo"}, "2025\\' OR 1=1 -- ", MYSQL)
    # MySQL reads \' as an escaped quote: the backslash is doubled too, so the value stays one literal.
    assert sql == "SELECT * FROM `can_bo` WHERE `cap_nhat` > '2025\\\\'' OR 1=1 -- '"
