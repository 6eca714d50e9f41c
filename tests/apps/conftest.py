"""Both demo tenants' published snapshots (session fixtures of tests/fixtures/snapshots.py, built once),
installed with their run records into each test's home."""

from __future__ import annotations

import shutil

import pytest

from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT
from tests.fixtures.snapshots import MINISTRY


def _install(snapshot, tenant: str, monkeypatch) -> TenantPaths:
    paths = TenantPaths.for_tenant(tenant)
    paths.root.mkdir(parents=True, exist_ok=True)
    shutil.copy(snapshot, paths.snapshot)
    shutil.copy(snapshot.parent / "runs.jsonl", paths.run_log)
    monkeypatch.setenv("TONGHOP_TENANT", tenant)
    return paths


@pytest.fixture
def province_app(province_snapshot, _isolated_home, monkeypatch):
    return _install(province_snapshot, DEMO_TENANT, monkeypatch)


@pytest.fixture
def ministry_app(ministry_snapshot, _isolated_home, monkeypatch):
    return _install(ministry_snapshot, MINISTRY, monkeypatch)
