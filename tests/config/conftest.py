"""Shared by the source tests: a tenant's folders in a temp dir."""

from __future__ import annotations

import pytest

from pipelines.settings import TenantPaths


@pytest.fixture
def paths(tmp_path):
    return TenantPaths(tmp_path / "t").ensure()
