"""CSV exports from agency software, read by DuckDB's own CSV reader (no Python row loops).

Options (tenant YAML, `options:`): `delimiter`, `encoding` (utf-8 default — a BOM is fine —, utf-16,
latin-1, windows-1258, tcvn3), `header` (bool), `date_format` (e.g. `%d/%m/%Y`), `timestamp_format`,
`decimal_separator` (`,` for `1234,5`), `thousands` (`.` for `1.234.567`), `types` (column → DuckDB type;
give VARCHAR for codes with leading zeros), `skip_rows`, `quote`. The encoding is checked on a sample
before reading: a file in another encoding than declared fails with a message naming the option to set.

Bad lines do not fail the batch: DuckDB's reject tables (`store_rejects`) catch lines with too many or too
few columns and values that do not cast (an impossible date `31/02/2024`, text in an INTEGER column); the
loader keeps them in `raw."_rejected_<source>"` with their line number and the error, and the rest lands.
Numbers written with separators are typed by `pipelines.sources.parsing` (strict: `1,234.5` under
`thousands: .` is refused, never read as 1.2345). A header with a duplicate column name is refused, naming
it; a file mixing CRLF and LF line endings is read as one kind; rows with a NUL byte are held back.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from pipelines.errors import SourceError, first_line
from pipelines.sources import encodings, parsing
from pipelines.sources.base import Extract, ReadState, files_fingerprint, resolve_files, source_options
from pipelines.sources.options import ParsingOptions

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
_CHUNK = 8 << 20


def _known_encoding(value: str) -> str:
    if value.lower() not in encodings.NATIVE and value.lower() not in encodings.LEGACY:
        raise PydanticCustomError("value_error", "unknown encoding '{value}' — use one of {known}",
                                  {"value": value[:40], "known": ", ".join([*encodings.NATIVE, *encodings.LEGACY])})
    return value


class Options(ParsingOptions):
    """Options of a `csv` source (None: DuckDB's CSV sniffer decides)."""

    FORMATS = (".csv", ".tsv", ".tab", ".txt", ".dat", ".psv")

    delimiter: str | None = Field(default=None, min_length=1, max_length=4,
                                  description="column separator, e.g. `;` or `\\t` (default: detected)")
    encoding: Annotated[str, AfterValidator(_known_encoding)] | None = Field(
        default=None, description="the file's encoding: utf-8 (default; a BOM is fine), utf-16, latin-1, "
                                  "windows-1258, tcvn3 (legacy ones are transcoded to UTF-8 first)")
    header: bool | None = Field(default=None, description="whether the first line names the columns "
                                                          "(default: detected)")
    skip_rows: int | None = Field(default=None, ge=0, description="lines to skip before the header")
    quote: str | None = Field(default=None, max_length=1, description="quote character (default: detected)")


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    import duckdb

    files = resolve_files(source, paths)
    location = str(files[0]) if len(files) == 1 else str(source.location)
    opts = source_options(source)
    kwargs = {_OPTION_MAP[k]: v for k, v in opts.items() if k in _OPTION_MAP and v is not None}
    types = dict(opts.get("types") or {})
    # Numbers with separators are typed strictly in SQL (parsing.py); DuckDB types the rest as it reads.
    by_sql = {c: t for c, t in types.items() if parsing.is_numeric(t)
              and (opts.get("thousands") or opts.get("decimal_separator"))}
    if types:
        kwargs["types"] = {c: ("VARCHAR" if c in by_sql else t) for c, t in types.items()}
    fingerprint = files_fingerprint(files, con)  # of the agency's bytes, before any transcoding
    if state is not None and state.is_promoted is not None and state.is_promoted(fingerprint):
        # Already promoted: the loader records `unchanged` without the rows; scanning and sniffing the file
        # again would cost a second for 1 GB (a re-run with nothing new costs the stat behind the fingerprint).
        return Extract(relation=con.sql("SELECT NULL::VARCHAR AS _unchanged WHERE false"),
                       fingerprint=fingerprint, location=location)
    cleanup = []
    readable: list[str] = []
    has_nul = False
    text_normal = True  # until a file may need NFC, or is read through a transcoded copy / UTF-16

    def temp_copy() -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f"tonghop-{source.name}-", suffix=".csv")
        os.close(fd)
        cleanup.append(lambda p=tmp: Path(p).unlink(missing_ok=True))
        return Path(tmp)

    for f in files:
        if f.stat().st_size == 0:
            raise SourceError(source.name, str(f), "the file is empty (0 bytes, not even a header line)",
                              "ask the agency to re-send the export; an export with no records still has its header")
        codec = encodings.check(source.name, f, opts.get("encoding"))
        if codec in encodings.NATIVE.values():
            kwargs["encoding"] = codec
            if codec != "utf-16":
                nul, mixed, decomposed = _scan(f)
                has_nul = has_nul or nul
                text_normal = text_normal and codec == "utf-8" and not decomposed
                if mixed:
                    tmp = temp_copy()
                    _one_line_ending(f, tmp)
                    readable.append(str(tmp))
                    continue
            else:
                text_normal = False
            readable.append(str(f))
            continue
        tmp = temp_copy()
        encodings.transcode(f, tmp, codec)
        readable.append(str(tmp))
        text_normal = False  # windows-1258 and TCVN3 decode to combining tone marks: NFC composes them
    tag = source.name
    kwargs.update(store_rejects=True, rejects_table=f"_rejects_{tag}", rejects_scan=f"_reject_scans_{tag}")
    cleanup += [lambda: con.execute(f'DROP TABLE IF EXISTS temp."_rejects_{tag}"'),
                lambda: con.execute(f'DROP TABLE IF EXISTS temp."_reject_scans_{tag}"')]
    target = readable if len(readable) > 1 else readable[0]
    try:
        _check_header(source, con, location, readable[0], kwargs)
        params = ", ".join(f"{k} := ${k}" for k in kwargs)
        rel = con.sql(f"SELECT * FROM read_csv($path, {params}, auto_detect := true)",
                      params={"path": target, **kwargs})
        absent = sorted(set(types) - set(rel.columns))  # noqa: B018 — also forces the sniffer now
        if absent:
            raise SourceError(source.name, location, f"cannot read as CSV: 'types' names column(s) not in the "
                              f"file: {absent}", f"columns found: {rel.columns}")
        rel = parsing.apply(source, location, rel, opts, by_sql)
        if has_nul:
            rel = parsing.flag_nul(rel)
        rel, parse_rejects, undo_split = parsing.split(con, source.name, rel)
        cleanup += undo_split
    except (duckdb.Error, SourceError) as exc:
        for undo in cleanup:
            try:
                undo()
            except duckdb.Error:
                pass
        if isinstance(exc, SourceError):
            raise
        raise SourceError(source.name, location, f"cannot read as CSV ({first_line(exc)})",
                          "check the file's encoding, delimiter and date formats against 'options'") from None
    # The rows of the last scan (the insert into raw) that DuckDB set aside, one per line.
    rejects = (f'SELECT e.line AS _row, to_json(any_value(e.csv_line)) AS row_json, '
               f"'line ' || e.line || ': ' || string_agg(e.error_type || ' ' || coalesce('column ' || "
               f"e.column_name || ' ', '') || '(' || e.error_message || ')', '; ') AS _reason "
               f'FROM temp."_rejects_{tag}" e WHERE e.scan_id = (SELECT max(scan_id) FROM temp."_rejects_{tag}") '
               f"GROUP BY e.file_id, e.line")
    return Extract(relation=rel, fingerprint=fingerprint, location=location, cleanup=cleanup, text_normal=text_normal,
                   rejects_sql=[rejects, *([parse_rejects] if parse_rejects else [])])


