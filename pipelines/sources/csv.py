"""CSV exports from agency software, read by DuckDB's own CSV reader (no Python row loops).

Options (tenant YAML, `options:`): `delimiter`, `encoding` (utf-8, utf-16, latin-1...), `header` (bool),
`date_format` (e.g. `%d/%m/%Y`), `timestamp_format`, `decimal_separator` (`,` for `1234,5`),
`thousands` (`.` for `1.234.567`), `types` (column → DuckDB type; give VARCHAR for codes with leading
zeros), `skip_rows`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.errors import SourceError
from pipelines.sources.base import Extract, file_fingerprint, resolve_file

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths

_OPTION_MAP = {
    "delimiter": "delim",
    "encoding": "encoding",
    "header": "header",
    "date_format": "dateformat",
    "timestamp_format": "timestampformat",
    "decimal_separator": "decimal_separator",
    "thousands": "thousands",
    "skip_rows": "skip",
    "quote": "quote",
}


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths) -> Extract:
    import duckdb

    path = resolve_file(source, paths)
    opts = dict(source.options)
    unknown = set(opts) - set(_OPTION_MAP) - {"types"}
    if unknown:
        raise SourceError(source.name, str(path), f"unknown csv option(s): {', '.join(sorted(unknown))}",
                          f"use only: {', '.join(sorted([*_OPTION_MAP, 'types']))}")
    kwargs = {_OPTION_MAP[k]: v for k, v in opts.items() if k in _OPTION_MAP}
    if "types" in opts:
        kwargs["types"] = dict(opts["types"])
    params = ", ".join(f"{k} := ${k}" for k in kwargs)
    sql = f"SELECT * FROM read_csv($path, {params}{', ' if params else ''}auto_detect := true)"
    try:
        rel = con.sql(sql, params={"path": str(path), **kwargs})
        rel.columns  # noqa: B018 — forces the sniffer now so a bad file fails here, named
    except duckdb.Error as exc:
        raise SourceError(source.name, str(path), f"cannot read as CSV ({_first_line(exc)})",
                          "check the file's encoding, delimiter and date formats against 'options'") from None
    return Extract(relation=rel, fingerprint=file_fingerprint(path), location=str(path))


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]
