"""The one interface every source kind implements.

A reader turns a configured source into a DuckDB relation plus a fingerprint of its input, without
row-by-row Python: files are read by DuckDB itself or through Arrow. The loader (`pipelines.load`) adds
lineage columns and writes the relation into `raw.<source>` in one transaction.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipelines.errors import SourceError

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths


@dataclass
class Extract:
    """What a reader hands the loader: the rows (as a relation) and what identifies this input."""

    relation: duckdb.DuckDBPyRelation
    fingerprint: str
    location: str
    notes: list[str] = field(default_factory=list)


class SourceReader(Protocol):
    def __call__(self, source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths) -> Extract: ...


def resolve_file(source: SourceConfig, paths: TenantPaths) -> Path:
    """A file location: absolute, or relative to the tenant's data folder; env vars expanded."""
    if not source.location:
        raise SourceError(source.name, "(no location)", "this file source has no 'location'",
                          "set 'location' in the tenant file")
    path = Path(os.path.expandvars(source.location)).expanduser()
    if not path.is_absolute():
        path = paths.root / path
    if not path.is_file():
        raise SourceError(source.name, str(path), "file not found",
                          "check the path in the tenant file or that the agency's export arrived")
    return path


def file_fingerprint(path: Path) -> str:
    """Content hash of an input file: the same bytes load once, whatever the file is called."""
    with path.open("rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()
