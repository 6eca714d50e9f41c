"""Open-data portals on CKAN: harvest datasets and resources through the action API.

Modes (`options.mode`):
- `datastore`: the rows of one DataStore resource (`datastore_search`, limit/offset pages), typed from the
  DataStore's field types;
- `download`: every resource of `resource_format` (CSV, JSON, Parquet) of one dataset (`dataset`, via
  `package_show`) or of a search (`q`/`fq`, via `package_search`), downloaded and read by DuckDB, with
  `_dataset` and `_resource` columns;
- `catalog`: the catalogue itself, one row per resource of the datasets found (for the open-data plan).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from pipelines.errors import SourceError
from pipelines.sources.api import stage_records
from pipelines.sources.base import Extract, ReadState, apply_types, resolve_url, source_options
from pipelines.sources.options import HttpOptions, TypesOption
from pipelines.sources.web import Client

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths

# DataStore field types (PostgreSQL names) → DuckDB types.
_FIELD_TYPES = {"int": "BIGINT", "int4": "INTEGER", "int8": "BIGINT", "numeric": "DOUBLE", "float8": "DOUBLE",
                "text": "VARCHAR", "timestamp": "TIMESTAMP", "date": "DATE", "bool": "BOOLEAN"}
_READERS = {"csv": "read_csv", "json": "read_json", "parquet": "read_parquet"}


def _format(value: str) -> str:
    if str(value).lower() not in _READERS:
        raise PydanticCustomError("value_error", "cannot read resources of format '{value}' — use "
                                  "resource_format: {known}", {"value": str(value)[:40],
                                                               "known": " | ".join(f.upper() for f in _READERS)})
    return value


class Options(HttpOptions, TypesOption):
    """Options of a `ckan` source (an open-data portal's action API)."""

    mode: Literal["datastore", "download", "catalog"] = Field(
        default="datastore", description="datastore: the rows of one DataStore resource; download: every "
                                         "resource of `resource_format` of the datasets found; catalog: one "
                                         "row per resource")
    resource_id: str | None = Field(default=None, description="datastore: the resource's id (from its page "
                                                              "on the portal)")
    dataset: str | None = Field(default=None, description="download/catalog: one dataset (package_show) "
                                                          "instead of a search")
    q: str | None = Field(default=None, description="download/catalog: package_search query")
    fq: str | None = Field(default=None, description="download/catalog: package_search filter, e.g. "
                                                     "`organization:so-khcn`")
    resource_format: Annotated[str, AfterValidator(_format)] = Field(
        default="CSV", description="download: the format of the resources read (CSV | JSON | PARQUET)")
    page_size: int = Field(default=1000, ge=1, description="rows (datastore) or datasets (search) per request")


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    base = resolve_url(source).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise SourceError(source.name, str(source.location), "a ckan source needs 'location: https://<portal>'",
                          "set 'location' to the portal's root URL")
    opts = source_options(source)
    if "auth" not in opts and source.connection is not None:
        opts["auth"] = "api_key"
        opts.setdefault("api_key_header", "Authorization")  # CKAN's own header for API tokens
    mode = opts.get("mode", "datastore")
    watermark = state.watermark if state else None
    with Client(source, opts) as client:
        portal = _Portal(client, source, base)
        if mode == "datastore":
            return _datastore(source, con, portal, opts, watermark)
        if mode == "catalog":
            rows = [_resource_row(p, r) for p in portal.packages(opts) for r in p.get("resources", [])]
            return stage_records(source, con, f"{base} (catalog)", [rows], opts, watermark,
                                 f"sha256:{client.digest.hexdigest()}")
        if mode == "download":
            return _download(source, con, portal, opts)
    raise SourceError(source.name, base, f"unknown mode '{mode}'", "use mode: datastore | download | catalog")


class _Portal:
    def __init__(self, client: Client, source: SourceConfig, base: str):
        self.client, self.source, self.base = client, source, base

    def action(self, name: str, params: dict[str, Any]) -> Any:
        url = f"{self.base}/api/3/action/{name}"
        body = self.client.get_json(url, params)
        if not isinstance(body, dict) or not body.get("success"):
            err = body.get("error", {}) if isinstance(body, dict) else {}
            raise SourceError(self.source.name, url, f"CKAN {name} failed: {err.get('message') or err or body}",
                              "check 'resource_id'/'dataset'/'q' against the portal")
        return body["result"]

    def packages(self, opts: dict[str, Any]) -> list[dict[str, Any]]:
        if opts.get("dataset"):
            return [self.action("package_show", {"id": opts["dataset"]})]
        rows, start, out = int(opts.get("page_size", 1000)), 0, []
        while True:
            params = {"rows": rows, "start": start, **{k: opts[k] for k in ("q", "fq") if opts.get(k)}}
            result = self.action("package_search", params)
            batch = result.get("results", [])
            out += batch
            start += len(batch)
            if not batch or start >= int(result.get("count", 0)):
                return out


def _datastore(source, con, portal: _Portal, opts, watermark) -> Extract:
    resource_id = opts.get("resource_id")
    if not resource_id:
        raise SourceError(source.name, portal.base, "mode 'datastore' needs 'resource_id'",
                          "copy the resource id from the portal's resource page")
    limit, offset, pages, fields = int(opts.get("page_size", 1000)), 0, [], []
    while True:
        result = portal.action("datastore_search", {"resource_id": resource_id, "limit": limit, "offset": offset})
        records = result.get("records", [])
        fields = result.get("fields", fields)
        pages.append(records)
        offset += len(records)
        if not records or offset >= int(result.get("total", offset)):
            break
    types = {f["id"]: _FIELD_TYPES[f.get("type")] for f in fields
             if f.get("type") in _FIELD_TYPES and f.get("type") != "text"}
    location = f"{portal.base}/api/3/action/datastore_search?resource_id={resource_id}"
    return stage_records(source, con, location, pages, opts, watermark,
                         f"sha256:{portal.client.digest.hexdigest()}", types)


def _resource_row(package: dict[str, Any], res: dict[str, Any]) -> dict[str, Any]:
    org = package.get("organization") or {}
    return {"dataset": package.get("name"), "dataset_title": package.get("title"),
            "organization": org.get("title") or org.get("name"), "license": package.get("license_id"),
            "dataset_modified": package.get("metadata_modified"), "resource_id": res.get("id"),
            "resource_name": res.get("name"), "format": (res.get("format") or "").upper(),
            "url": res.get("url"), "resource_modified": res.get("last_modified") or res.get("created")}


def _download(source, con, portal: _Portal, opts) -> Extract:
    import duckdb

    fmt = str(opts.get("resource_format", "CSV")).lower()
    if fmt not in _READERS:
        raise SourceError(source.name, portal.base, f"cannot read resources of format '{fmt}'",
                          f"use resource_format: {' | '.join(f.upper() for f in _READERS)}")
    wanted = [(p["name"], r) for p in portal.packages(opts) for r in p.get("resources", [])
              if (r.get("format") or "").lower() == fmt and r.get("url")]
    if not wanted:
        raise SourceError(source.name, portal.base, f"no {fmt.upper()} resource in the datasets found",
                          "check 'dataset'/'q'/'fq' and 'resource_format'")
    folder = Path(tempfile.mkdtemp(prefix=f"tonghop-ckan-{source.name}-"))
    try:
        mapping = []
        for i, (dataset, res) in enumerate(wanted):
            target = folder / f"{i:05d}.{fmt}"
            portal.client.download(res["url"], target)
            mapping.append((str(target), dataset, res.get("id")))
        files = [m[0] for m in mapping]
        con.execute("CREATE OR REPLACE TEMP TABLE _ckan_files (filename VARCHAR, _dataset VARCHAR, "
                    "_resource VARCHAR)")
        con.executemany("INSERT INTO _ckan_files VALUES (?, ?, ?)", mapping)
        extra = ", union_by_name := true" if fmt != "json" else ""
        rel = con.sql(f"SELECT d.* EXCLUDE (filename), f._dataset, f._resource FROM "
                      f"{_READERS[fmt]}($files, filename := true{extra}) d JOIN _ckan_files f USING (filename)",
                      params={"files": files})
        rel.columns  # noqa: B018 — sniffs now, so a bad download fails here, named
    except duckdb.Error as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise SourceError(source.name, portal.base, f"cannot read a downloaded resource ({str(exc)[:300]})",
                          "open the resource on the portal; if it is not what its format says, fix it there"
                          ) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    rel = apply_types(source, portal.base, rel, opts.get("types"))

    def cleanup() -> None:
        con.execute("DROP TABLE IF EXISTS temp._ckan_files")
        shutil.rmtree(folder, ignore_errors=True)

    return Extract(relation=rel, fingerprint=f"sha256:{portal.client.digest.hexdigest()}",
                   location=f"{portal.base} ({len(files)} {fmt.upper()} resource(s))", cleanup=[cleanup])
