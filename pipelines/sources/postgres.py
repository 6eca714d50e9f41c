"""PostgreSQL agency systems (one-stop-shop dossiers...): a table or query, incremental by a watermark.

Options: `table` (schema.table) or `query`, `columns`, `types`. The DSN comes from `connection.env`
(or an Airflow connection inside a task); rows arrive as Arrow through `adbc-driver-postgresql`. An
incremental re-run first asks through psycopg whether any row is past the watermark (4 ms instead of the
30 ms an ADBC connection takes to set up).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipelines.errors import SourceError, first_line
from pipelines.sources.base import Extract, ReadState, secret
from pipelines.sources.dbquery import read_query

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
    location = _redact(dsn)

    def any_rows(sql: str) -> bool:
        import psycopg  # only re-runs need it: not imported by every worker

        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                return conn.execute(f"SELECT 1 FROM ({sql}) AS q LIMIT 1").fetchone() is not None
        except psycopg.Error as exc:
            raise SourceError(source.name, location, f"query failed ({first_line(exc)})", _FIX) from None

    return read_query(source, con, state, location, lambda: pg.connect(dsn), (adbc_driver_manager.Error,), _FIX,
                      numeric_as_text=True, any_rows=any_rows)


_FIX = ("check that the database is reachable, the credentials in the connection variable, and the table/query "
        "in 'options'")


def _redact(dsn: str) -> str:
    """The DSN without its password, fit for logs and meta.loads."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", re.sub(r"password=\S+", "password=***", dsn))
