"""SQLite files from older agency software: a table or query, incremental by a watermark.

Options as for `postgres`. `location` is the database file (relative to the tenant's data folder), or
`connection.env` names a variable holding its path. Rows arrive as Arrow through `adbc-driver-sqlite`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.errors import SourceError
from pipelines.sources.base import Extract, ReadState, resolve_file, secret
from pipelines.sources.dbquery import DatabaseOptions, adbc_stream, read_query

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths


class Options(DatabaseOptions):
    """Options of a `sqlite` source (`location`: the database file)."""

    FORMATS = (".sqlite", ".sqlite3", ".db", ".db3", ".s3db", ".sl3")


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    import adbc_driver_manager
    import adbc_driver_sqlite as sqlite

    from_env = secret(source, "path of the SQLite file")
    path = resolve_file(source.model_copy(update={"location": from_env}) if from_env else source, paths)
    with path.open("rb") as fh:
        if fh.read(16) != b"SQLite format 3\x00":
            raise SourceError(source.name, str(path), "not a SQLite database file",
                              "check 'location', or the kind of the source (csv? excel?)")
    # Read-only URI: the loader must never create or change the agency's file.
    uri = f"file:{path}?mode=ro"
    return read_query(source, con, state, str(path), adbc_stream(lambda: sqlite.connect(uri)),
                      (adbc_driver_manager.Error,), "check the table/query in 'options' against the file")
