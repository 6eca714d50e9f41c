"""PostgreSQL agency systems (one-stop-shop dossiers...): a table or query, incremental by a watermark.

Options: `table` (schema.table) or `query`, `columns`, `types`. The DSN comes from `connection.env`
(or an Airflow connection inside a task); rows arrive as Arrow through `adbc-driver-postgresql`. An
incremental re-run first asks through psycopg whether any row is past the watermark (4 ms instead of the
30 ms an ADBC connection takes to set up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.errors import SourceError, first_line
from pipelines.sources.base import Extract, ReadState
from pipelines.sources.dbquery import FIX, DatabaseOptions, adbc_stream, read_query, server_dsn

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths


class Options(DatabaseOptions):
    """Options of a `postgres` source (the connection string comes from `connection`)."""


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    import adbc_driver_manager
    import adbc_driver_postgresql as pg

    dsn, location = server_dsn(source, "postgresql://user:pass@host/db")

    def any_rows(sql: str) -> bool:
        import psycopg  # only re-runs need it: not imported by every worker

        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                return conn.execute(f"SELECT 1 FROM ({sql}) AS q LIMIT 1").fetchone() is not None
        except psycopg.Error as exc:
            raise SourceError(source.name, location, f"query failed ({first_line(exc)})", FIX) from None

    return read_query(source, con, state, location, adbc_stream(lambda: pg.connect(dsn), numeric_as_text=True),
                      (adbc_driver_manager.Error,), FIX, any_rows=any_rows)


