"""Shared by the database kinds (`postgres`, `sqlite`): a table or query, filtered past the watermark.

Rows come through ADBC as Arrow record batches straight into a DuckDB temp table: no Python row loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pipelines.errors import SourceError, first_line
from pipelines.sources.base import (
    Extract,
    ReadState,
    apply_types,
    check_options,
    content_fingerprint,
    drop_temp,
    sql_literal,
    stage_arrow,
)

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig

KNOWN_OPTIONS = {"table", "query", "columns", "types"}
_QUALIFIED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def build_query(source: SourceConfig, location: str, opts: dict[str, Any], watermark: str | None) -> str:
    """The SELECT sent to the database: the watermark filter is pushed down so the origin does the work."""
    table, query = opts.get("table"), opts.get("query")
    if (table is None) == (query is None):
        raise SourceError(source.name, location, "give exactly one of options 'table' or 'query'",
                          "e.g. options: {table: public.ho_so}")
    if table is not None:
        if not _QUALIFIED.match(str(table)):
            raise SourceError(source.name, location, f"'{table}' is not a table name (schema.table)",
                              "use 'query' for anything more than a table")
        quoted = ".".join(f'"{part}"' for part in str(table).split("."))
        cols = ", ".join(f'"{c}"' for c in opts.get("columns") or []) or "*"
        sql = f"SELECT {cols} FROM {quoted}"
    else:
        sql = f"SELECT * FROM ({str(query).strip().rstrip(';')}) AS q"
    if source.incremental_column and watermark is not None:
        sql += f' WHERE "{source.incremental_column}" > {sql_literal(watermark)}'
    return sql


def read_query(source: SourceConfig, con: duckdb.DuckDBPyConnection, state: ReadState | None, location: str,
               connect: Callable[[], Any], errors: tuple[type[BaseException], ...], fix: str) -> Extract:
    """Run the source's query through an ADBC connection and stage the Arrow stream in DuckDB."""
    opts = check_options(source, location, KNOWN_OPTIONS)
    watermark = state.watermark if state else None
    sql = build_query(source, location, opts, watermark)
    staged = f"_src_{source.name}"
    try:
        rel, n, numeric = _fetch(con, connect, sql, staged)
    except errors as exc:
        raise SourceError(source.name, location, f"query failed ({first_line(exc)})", fix) from None
    if source.incremental_column and source.incremental_column not in rel.columns:
        raise SourceError(source.name, location, f"incremental column '{source.incremental_column}' is not "
                          f"in the result (columns: {rel.columns})", "fix 'incremental_column' or the query")
    fingerprint = content_fingerprint(con, f'temp."{staged}"', source.kind, sql, watermark)
    rel = apply_types(source, location, rel, {**numeric, **(opts.get("types") or {})})
    return Extract(relation=rel, fingerprint=fingerprint, location=location, n_rows_read=n,
                   cleanup=[drop_temp(con, staged)])


def _fetch(con: duckdb.DuckDBPyConnection, connect: Callable[[], Any], sql: str, staged: str):
    """ADBC's low-level API: the DB-API layer imports pandas (~2 s per task process) for nothing."""
    import adbc_driver_manager
    import pyarrow as pa

    db = connect()
    try:
        conn = adbc_driver_manager.AdbcConnection(db)
        try:
            stmt = adbc_driver_manager.AdbcStatement(conn)
            try:
                stmt.set_sql_query(sql)
                handle, _ = stmt.execute_query()
                stream = pa.RecordBatchReader.from_stream(handle)
                numeric = _numeric_types(stream.schema)
                rel, n = stage_arrow(con, staged, stream)
                return rel, n, numeric
            finally:
                stmt.close()
        finally:
            conn.close()
    finally:
        db.close()


def _numeric_types(schema: Any) -> dict[str, str]:
    """PostgreSQL `numeric` arrives as text (exact); give it back its type: numeric(p,s) → DECIMAL(p,s)."""
    out: dict[str, str] = {}
    for f in schema:
        meta = f.metadata or {}
        if meta.get(b"ADBC:postgresql:typname") != b"numeric":
            continue
        typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1"))
        precision, scale = ((typmod - 4) >> 16, (typmod - 4) & 0xFFFF) if typmod >= 4 else (0, 0)
        out[f.name] = f"DECIMAL({precision},{scale})" if 0 < precision <= 38 else "DOUBLE"
    return out

