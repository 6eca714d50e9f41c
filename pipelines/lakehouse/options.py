"""The tenant file's `storage:` option: where the tenant's published tables live.

    storage:
      kind: lakehouse                              # default: duckdb (serving.duckdb only)
      catalog_url_env: TONGHOP_LAKEHOUSE_CATALOG   # the variable holding the catalogue's URL (a secret)
      location: lakehouse                          # inside the tenant's data folder, or s3://bucket/prefix

Kept free of `pipelines.config` imports (config imports this). The rules that need the tenant (a local
location inside its data folder) are in `check_storage`, called by `pipelines.config.check_tenant`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines import locations

CATALOG_ENV_DEFAULT = "TONGHOP_LAKEHOUSE_CATALOG"
# The catalogue URL is a secret (it carries the PostgreSQL password): a tenant file may only name one of the
# operator's lakehouse variables, never an arbitrary one (TONGHOP_PII_KEY, Airflow's database URL…) whose
# value an error could then be made to quote.
CATALOG_ENV_PATTERN = r"^TONGHOP_LAKEHOUSE_[A-Z0-9_]{0,40}$"
_S3 = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[A-Za-z0-9._\-/]*)?$")
# The buckets (or bucket/prefix) a tenant's s3:// location may use: the operator's installation setting, comma
# separated, e.g. `kho-du-lieu/tinh,kho-du-lieu-bo`. Unset: no s3:// location is accepted. A tenant file alone
# cannot send the data files (and the installation's AWS_* credentials) to a bucket of its choosing.
S3_ALLOWED_ENV = "TONGHOP_LAKEHOUSE_BUCKETS"


def s3_allowed() -> list[str]:
    import os

    return [e.strip().removeprefix("s3://").strip("/") for e in os.environ.get(S3_ALLOWED_ENV, "").split(",")
            if e.strip().removeprefix("s3://").strip("/")]


def check_s3_location(location: str) -> str | None:
    """Why an s3:// location is refused (None when an allow-list entry contains it)."""
    path = location.removeprefix("s3://").strip("/")
    allowed = s3_allowed()
    if any(path == entry or path.startswith(entry + "/") for entry in allowed):
        return None
    listed = ", ".join(f"s3://{e}" for e in allowed) or "none"
    return (f"'{location[:80]}' is not in the installation's allowed buckets ({listed}) — use one of them, or "
            f"ask the operator to add it to {S3_ALLOWED_ENV} (a setting of the installation, not of the tenant file)")


class StorageConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["duckdb", "lakehouse"] = "duckdb"
    # The table format: Apache Iceberg (docs/lakehouse.md says why, measured against Delta Lake).
    format: Literal["iceberg"] = "iceberg"
    catalog_url_env: str = Field(default=CATALOG_ENV_DEFAULT, pattern=CATALOG_ENV_PATTERN)
    location: str = "lakehouse"

    @field_validator("catalog_url_env", mode="before")
    @classmethod
    def _allowed_env(cls, value: object) -> object:
        if isinstance(value, str) and not re.match(CATALOG_ENV_PATTERN, value):
            raise ValueError(f"variable '{value[:40]}' is not allowed for the catalogue URL — name one of the "
                             f"operator's TONGHOP_LAKEHOUSE_… variables (default {CATALOG_ENV_DEFAULT})")
        return value

    @field_validator("location")
    @classmethod
    def _safe_location(cls, location: str) -> str:
        locations.check_inline_credentials(location, {})
        if locations.variables(location):
            raise ValueError("variables are not allowed in 'storage.location' — give a folder inside the "
                             "tenant's data folder (e.g. lakehouse) or s3://bucket/prefix")
        if locations.is_url(location):
            if not _S3.match(location):
                raise ValueError(f"'{location[:60]}' is not a supported lakehouse location — give a folder inside "
                                 "the tenant's data folder (e.g. lakehouse) or s3://bucket/prefix (S3-compatible "
                                 "storage; credentials from the AWS_* environment variables, never the file)")
            if ".." in location.split("/"):
                raise ValueError("'..' is not allowed in 'storage.location'")
            return location
        locations.check_path_text(location)
        return location

    @property
    def is_lakehouse(self) -> bool:
        return self.kind == "lakehouse"


def check_storage(storage: StorageConfig, root: Path) -> list[str]:
    """A local location must resolve inside the tenant's data folder `root` (or an operator-listed root)."""
    if locations.is_url(storage.location):
        refused = check_s3_location(storage.location)
        return [f"field 'storage.location': {refused}"] if refused else []
    path = Path(storage.location)
    try:
        locations.confine(path if path.is_absolute() else root / path, root, "the lakehouse location")
    except locations.LocationRefused as exc:
        return [f"field 'storage.location': {exc}"]
    return []
