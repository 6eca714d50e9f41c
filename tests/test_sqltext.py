"""The one place names and text values are quoted into SQL (pipelines/sqltext.py), checked against DuckDB."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.sqltext import quote_ident, quote_literal


@pytest.mark.parametrize("name", ["ma_ho_so", "Họ tên", 'a"b', 'x" FROM t; DROP TABLE t; --', "", "1st"])
def test_any_name_is_one_identifier(name):
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({quote_ident(name or ' ')} INTEGER)")
    assert [c[0] for c in con.execute("SELECT * FROM t").description] == [name or " "]
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)  # t still there: nothing ran after the name


@pytest.mark.parametrize("text", ["Hồ 'Gươm'", "'; DROP TABLE t; --", "", "a\\b", "/dữ liệu/it's.parquet"])
def test_any_text_is_one_literal(text):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x INTEGER)")
    assert con.execute(f"SELECT {quote_literal(text)}").fetchone() == (text,)
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)
