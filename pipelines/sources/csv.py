"""CSV exports from agency software, read by DuckDB's own CSV reader (no Python row loops).

Options (tenant YAML, `options:`): `delimiter`, `encoding` (utf-8 default — a BOM is fine —, utf-16,
latin-1, windows-1258, tcvn3), `header` (bool), `date_format` (e.g. `%d/%m/%Y`), `timestamp_format`,
`decimal_separator` (`,` for `1234,5`), `thousands` (`.` for `1.234.567`), `types` (column → DuckDB type;
give VARCHAR for codes with leading zeros), `skip_rows`, `quote`. The encoding is checked on a sample
before reading: a file in another encoding than declared fails with a message naming the option to set.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import SourceError, first_line
from pipelines.sources import encodings
from pipelines.sources.base import Extract, ReadState, check_options, files_fingerprint, resolve_files

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths

_OPTION_MAP = {
    "delimiter": "delim",
    "header": "header",
    "date_format": "dateformat",
    "timestamp_format": "timestampformat",
    "decimal_separator": "decimal_separator",
    "thousands": "thousands",
    "skip_rows": "skip",
    "quote": "quote",
}


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    import duckdb

    files = resolve_files(source, paths)
    location = str(files[0]) if len(files) == 1 else str(source.location)
    opts = check_options(source, location, {*_OPTION_MAP, "types", "encoding"})
    kwargs = {_OPTION_MAP[k]: v for k, v in opts.items() if k in _OPTION_MAP}
    if "types" in opts:
        kwargs["types"] = dict(opts["types"])
    fingerprint = files_fingerprint(files, con)  # of the agency's bytes, before any transcoding
    cleanup = []
    readable: list[str] = []
    for f in files:
        codec = encodings.check(source.name, f, opts.get("encoding"))
        if codec in encodings.NATIVE.values():
            kwargs["encoding"] = codec
            readable.append(str(f))
            continue
        fd, tmp = tempfile.mkstemp(prefix=f"tonghop-{source.name}-", suffix=".csv")
        os.close(fd)
        cleanup.append(lambda p=tmp: Path(p).unlink(missing_ok=True))
        encodings.transcode(f, Path(tmp), codec)
        readable.append(tmp)
    params = ", ".join(f"{k} := ${k}" for k in kwargs)
    sql = f"SELECT * FROM read_csv($path, {params}{', ' if params else ''}auto_detect := true)"
    try:
        rel = con.sql(sql, params={"path": readable if len(readable) > 1 else readable[0], **kwargs})
        rel.columns  # noqa: B018 — forces the sniffer now so a bad file fails here, named
    except duckdb.Error as exc:
        for undo in cleanup:
            undo()
        raise SourceError(source.name, location, f"cannot read as CSV ({first_line(exc)})",
                          "check the file's encoding, delimiter and date formats against 'options'") from None
    return Extract(relation=rel, fingerprint=fingerprint, location=location, cleanup=cleanup)

