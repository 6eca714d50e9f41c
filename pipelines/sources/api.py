"""REST/JSON services (LGSP/NDXP data-sharing APIs): paginated, token-authenticated, incremental.

Options: see `pipelines/sources/README.md` (`records_path`, `params`, `pagination`, `incremental_param`,
`auth`, `rate_limit`, `timeout`, `retries`, `backoff`, and the typing options of `pipelines.sources.parsing`:
`types`, `date_format`, `timestamp_format`, `decimal_separator`, `thousands`). The token comes from
`connection.env`. Records whose value does not fit its type are quarantined, the rest land.

Feeds that misbehave end with a message, never a hang: a page identical to an earlier one (the service
ignores the page parameter) or a cursor that comes back is an error; so are records whose field names
change from one page to the next. Records repeated verbatim across pages are kept once, with a note.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pipelines.errors import SourceError
from pipelines.sources import parsing
from pipelines.sources.base import (
    Extract,
    ReadState,
    after_watermark,
    drop_temp,
    resolve_url,
    source_options,
    stage_arrow,
)
from pipelines.sources.options import HttpOptions, ParsingOptions, SourceOptions
from pipelines.sources.web import Client, dig, page_frame, records_to_arrow

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.sources.api")


class Pagination(SourceOptions):
    """`options.pagination` of an `api` source: how the next page is asked for and when paging ends."""

    type: Literal["none", "page", "offset", "cursor"] = Field(
        default="none", description="none (one response) | page | offset | cursor")
    page_size: int = Field(default=100, ge=1, description="records asked per page (page, offset)")
    page_param: str = Field(default="page", description="page: query parameter of the page number")
    start: int = Field(default=1, description="page: number of the first page")
    size_param: str = Field(default="page_size", description="page: query parameter of the page size")
    offset_param: str = Field(default="offset", description="offset: query parameter of the offset")
    limit_param: str = Field(default="limit", description="offset: query parameter of the page size")
    cursor_param: str = Field(default="cursor", description="cursor: query parameter of the cursor")
    next_cursor_path: str = Field(default="next_cursor", description="cursor: dotted path of the next cursor "
                                                                     "in the response, e.g. `meta.next_cursor`")
    total_path: str | None = Field(default=None, description="dotted path of the total record count (e.g. "
                                                             "`data.total`): stops paging early")
    max_pages: int = Field(default=10_000, ge=1, description="pages at most (a feed still paging after that "
                                                             "is an error)")


class Options(HttpOptions, ParsingOptions):
    """Options of an `api` source (REST/JSON services: LGSP, NDXP, a ministry's own API)."""

    params: dict[str, Any] = Field(default_factory=dict, description="fixed query parameters sent with "
                                                                      "every request")
    records_path: str | None = Field(default=None, description="dotted path to the records in each response, "
                                                               "e.g. `data.items` (default: the response itself)")
    pagination: Pagination | None = Field(default=None, description="how pages are followed (see the "
                                                                    "`api.pagination` table)")
    incremental_param: str | None = Field(default=None, description="query parameter that carries the "
                                                                    "stored watermark, e.g. `updated_since`")



def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    url = resolve_url(source)
    if not url or not url.startswith(("http://", "https://")):
        raise SourceError(source.name, str(url), "an api source needs 'location: https://...'",
                          "set 'location' to the service's URL")
    opts = source_options(source)
    watermark = state.watermark if state else None
    params = dict(opts.get("params") or {})
    if opts.get("incremental_param") and watermark is not None:
        params[opts["incremental_param"]] = watermark
    with Client(source, opts) as client:
        pages = [page_frame(p) for p in fetch_pages(client, source, url, params, opts)]
        fingerprint = f"sha256:{client.digest.hexdigest()}"
    return stage_records(source, con, url, pages, opts, watermark, fingerprint)


def fetch_pages(client: Client, source: SourceConfig, url: str, params: dict[str, Any], opts: dict[str, Any]):
    """Yield each page's records, following the configured pagination until a short/empty page or the end."""
    pag = dict(opts.get("pagination") or {"type": "none"})
    kind = pag.get("type", "none")
    size = int(pag.get("page_size", 100))
    max_pages = int(pag.get("max_pages", 10_000))
    records_path = opts.get("records_path")
    cursor = None
    fetched = 0
    seen_pages: dict[str, int] = {}
    seen_cursors: set[str] = set()
    fields: set[str] | None = None
    for i in range(max_pages):
        query = dict(params)
        if kind == "page":
            query[pag.get("page_param", "page")] = int(pag.get("start", 1)) + i
            query[pag.get("size_param", "page_size")] = size
        elif kind == "offset":
            query[pag.get("offset_param", "offset")] = fetched
            query[pag.get("limit_param", "limit")] = size
        elif kind == "cursor" and cursor is not None:
            query[pag.get("cursor_param", "cursor")] = cursor
        elif kind not in ("none", "cursor"):
            raise SourceError(source.name, url, f"unknown pagination type '{kind}'",
                              "use pagination.type: none | page | offset | cursor")
        body = client.get_json(url, query)
        records = dig(body, records_path) if records_path else body
        if not isinstance(records, list):
            raise SourceError(source.name, url, f"no list of records at '{records_path or '(top level)'}' "
                              f"in the response (keys: {list(body)[:10] if isinstance(body, dict) else '-'})",
                              "set 'options.records_path' to the dotted path of the records, e.g. data.items")
        if records:
            digest = hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()
            if digest in seen_pages:
                raise SourceError(source.name, url, f"page {i + 1} repeats page {seen_pages[digest] + 1} exactly: "
                                  f"the service ignores the '{kind}' pagination (it would loop forever)",
                                  "check 'pagination' (page_param/offset_param/cursor_param) against the "
                                  "service's documentation")
            seen_pages[digest] = i
            keys = set().union(*(r.keys() for r in records if isinstance(r, dict)))
            if fields is not None and keys - fields and fields - keys:
                raise SourceError(source.name, url, f"the records' field names changed on page {i + 1}: "
                                  f"{sorted(keys - fields)[:10]} instead of {sorted(fields - keys)[:10]}",
                                  "ask the service's owner whether the feed changed; map the new names in the "
                                  "staging SQL once it is on purpose")
            fields = keys if fields is None else fields | keys
        yield records
        fetched += len(records)
        total = dig(body, pag["total_path"]) if pag.get("total_path") else None
        if kind == "none" or not records or (total is not None and fetched >= int(total)):
            return
        if kind == "cursor":
            cursor = dig(body, pag.get("next_cursor_path", "next_cursor"))
            if not cursor:
                return
            if str(cursor) in seen_cursors:
                raise SourceError(source.name, url, f"the next-page cursor {str(cursor)[:40]!r} came back again "
                                  f"after {i + 1} pages (the pagination loops)",
                                  "check 'pagination.next_cursor_path'; report the loop to the service's owner")
            seen_cursors.add(str(cursor))
        elif total is None and len(records) < size:
            return
    raise SourceError(source.name, url, f"still paging after {max_pages} pages",
                      "raise 'pagination.max_pages' or check that the service's pagination ends")


def stage_records(source: SourceConfig, con: duckdb.DuckDBPyConnection, location: str,
                  pages: list[list[dict[str, Any]]], opts: dict[str, Any], watermark: str | None,
                  fingerprint: str, types: dict[str, str] | None = None) -> Extract:
    """Records → Arrow → a DuckDB temp table, typed, past the watermark."""
    import pyarrow as pa

    table = records_to_arrow(pages)
    staged = f"_src_{source.name}"
    notes: list[str] = []
    if table is None:
        if source.incremental_column and watermark is not None:
            rel = con.sql("SELECT NULL::VARCHAR AS _empty WHERE false")
            return Extract(relation=rel, fingerprint=fingerprint, location=location, n_rows_read=0)
        raise SourceError(source.name, location, "the service returned no records",
                          "check 'options.records_path' and 'params'; an empty feed cannot set up raw")
    n_records = table.num_rows
    table = _unique(table)
    if table.num_rows < n_records:
        notes.append(f"{n_records - table.num_rows:,} record(s) repeated verbatim across pages, kept once")
        log.warning("source '%s': %s", source.name, notes[-1])
    table = table.append_column(parsing.ROW, pa.array(range(1, table.num_rows + 1), pa.int64()))
    rel, _ = stage_arrow(con, staged, table)
    rel = parsing.apply(source, location, rel, opts, {**(types or {}), **(opts.get("types") or {})})
    if source.incremental_column and source.incremental_column not in rel.columns:
        raise SourceError(source.name, location, f"incremental column '{source.incremental_column}' is not in "
                          f"the records (columns: {rel.columns})", "fix 'incremental_column' or 'records_path'")
    rel = after_watermark(rel, source.incremental_column, watermark)
    n = rel.aggregate("count(*)").fetchall()[0][0]
    rel, rejects, cleanup = parsing.split(con, source.name, rel)
    return Extract(relation=rel, fingerprint=fingerprint, location=location, n_rows_read=n, notes=notes,
                   rejects_sql=[rejects] if rejects else [], cleanup=[*cleanup, drop_temp(con, staged)])


def _unique(table):
    """The records without verbatim repeats (a page served twice by a shifting offset), first ones kept."""
    import polars as pl

    frame = pl.from_arrow(table)
    try:
        return frame.unique(maintain_order=True).to_arrow()
    except pl.exceptions.InvalidOperationError:  # nested values polars cannot compare: keep all
        return table
