"""JSON files (service dumps, exports): arrays, newline-delimited JSON, or records nested in an object.

Options: `records_path` (dotted path to the list of records inside each file's top-level object, e.g.
`data.items`) and the typing options shared with csv/excel/api (`pipelines.sources.parsing`: `types`,
`date_format`, `timestamp_format`, `decimal_separator`, `thousands`); a record whose value does not fit its
type is quarantined with the field and value named. Read by DuckDB's own JSON reader; a glob reads several
files as one batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from pipelines.errors import SourceError, first_line
from pipelines.sources import parsing
from pipelines.sources.base import (
    Extract,
    ReadState,
    files_fingerprint,
    resolve_files,
    source_options,
)
from pipelines.sources.options import ParsingOptions
from pipelines.sqltext import quote_ident

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths


class Options(ParsingOptions):
    """Options of a `json` source (files: an array, newline-delimited JSON, or records inside an object)."""

    FORMATS = (".json", ".jsonl", ".ndjson", ".geojson")

    # Keys without a double quote or control character: each is quoted as a DuckDB identifier below.
    records_path: str | None = Field(default=None, pattern=r'^[^."\x00-\x1f]+(\.[^."\x00-\x1f]+)*$', max_length=200,
                                     description="dotted path to the list of records inside each file's "
                                                 "top-level object, e.g. `data.items`")


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    import duckdb

    files = resolve_files(source, paths)
    location = str(files[0]) if len(files) == 1 else str(source.location)
    opts = source_options(source)
    names = [str(f) for f in files]
    path = opts.get("records_path")
    try:
        if path:
            keys = ".".join(quote_ident(k) for k in str(path).split("."))
            # Each file is one object; unnest the list at `path`, then its structs into columns.
            # One object per file: the largest file bounds the object (DuckDB reserves buffers of this size, so
            # a fixed 1 GiB could exceed the pipeline's memory limit for kilobyte files).
            biggest = max(f.stat().st_size for f in files) + 1024
            rel = con.sql(f"SELECT unnest(r, recursive := false) FROM (SELECT unnest(j.{keys}) AS r "
                          "FROM read_json($files, format := 'unstructured', maximum_object_size := $size) j)",
                          params={"files": names, "size": max(biggest, 16 * 1024 * 1024)})
        else:
            rel = con.read_json(names, format="auto")
        rel.columns  # noqa: B018 — samples the files now, so a malformed one fails here, named
    except duckdb.Error as exc:
        raise SourceError(source.name, location, f"cannot read as JSON ({first_line(exc)})",
                          "check that the file is complete JSON and that 'records_path' points at the list "
                          "of records") from None
    if opts.get("types"):
        rel = rel.project(f"*, row_number() OVER () AS {parsing.ROW}")
    rel = parsing.apply(source, location, rel, opts)
    rel, rejects, cleanup = parsing.split(con, source.name, rel)
    return Extract(relation=rel, fingerprint=files_fingerprint(files, con), location=location,
                   rejects_sql=[rejects] if rejects else [], cleanup=cleanup)
