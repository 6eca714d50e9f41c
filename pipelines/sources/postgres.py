"""PostgreSQL agency systems (one-stop-shop dossiers...): a table or query, incremental by a watermark.

Options: `table` (schema.table) or `query`, `columns`, `types`. The DSN comes from `connection.env`
(or an Airflow connection inside a task); rows arrive as Arrow through `adbc-driver-postgresql`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipelines.errors import SourceError
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
    return read_query(source, con, state, location, lambda: pg.connect(dsn),
                      (adbc_driver_manager.Error,),
                      "check that the database is reachable, the credentials in the connection variable, "
                      "and the table/query in 'options'")


def _redact(dsn: str) -> str:
    """The DSN without its password, fit for logs and meta.loads."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", re.sub(r"password=\S+", "password=***", dsn))
