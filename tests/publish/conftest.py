"""Published snapshots of both demo tenants, built once per session (extract_load → validate → transform →
publish: the open datasets are SQL marts, no model needed), copied into each test's own home.

Only `serving.duckdb` is copied: a publisher that opened the warehouse would find none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.config import load_tenant
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT
from tests.fixtures.snapshots import MINISTRY  # noqa: F401 — the session snapshots are a plugin (tests/conftest.py)


def _install(snapshot: Path, tenant: str):
    cfg = load_tenant(tenant)
    paths = TenantPaths.for_tenant(tenant)
    paths.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(snapshot, paths.snapshot)
    return cfg


@pytest.fixture
def province(province_snapshot, _isolated_home):
    """The province's config, its published snapshot alone in this test's home."""
    return _install(province_snapshot, DEMO_TENANT)


@pytest.fixture
def ministry(ministry_snapshot, _isolated_home):
    return _install(ministry_snapshot, MINISTRY)


def publish(cfg, run_id: str = "t", only_if_changed: bool = False):
    from pipelines.publish import PublishContext
    from pipelines.publish.opendata import publish as publish_open_data

    return publish_open_data(PublishContext.for_tenant(cfg, run_id, only_if_changed=only_if_changed))


def with_plan(cfg, **dataset_updates):
    """`cfg` with some open datasets changed: with_plan(cfg, ho_so_theo_tuan={'drop_columns': [...]})."""
    plan = cfg.open_data
    datasets = [d.model_copy(update=dataset_updates.get(d.id, {})) for d in plan.datasets]
    return cfg.model_copy(update={"open_data": plan.model_copy(update={"datasets": datasets})})


def open_folder(cfg) -> Path:
    return TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).root / "open_data"
