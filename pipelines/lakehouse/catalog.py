"""The Iceberg catalogue (pyiceberg's SQL catalogue, its tables in PostgreSQL) and where a tenant's data goes.

The catalogue URL comes from the variable the tenant's `storage.catalog_url_env` names (an operator's
`TONGHOP_LAKEHOUSE_…` variable): read only here, registered with `pipelines.redact` before anything can
print it, and never part of a message — errors name the variable, not its value.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import ConfigError, TonghopError, first_line
from pipelines.redact import redact, register_secret

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog

    from pipelines.config import TenantConfig
    from pipelines.lakehouse.options import StorageConfig

log = logging.getLogger("tonghop.lakehouse")
CATALOG_NAME = "tonghop"  # one catalogue name for every tenant: namespaces separate them
MANIFEST_TABLE = "_publishes"  # <tenant namespace>._publishes: one row per table per publish (pipelines.lakehouse)


class LakehouseError(TonghopError):
    """The lakehouse cannot be written or read (catalogue unreachable, commit refused, table missing)."""

    exit_code = 1


def namespace(tenant_id: str) -> str:
    """A tenant's Iceberg namespace (and DuckDB catalogue name): `ninh-binh` → `ninh_binh`."""
    return re.sub(r"[^a-z0-9_]", "_", tenant_id.lower())


def catalog_url(env: str) -> str:
    value = os.environ.get(env, "").strip()
    if not value:
        raise ConfigError(f"environment variable {env} is not set: it holds the lakehouse catalogue's URL — set it "
                          "where the pipeline runs, e.g. postgresql://tonghop:<password>@db-host:5432/lakehouse "
                          "(docs/lakehouse.md)")
    register_secret(value)  # masked in every message and log line from now on, whole or its password alone
    if value.startswith(("postgresql://", "postgres://")):
        value = "postgresql+psycopg2://" + value.split("://", 1)[1]
    elif not value.startswith(("postgresql+", "sqlite:")):
        raise ConfigError(f"environment variable {env} does not hold a PostgreSQL URL (postgresql://user:…@host/db; "
                          "sqlite:///file for a single machine) — fix its value")
    return value


_CATALOGS: dict[str, SqlCatalog] = {}


def open_catalog(env: str) -> SqlCatalog:
    """pyiceberg's SQL catalogue on the database `env` points to (its two tables created on first use)."""
    from pyiceberg.catalog.sql import SqlCatalog

    url = catalog_url(env)
    key = f"{os.getpid()}:{url}"
    if key in _CATALOGS:
        return _CATALOGS[key]
    for attempt in range(3):  # two processes creating the catalogue's own tables at once: the loser retries
        try:
            catalog = SqlCatalog(CATALOG_NAME, uri=url, pool_pre_ping="true")
            break
        except Exception as exc:  # noqa: BLE001 — SQLAlchemy/driver errors become one line
            racing = "already exists" in str(exc) or "duplicate key" in str(exc)
            if not racing or attempt == 2:
                raise LakehouseError(f"the lakehouse catalogue ({env}) cannot be opened: {_one_line(exc)} — check "
                                     f"that the database {env} names is running and reachable and that its user "
                                     "may create tables in it") from None
    _CATALOGS[key] = catalog
    return catalog


def _one_line(exc: BaseException) -> str:
    """A driver's error in one redacted line, without SQLAlchemy's statement echo and background link."""
    text = first_line(exc, 400)
    text = re.sub(r"\s*\(Background on this error at:[^)]*\)", "", text)
    return redact(re.sub(r"\[SQL:.*", "", text).strip())


def location_uri(tenant: TenantConfig, storage: StorageConfig) -> str:
    """Where the tenant's data files go: a `file://` folder inside its data folder (checked again here, as
    the config check did), or the s3:// prefix as given, with the tenant's namespace appended."""
    from pipelines import locations
    from pipelines.settings import TenantPaths

    if locations.is_url(storage.location):
        from pipelines.lakehouse.options import check_s3_location, s3_prefix

        if refused := check_s3_location(storage.location):  # checked again here, as for a local folder
            raise ConfigError(f"tenant '{tenant.tenant_id}': field 'storage.location': {refused}")
        return "s3://" + s3_prefix(storage.location, tenant.tenant_id)
    root = TenantPaths.for_tenant(tenant.tenant_id, tenant.data_dir).root
    path = Path(storage.location)
    try:
        real = locations.confine(path if path.is_absolute() else root / path, root, "the lakehouse location")
    except locations.LocationRefused as exc:
        raise ConfigError(f"tenant '{tenant.tenant_id}': field 'storage.location': {exc}") from None
    real.mkdir(parents=True, exist_ok=True)
    return real.as_uri()
