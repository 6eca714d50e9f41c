"""Run one `warehouse/<layer>/<name>.sql` model against tiny inline tables in an in-memory DuckDB."""

from __future__ import annotations

from typing import Any

import duckdb

from pipelines.contracts import contract
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
    """Table `name` ('demo_codes' becomes a temp table, 'staging.dm_xa' a table) with typed `columns`.

    A core model's input from a tenant's sources is a contract view: seed it with `given_contract`.
    """
    temp = "" if "." in name else "TEMP "
    con.execute(f"CREATE OR REPLACE {temp}TABLE {name} ({columns})")
    if rows:
        marks = ", ".join("?" for _ in rows[0])
        con.executemany(f"INSERT INTO {name} VALUES ({marks})", [list(r) for r in rows])


def contract_columns(name: str) -> list[tuple[str, str]]:
    """(column, DuckDB type) of the view `contract_<name>` as `pipelines.contracts.build_contract_views` makes it:
    the contract's columns in file order, each pseudonymised CCCD / phone column followed by its BOOLEAN
    validity flag `is_<column>_valid`, then `_source` (the feeding source's name)."""
    out: list[tuple[str, str]] = []
    for col in contract(name).columns:
        out.append((col.name, col.type))
        if col.flag:
            out.append((col.flag, "BOOLEAN"))
    return [*out, ("_source", "VARCHAR")]


def given_contract(con: duckdb.DuckDBPyConnection, name: str, rows: list[dict[str, Any]],
                   source: str = "nguon") -> None:
    """Temp table `contract_<name>` shaped as the real contract view, read by the core staging SQL.

    Each row is a dict keyed by contract column (or validity flag); a column left out is NULL, as when no
    source maps it, and `_source` defaults to `source`. A key the contract does not have is an error, so a
    renamed contract column shows here rather than as a silently NULL input. Personal columns hold what the
    view gives: a pseudonym ('ps_…') or NULL, never a raw value.
    """
    columns = contract_columns(name)
    names = [c for c, _ in columns]
    personal = {c.name for c in contract(name).columns if c.personal}
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - set(names))
        if unknown:
            raise ValueError(f"contract_{name} row {i}: unknown column(s) {', '.join(unknown)} — the contract "
                             f"(warehouse/contracts/{name}.yml) has {', '.join(names)}")
        raw = sorted(c for c in personal & set(row) if row[c] is not None and not str(row[c]).startswith("ps_"))
        if raw:
            raise ValueError(f"contract_{name} row {i}: personal column(s) {', '.join(raw)} must be pseudonyms "
                             "('ps_…'): the contract view never passes a raw value")
    given(con, f"contract_{name}", ", ".join(f'"{c}" {t}' for c, t in columns),
          [tuple({"_source": source, **row}.get(c) for c in names) for row in rows])


def build(con: duckdb.DuckDBPyConnection, model: str) -> None:
    """Create table `model` ('staging.ho_so') from its SQL file, as `transform` does."""
    layer, name = model.split(".")
    sql = (WAREHOUSE_SQL_DIR / layer / f"{name}.sql").read_text(encoding="utf-8")
    con.execute(f"CREATE OR REPLACE TABLE {model} AS\n{sql}")


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