def _scan(path: Path) -> tuple[bool, bool, bool]:
    """(the file holds a NUL byte, it mixes CRLF and LF line endings, its text may need NFC or holds a BOM past
    its start), at memchr speed: only `in` tests over each chunk (C loops, stop at the first hit); bare LFs are
    looked for only in files that have CRLFs. Counting every newline instead took 2.7 s on 960 MB where the
    file's hash takes 0.1 s. NFC can change UTF-8 text only where a combining mark follows a letter: the marks
    Vietnamese uses (U+0300–U+036F) all start with byte 0xCC or 0xCD, which precomposed text never holds."""
    nul = crlf = bare_lf = decomposed = False
    prev_cr = False
    first = True
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            nul = nul or b"\x00" in chunk
            decomposed = decomposed or b"\xcc" in chunk or b"\xcd" in chunk \
                or b"\xef\xbb\xbf" in (chunk[3:] if first and chunk.startswith(b"\xef\xbb\xbf") else chunk)
            first = False
            if prev_cr and chunk[:1] == b"\n":
                crlf, chunk = True, chunk[1:]
            prev_cr = chunk[-1:] == b"\r"
            if b"\r" in chunk and b"\r\n" in chunk:  # memchr first: the 2-byte search is 60x slower
                crlf = True
                bare_lf = bare_lf or b"\n" in chunk.replace(b"\r\n", b"")
            else:
                bare_lf = bare_lf or b"\n" in chunk
            if nul and crlf and bare_lf and decomposed:
                break
    return nul, crlf and bare_lf, decomposed


def _one_line_ending(src: Path, dst: Path) -> None:
    """Copy `src` with every CRLF turned into LF (a file edited on two systems), streaming."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        carry = b""
        while chunk := fin.read(_CHUNK):
            data = carry + chunk
            carry = b"\r" if data.endswith(b"\r") else b""
            fout.write(data[: len(data) - len(carry)].replace(b"\r\n", b"\n"))
        fout.write(carry)


def _check_header(source: SourceConfig, con: duckdb.DuckDBPyConnection, location: str, path: str,
                  kwargs: dict) -> None:
    """Refuse a header naming a column twice (DuckDB would rename the second `ten_1` silently)."""
    import unicodedata

    if kwargs.get("header") is False:
        return
    keep = {k: v for k, v in kwargs.items() if k in ("delim", "quote", "skip", "encoding")}
    params = "".join(f", {k} := ${k}" for k in keep)
    row = con.sql(f"SELECT * FROM read_csv($path, header := false, all_varchar := true{params}) LIMIT 1",
                  params={"path": path, **keep}).fetchall()
    names = [unicodedata.normalize("NFC", str(v)).replace("\ufeff", "").strip() for v in (row[0] if row else [])
             if v is not None]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SourceError(source.name, location, f"the header names column(s) {dupes} more than once",
                          "rename the columns in the export so each header is unique (the data cannot be "
                          "matched to a column otherwise)")
