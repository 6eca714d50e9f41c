"""Shared by the database kinds (`postgres`, `mysql`, `sqlite`): a table or query, filtered past the watermark.

Rows come as Arrow record batches (ADBC, or ConnectorX for MySQL) that DuckDB inserts into `raw`: no
Python row loop, no intermediate copy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from pipelines.errors import SourceError, first_line
from pipelines.sources.base import (
    Extract,
    ReadState,
    apply_types,
    content_fingerprint,
    redact_dsn,
    secret,
    source_options,
    sql_literal,
)
from pipelines.sources.options import TypesOption

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig

FIX = ("check that the database is reachable, the credentials in the connection variable, and the table/query "
       "in 'options'")
_QUALIFIED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")



def _table_name(value: str) -> str:
    if not _QUALIFIED.match(value):
        raise PydanticCustomError("value_error", "'{value}' is not a table name (schema.table or table) — use "
                                  "'query' for anything more than a table", {"value": value[:60]})
    return value


class DatabaseOptions(TypesOption):
    """Options of the database kinds (`postgres`, `mysql`, `sqlite`): one table or one query."""

    table: Annotated[str, AfterValidator(_table_name)] | None = Field(
        default=None, description="the table to read, `schema.table` or `table`")
    query: str | None = Field(default=None, min_length=1,
                              description="a SELECT run by the database instead of `table` (no trailing `;` "
                                          "needed); the watermark filter wraps it as a subquery")
    columns: list[str] | None = Field(default=None, min_length=1,
                                      description="with `table`: the columns to fetch (default all)")

    @model_validator(mode="after")
    def _table_or_query(self) -> DatabaseOptions:
        if (self.table is None) == (self.query is None):
            raise PydanticCustomError("value_error", "give exactly one of options 'table' or 'query' — e.g. "
                                      "options: {example}", {"example": "{table: public.ho_so}"})
        return self


@dataclass(frozen=True)
class Dialect:
    """How a database spells identifiers and string literals."""

    quote: str = '"'
    backslash_escapes: bool = False  # MySQL/MariaDB read `\'` inside a string literal as an escaped quote

    def ident(self, name: str) -> str:
        return self.quote + name.replace(self.quote, self.quote * 2) + self.quote

    def literal(self, value: str) -> str:
        text = str(value).replace("\\", "\\\\") if self.backslash_escapes else str(value)
        return sql_literal(text)


ANSI = Dialect()
MYSQL = Dialect(quote="`", backslash_escapes=True)


def build_query(source: SourceConfig, location: str, opts: dict[str, Any], watermark: str | None,
                dialect: Dialect = ANSI) -> str:
    """The SELECT sent to the database: the watermark filter is pushed down so the origin does the work."""
    table, query = opts.get("table"), opts.get("query")
    if (table is None) == (query is None):
        raise SourceError(source.name, location, "give exactly one of options 'table' or 'query'",
                          "e.g. options: {table: public.ho_so}")
    if table is not None:
        if not _QUALIFIED.match(str(table)):
            raise SourceError(source.name, location, f"'{table}' is not a table name (schema.table)",
                              "use 'query' for anything more than a table")
        quoted = ".".join(dialect.ident(part) for part in str(table).split("."))
        cols = ", ".join(dialect.ident(c) for c in opts.get("columns") or []) or "*"
        sql = f"SELECT {cols} FROM {quoted}"
    else:
        sql = f"SELECT * FROM ({str(query).strip().rstrip(';')}) AS q"
    if source.incremental_column and watermark is not None:
        sql += f" WHERE {dialect.ident(source.incremental_column)} > {dialect.literal(watermark)}"
    return sql


def server_dsn(source: SourceConfig, example: str) -> tuple[str, str]:
    """(connection string, the same with its password hidden for messages and meta.loads)."""
    dsn = secret(source, "connection string") or source.location
    if not dsn:
        raise SourceError(source.name, "(no connection)", "no connection string",
                          f"set 'connection: {{env: VAR}}' with VAR holding {example}")
    return dsn, redact_dsn(dsn)


OpenStream = Callable[[str], tuple[Any, dict[str, str], Callable[[], None]]]


def adbc_stream(connect: Callable[[], Any], numeric_as_text: bool = False) -> OpenStream:
    """`open_stream` for the ADBC kinds (postgres, sqlite): `sql` → (Arrow stream, column types, close)."""
    return lambda sql: _open_stream(connect, sql, numeric_as_text)


def read_query(source: SourceConfig, con: duckdb.DuckDBPyConnection, state: ReadState | None, location: str,
               open_stream: OpenStream, errors: tuple[type[BaseException], ...], fix: str,
               any_rows: Callable[[str], bool] | None = None, dialect: Dialect = ANSI) -> Extract:
    """Run the source's query; the loader lands the Arrow stream `open_stream(sql)` returns in one pass.

    `open_stream(sql)` gives (record-batch stream, column → DuckDB type to cast to, close). The stream is
    not staged first: the loader inserts it straight into `raw` and fingerprints the rows that landed
    (`Extract.single_pass`), which saves a second copy of every row. `any_rows(sql)`, when
    given, is asked first on an incremental re-run: a cheaper connection than ADBC's (which reads the type
    catalogue, ~30 ms) tells whether anything is past the watermark at all.
    """
    opts = source_options(source)
    watermark = state.watermark if state else None
    sql = build_query(source, location, opts, watermark, dialect)
    try:
        if any_rows is not None and watermark is not None and not any_rows(sql):
            return Extract(relation=con.sql("SELECT NULL::VARCHAR AS _empty WHERE false"), location=location,
                           fingerprint=content_fingerprint(con, "(SELECT 1 WHERE false)", source.kind, sql,
                                                           watermark), n_rows_read=0)
        stream, types, close = open_stream(sql)
    except errors as exc:
        raise SourceError(source.name, location, f"query failed ({first_line(exc)})", fix) from None
    try:
        rel = con.from_arrow(stream)
        if source.incremental_column and source.incremental_column not in rel.columns:
            raise SourceError(source.name, location, f"incremental column '{source.incremental_column}' is not "
                              f"in the result (columns: {rel.columns})", "fix 'incremental_column' or the query")
        rel = apply_types(source, location, rel, {**types, **(opts.get("types") or {})})
    except BaseException:
        close()
        raise
    return Extract(relation=rel, fingerprint=None, location=location, single_pass=True,
                   fingerprint_parts=(source.kind, sql, watermark), cleanup=[close])


def _open_stream(connect: Callable[[], Any], sql: str, numeric_as_text: bool):
    """(Arrow record-batch stream, numeric column types, close) through ADBC's low-level API.

    The DB-API layer is left out: it imports pandas (~2 s per task process) for nothing. With
    `numeric_as_text`, the result's schema is asked first (a describe, < 1 ms) and `numeric` columns are cast
    to text by the server: ADBC turns PostgreSQL's binary numeric into the same exact text anyway, but doing
    it client-side cost 0.35 s per million values, half of the whole fetch. Their declared precision comes
    from that schema, so DuckDB still gets DECIMAL(p,s).
    """
    import adbc_driver_manager
    import pyarrow as pa

    handles: list[Any] = []

    def close() -> None:
        while handles:
            handles.pop().close()

    try:
        handles.append(connect())
        handles.append(adbc_driver_manager.AdbcConnection(handles[-1]))
        stmt = adbc_driver_manager.AdbcStatement(handles[-1])
        handles.append(stmt)
        stmt.set_sql_query(sql)
        numeric: dict[str, str] = {}
        if numeric_as_text:
            schema = pa.schema(stmt.execute_schema())
            numeric = _numeric_types(schema)
            if numeric:
                stmt.set_sql_query(_cast_to_text(sql, schema.names, set(numeric)))
        handle, _ = stmt.execute_query()
        stream = pa.RecordBatchReader.from_stream(handle)
        handles.append(stream)  # released first: the driver's stream must not outlive its statement
        return stream, numeric or _numeric_types(stream.schema), close
    except BaseException:
        close()
        raise


def _cast_to_text(sql: str, names: list[str], columns: set[str]) -> str:
    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    select = ", ".join(f"{quoted(n)}::text AS {quoted(n)}" if n in columns else quoted(n) for n in names)
    return f"SELECT {select} FROM ({sql}) AS n"


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

