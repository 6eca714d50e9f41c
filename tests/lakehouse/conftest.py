"""A real PostgreSQL catalogue (one database per test module, in the session's server) and tenants whose
`storage:` is lakehouse, their data folders under the test's TONGHOP_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from pipelines.config import TenantConfig, load_tenant
from pipelines.lakehouse.options import CATALOG_ENV_DEFAULT, StorageConfig
from pipelines.settings import PROJECT_ROOT

# A password the catalogue URL carries (the test server trusts loopback, so any password connects): it must
# never appear in a message, a log line or a run record.
PASSWORD = "Lh-s3cret-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def catalog_url(postgres_server) -> str:
    db = f"lakehouse_{uuid.uuid4().hex[:10]}"
    import psycopg

    with psycopg.connect(postgres_server.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{postgres_server.port}/{db}"


@pytest.fixture
def lakehouse_env(catalog_url, monkeypatch) -> str:
    monkeypatch.setenv(CATALOG_ENV_DEFAULT, catalog_url)
    return catalog_url


def lakehouse_tenant(tenant_id: str = "ninh-binh", **storage) -> TenantConfig:
    """A demo tenant file's config with `storage: {kind: lakehouse, …}`."""
    return load_tenant(tenant_id).model_copy(update={"storage": StorageConfig(kind="lakehouse", **storage)})


def synthetic_tenant(tenant_id: str) -> TenantConfig:
    base = load_tenant("ninh-binh").model_dump()
    base.update(tenant_id=tenant_id, display_name=f"Đơn vị {tenant_id}", open_data=None, catalogue=None,
                storage={"kind": "lakehouse"})
    return TenantConfig.model_validate(base)


def start_worker(tmp_path: Path, *jobs: dict) -> subprocess.Popen:
    """A writer process (tests/lakehouse/worker.py) running `jobs` in order, with this test's environment;
    a job's `tenant` is a TenantConfig."""
    spec = tmp_path / f"jobs-{uuid.uuid4().hex[:8]}.json"
    spec.write_text(json.dumps([{**j, "tenant": j["tenant"].model_dump(mode="json")} for j in jobs]),
                    encoding="utf-8")
    return subprocess.Popen([sys.executable, "-m", "tests.lakehouse.worker", str(spec)], cwd=PROJECT_ROOT,
                            env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[list[dict], str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1]), err
