"""Source kinds: one module each, one registry line each.

Adding a kind: write `pipelines/sources/<kind>.py` with a `read(source, con, paths) -> Extract`
function and an `Options` model (`pipelines.sources.options`: its typed, described `options:`), and add it
below; tenant files may then declare `kind: <kind>`. Reader modules import duckdb/pyarrow/polars inside
functions only: the config check imports them to get `Options` while Airflow parses DAG files.
"""

from __future__ import annotations

import importlib

from pipelines.sources.base import Extract, SourceReader
from pipelines.sources.options import SourceOptions

REGISTRY: dict[str, str] = {
    "csv": "pipelines.sources.csv",
    "excel": "pipelines.sources.excel",
    "postgres": "pipelines.sources.postgres",
    "sqlite": "pipelines.sources.sqlite",
    "mysql": "pipelines.sources.mysql",
    "parquet": "pipelines.sources.parquet",
    "json": "pipelines.sources.json",
    "api": "pipelines.sources.api",
    "ckan": "pipelines.sources.ckan",
}


def reader_for(kind: str) -> SourceReader:
    """The reader of a source kind, imported only when a source of that kind runs."""
    from pipelines.errors import ConfigError

    module = REGISTRY.get(kind)
    if module is None:
        raise ConfigError(f"source kind '{kind}' is declared but not implemented yet; "
                          f"implemented kinds: {', '.join(sorted(REGISTRY))}")
    return importlib.import_module(module).read


def options_for(kind: str) -> type[SourceOptions]:
    """The `Options` model of a registered source kind (its module imported on first use)."""
    return importlib.import_module(REGISTRY[kind]).Options


__all__ = ["REGISTRY", "Extract", "SourceReader", "options_for", "reader_for"]
