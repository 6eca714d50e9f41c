"""Parquet files (exports of other platforms, national databases' extracts), read by DuckDB itself.

Options: `union_by_name` (files of a glob with different column orders/sets), `types`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from pipelines.errors import SourceError, first_line
from pipelines.sources.base import (
    Extract,
    ReadState,
    apply_types,
    files_fingerprint,
    resolve_files,
    source_options,
)
from pipelines.sources.options import TypesOption

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths


class Options(TypesOption):
    """Options of a `parquet` source (a file or a glob)."""

    FORMATS = (".parquet", ".parq", ".pq")

    union_by_name: bool = Field(default=False, description="files of a glob with different column orders or "
                                                           "sets are matched by column name")


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    import duckdb

    files = resolve_files(source, paths)
    location = str(files[0]) if len(files) == 1 else source.location
    opts = source_options(source)
    try:
        rel = con.read_parquet([str(f) for f in files], union_by_name=bool(opts.get("union_by_name", False)))
        rel.columns  # noqa: B018 — reads the footers now, so a damaged file fails here, named
    except duckdb.Error as exc:
        raise SourceError(source.name, location, f"cannot read as Parquet ({first_line(exc)})",
                          "check that the file is complete Parquet (re-export it); for files with different "
                          "columns set 'union_by_name: true'") from None
    rel = apply_types(source, location, rel, opts.get("types"))
    return Extract(relation=rel, fingerprint=files_fingerprint(files, con), location=location)
