"""Run one `warehouse/<layer>/<name>.sql` model against tiny inline tables in an in-memory DuckDB."""

from __future__ import annotations

from typing import Any

import duckdb

from pipelines.settings import WAREHOUSE_SQL_DIR


def connect(tonghop_ma_tinh: str = "37") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET VARIABLE tonghop_pii_key = 'test-key'")
    con.execute("SET VARIABLE tonghop_ma_tinh = ?", [tonghop_ma_tinh])
    con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
    for schema in ("staging", "marts", "meta"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return con


def given(con: duckdb.DuckDBPyConnection, name: str, columns: str, rows: list[tuple]) -> None:
    """Table `name` ('src_ho_so' becomes a temp table, 'staging.dm_xa' a table) with typed `columns`."""
    temp = "" if "." in name else "TEMP "
    con.execute(f"CREATE OR REPLACE {temp}TABLE {name} ({columns})")
    if rows:
        marks = ", ".join("?" for _ in rows[0])
        con.executemany(f"INSERT INTO {name} VALUES ({marks})", [list(r) for r in rows])


def build(con: duckdb.DuckDBPyConnection, model: str) -> None:
    """Create table `model` ('staging.ho_so') from its SQL file, as `transform` does."""
    layer, name = model.split(".")
    sql = (WAREHOUSE_SQL_DIR / layer / f"{name}.sql").read_text(encoding="utf-8")
    con.execute(f"CREATE OR REPLACE TABLE {model} AS\n{sql}")


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
