"""PostgreSQL agency systems (one-stop-shop dossiers...): a table or query, incremental by a watermark.

Options: `table` (schema.table) or `query`, `columns`, `types`. The DSN comes from `connection.env`
(or an Airflow connection inside a task); rows arrive as Arrow through `adbc-driver-postgresql`. An
incremental re-run first asks through psycopg whether any row is past the watermark (4 ms instead of the
30 ms an ADBC connection takes to set up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.errors import SourceError, first_line
from pipelines.sources.base import Extract, ReadState, redact_dsn, secret
from pipelines.sources.dbquery import adbc_stream, read_query

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    import adbc_driver_manager
    import adbc_driver_postgresql as pg

    dsn = secret(source, "connection string") or source.location
    if not dsn:
        raise SourceError(source.name, "(no connection)", "no connection string",
                          "set 'connection: {env: VAR}' with VAR holding postgresql://user:pass@host/db")
    location = redact_dsn(dsn)

    def any_rows(sql: str) -> bool:
        import psycopg  # only re-runs need it: not imported by every worker

        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                return conn.execute(f"SELECT 1 FROM ({sql}) AS q LIMIT 1").fetchone() is not None
        except psycopg.Error as exc:
            raise SourceError(source.name, location, f"query failed ({first_line(exc)})", _FIX) from None

    return read_query(source, con, state, location, adbc_stream(lambda: pg.connect(dsn), numeric_as_text=True),
                      (adbc_driver_manager.Error,), _FIX, any_rows=any_rows)


_FIX = ("check that the database is reachable, the credentials in the connection variable, and the table/query "
        "in 'options'")

