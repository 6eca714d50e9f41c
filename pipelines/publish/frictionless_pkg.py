"""A Frictionless Data Package (`datapackage.json`) per open dataset: one resource per file (CSV, Parquet,
JSON), each with the table schema typed from DuckDB's types and described from the data dictionary."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.config import OpenDataset, TenantConfig

MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "json": "application/json"}


def field_type(duck_type: str) -> str:
    """A DuckDB column type as a Table Schema field type."""
    t = duck_type.upper()
    if t.endswith("[]") or t.startswith(("STRUCT", "MAP", "LIST", "UNION")):
        return "any"
    if re.match(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT)$", t):
        return "integer"
    if re.match(r"^(DOUBLE|FLOAT|REAL|DECIMAL.*)$", t):
        return "number"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "datetime"
    if t.startswith("TIME"):
        return "time"
    return "string"


def datapackage(cfg: TenantConfig, ds: OpenDataset, entry: dict[str, Any], columns: dict[str, str],
                descriptions: dict[str, str]) -> dict[str, Any]:
    from pipelines.config import OPEN_LICENCES

    plan = cfg.open_data
    assert plan is not None
    licence_uri, licence_title = OPEN_LICENCES[plan.licence]
    schema = {"fields": [{"name": c, "type": field_type(t), **({"description": descriptions[c]}
                                                               if descriptions.get(c) else {})}
                         for c, t in columns.items()]}
    resources = []
    for dist in entry["distributions"]:
        fmt = dist["format"]
        resources.append({
            "name": f"{ds.id}-{fmt}", "path": dist["path"].rsplit("/", 1)[-1], "profile": "tabular-data-resource",
            "title": f"{ds.title} ({fmt.upper()})", "format": fmt, "mediatype": MEDIA[fmt],
            # frictionless checks bytes/hash only on a byte stream (CSV); Parquet and JSON are read by pyarrow
            # and ijson, which report none — their size and checksum are in the DCAT catalogue and the report
            **({"encoding": "utf-8-sig", "bytes": dist["byte_size"], "hash": f"sha256:{dist['sha256']}"}
               if fmt == "csv" else {}),
            "schema": schema,
        })
    return {
        "profile": "tabular-data-package",
        "name": ds.id.replace("_", "-"),
        "title": ds.title,
        "description": f"{ds.description}\n\n{ds.title_en}: {ds.description_en}",
        "version": entry["version"],
        "created": entry["modified"],
        "keywords": [*ds.keywords, *ds.keywords_en],
        "licenses": [{"name": plan.licence, "path": licence_uri, "title": licence_title}],
        "sources": [{"title": f"{cfg.display_name} — {ds.table}", "path": ds.table}],
        "contributors": [{"title": ds.owner or plan.publisher, "role": "publisher"}],
        "resources": resources,
    }
