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


def s3_prefix(location: str, tenant_id: str) -> str:
    """Where a tenant's data files go under an s3:// location: bucket/prefix/<its namespace>, no scheme (what
    `pipelines.lakehouse.catalog.location_uri` writes to, and what the overlap check compares)."""
    from pipelines.lakehouse.catalog import namespace

    return location.removeprefix("s3://").strip("/") + "/" + namespace(tenant_id)


def _s3_claim(tenant_id: str, data: dict) -> str | None:
    """The data-file prefix a tenant file's s3:// lakehouse location claims (None for any other location)."""
    storage = data.get("storage")
    location = storage.get("location") if isinstance(storage, dict) else None
    return s3_prefix(location, tenant_id) if isinstance(location, str) and _S3.match(location) else None


def check_storage(storage: StorageConfig, root: Path, tenant_id: str | None = None) -> list[str]:
    """A local location must resolve inside the tenant's data folder `root` (or an operator-listed root); an
    s3:// one inside the operator's allow-list and, with `tenant_id`, clear of every other tenant's data files.

    The allow-list is the installation's, so two tenants may share an allowed bucket: each writes under its own
    namespace folder there, and a location that would put one tenant's folder inside another's (`s3://kho/tinh/
    ninh_binh` for tenant `marts`: `…/ninh_binh/marts`, Ninh Bình's marts) or around it is refused by name."""
    if locations.is_url(storage.location):
        refused = check_s3_location(storage.location)
        if refused:
            return [f"field 'storage.location': {refused}"]
        if tenant_id is not None:
            mine = s3_prefix(storage.location, tenant_id)
            from pipelines.settings import other_tenant_claims

            for name, other in other_tenant_claims(tenant_id, _s3_claim):
                if mine == other or mine.startswith(other + "/") or other.startswith(mine + "/"):
                    return [f"field 'storage.location': its data files (s3://{mine}) would overlap those of tenant "
                            f"'{name}' (s3://{other}) — give each tenant a location whose folders do not nest"]
        return []
    path = Path(storage.location)
    try:
        locations.confine(path if path.is_absolute() else root / path, root, "the lakehouse location")
    except locations.LocationRefused as exc:
        return [f"field 'storage.location': {exc}"]
    return []
