"""MySQL / MariaDB agency systems (many provincial one-stop-shop and HR systems): a table or query, incremental.

Options as for `postgres`: `table` (`db.table` or `table`), `query`, `columns`, `types`. The DSN
(`mysql://user:pass@host:3306/db`) comes from `connection.env` or an Airflow connection. Rows arrive as an
Arrow stream through ConnectorX (Rust, binary protocol): no Python row loop.

DECIMAL columns: ConnectorX hands every DECIMAL over as decimal(38,10), which would round a value with
more than 10 decimals. They are therefore sent as text by the server (exact) and cast back by DuckDB: for a
`table` source to the column's declared DECIMAL(p,s), read from `information_schema`; for a `query` to
DECIMAL(38,10) unless `types` names the column (exact either way, since the text is).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pipelines.errors import SourceError, first_line
from pipelines.sources.base import Extract, ReadState
from pipelines.sources.dbquery import FIX, MYSQL, DatabaseOptions, read_query, server_dsn

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths

_BATCH_ROWS = 65_536
_CONNECT_TIMEOUT_S = 10


class Options(DatabaseOptions):
    """Options of a `mysql` source (the connection string comes from `connection`)."""


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    dsn, location = server_dsn(source, "mysql://user:pass@host:3306/db")
    _check_reachable(source, dsn, location)
    table = (source.options or {}).get("table")

    def any_rows(sql: str) -> bool:
        return _read_table(dsn, f"SELECT 1 AS c FROM ({sql}) AS q LIMIT 1").num_rows > 0

    def open_stream(sql: str):
        import connectorx as cx
        import pyarrow as pa

        schema = _read_table(dsn, f"SELECT * FROM ({sql}) AS q LIMIT 0").schema
        decimals = [f.name for f in schema if pa.types.is_decimal(f.type)]
        types = dict.fromkeys(decimals, "DECIMAL(38,10)")
        if decimals:
            if table:
                types.update(_declared_decimals(dsn, str(table), decimals))
            select = ", ".join(f"CAST({MYSQL.ident(n)} AS CHAR) AS {MYSQL.ident(n)}" if n in types else MYSQL.ident(n)
                               for n in schema.names)
            sql = f"SELECT {select} FROM ({sql}) AS n"
        stream = cx.read_sql(dsn, sql, return_type="arrow_stream", batch_size=_BATCH_ROWS)
        return stream, types, stream.close

    return read_query(source, con, state, location, open_stream, (RuntimeError, ValueError), FIX, any_rows=any_rows,
                      dialect=MYSQL)


def _read_table(dsn: str, sql: str) -> Any:
    import connectorx as cx

    return cx.read_sql(dsn, sql, return_type="arrow")


def _declared_decimals(dsn: str, table: str, columns: list[str]) -> dict[str, str]:
    """DECIMAL(p,s) of a table's columns as declared, from information_schema."""
    schema, _, name = table.rpartition(".")
    where_schema = MYSQL.literal(schema) if schema else "DATABASE()"
    names = ", ".join(MYSQL.literal(c) for c in columns)
    rows = _read_table(dsn, "SELECT COLUMN_NAME AS c, NUMERIC_PRECISION AS p, NUMERIC_SCALE AS s "
                            f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {where_schema} "
                            f"AND TABLE_NAME = {MYSQL.literal(name)} AND COLUMN_NAME IN ({names})").to_pylist()
    return {r["c"]: f"DECIMAL({r['p']},{r['s']})" for r in rows if r["p"] and 0 < int(r["p"]) <= 38}


def _check_reachable(source: SourceConfig, dsn: str, location: str) -> None:
    """Fail in seconds with a plain message: ConnectorX's pool would retry an unreachable host for ~30 s."""
    parts = urlsplit(dsn)
    if parts.scheme != "mysql" or not parts.hostname:
        raise SourceError(source.name, location, "not a MySQL connection string",
                          "use mysql://user:password@host:3306/database")
    try:
        with socket.create_connection((parts.hostname, parts.port or 3306), timeout=_CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise SourceError(source.name, location, f"cannot reach {parts.hostname}:{parts.port or 3306} "
                          f"({first_line(exc)})", FIX) from None
