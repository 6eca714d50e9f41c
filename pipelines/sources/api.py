"""REST/JSON services (LGSP/NDXP data-sharing APIs): paginated, token-authenticated, incremental.

Options: see `pipelines/sources/README.md` (`records_path`, `params`, `pagination`, `incremental_param`,
`auth`, `rate_limit`, `timeout`, `retries`, `backoff`, `types`). The token comes from `connection.env`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.errors import SourceError
from pipelines.sources.base import (
    Extract,
    ReadState,
    after_watermark,
    apply_types,
    check_options,
    drop_temp,
    resolve_url,
    stage_arrow,
)
from pipelines.sources.web import HTTP_OPTIONS, Client, dig, records_to_arrow

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths

_KNOWN = HTTP_OPTIONS | {"params", "records_path", "pagination", "incremental_param", "types"}


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    url = resolve_url(source)
    if not url or not url.startswith(("http://", "https://")):
        raise SourceError(source.name, str(url), "an api source needs 'location: https://...'",
                          "set 'location' to the service's URL")
    opts = check_options(source, url, _KNOWN)
    watermark = state.watermark if state else None
    params = dict(opts.get("params") or {})
    if opts.get("incremental_param") and watermark is not None:
        params[opts["incremental_param"]] = watermark
    with Client(source, opts) as client:
        pages = list(fetch_pages(client, source, url, params, opts))
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
        yield records
        fetched += len(records)
        total = dig(body, pag["total_path"]) if pag.get("total_path") else None
        if kind == "none" or not records or (total is not None and fetched >= int(total)):
            return
        if kind == "cursor":
            cursor = dig(body, pag.get("next_cursor_path", "next_cursor"))
            if not cursor:
                return
        elif total is None and len(records) < size:
            return
    raise SourceError(source.name, url, f"still paging after {max_pages} pages",
                      "raise 'pagination.max_pages' or check that the service's pagination ends")


def stage_records(source: SourceConfig, con: duckdb.DuckDBPyConnection, location: str,
                  pages: list[list[dict[str, Any]]], opts: dict[str, Any], watermark: str | None,
                  fingerprint: str, types: dict[str, str] | None = None) -> Extract:
    """Records → Arrow → a DuckDB temp table, typed, past the watermark."""
    table = records_to_arrow(pages)
    staged = f"_src_{source.name}"
    if table is None:
        if source.incremental_column and watermark is not None:
            rel = con.sql("SELECT NULL::VARCHAR AS _empty WHERE false")
            return Extract(relation=rel, fingerprint=fingerprint, location=location, n_rows_read=0)
        raise SourceError(source.name, location, "the service returned no records",
                          "check 'options.records_path' and 'params'; an empty feed cannot set up raw")
    rel, _ = stage_arrow(con, staged, table)
    rel = apply_types(source, location, rel, {**(types or {}), **(opts.get("types") or {})})
    if source.incremental_column and source.incremental_column not in rel.columns:
        raise SourceError(source.name, location, f"incremental column '{source.incremental_column}' is not in "
                          f"the records (columns: {rel.columns})", "fix 'incremental_column' or 'records_path'")
    rel = after_watermark(rel, source.incremental_column, watermark)
    n = rel.aggregate("count(*)").fetchall()[0][0]
    return Extract(relation=rel, fingerprint=fingerprint, location=location, n_rows_read=n,
                   cleanup=[drop_temp(con, staged)])
