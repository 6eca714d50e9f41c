"""`storage:` in a tenant file: lakehouse locations stay inside the tenant's data folder, the catalogue URL
comes only from an operator's TONGHOP_LAKEHOUSE_… variable, and no inline credential is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import load_tenant_file
from pipelines.errors import ConfigError
from pipelines.settings import tenants_dir


def _tenant_file(tmp_path: Path, storage: str) -> Path:
    text = (tenants_dir() / "ninh-binh.yaml").read_text(encoding="utf-8")
    folder = tmp_path / "tenants"
    folder.mkdir(exist_ok=True)
    path = folder / "ninh-binh.yaml"
    path.write_text(text + "\nstorage:\n" + "".join(f"  {line}\n" for line in storage.splitlines()),
                    encoding="utf-8")
    return path


def test_default_is_duckdb_and_lakehouse_is_selected_in_config(tmp_path, monkeypatch):
    monkeypatch.setenv("TONGHOP_LAKEHOUSE_BUCKETS", "kho-du-lieu/tinh")  # the operator's allow-list
    assert not load_tenant_file(tenants_dir() / "ninh-binh.yaml").storage.is_lakehouse
    cfg = load_tenant_file(_tenant_file(tmp_path, "kind: lakehouse\nlocation: lake/iceberg"))
    assert cfg.storage.is_lakehouse and cfg.storage.format == "iceberg"
    assert cfg.storage.catalog_url_env == "TONGHOP_LAKEHOUSE_CATALOG"
    cfg = load_tenant_file(_tenant_file(tmp_path, "kind: lakehouse\nlocation: s3://kho-du-lieu/tinh"))
    assert cfg.storage.location == "s3://kho-du-lieu/tinh"


@pytest.mark.parametrize(("storage", "says"), [
    ("kind: lakehouse\nlocation: /etc/tonghop", "outside the tenant's data folder"),
    ("kind: lakehouse\nlocation: ../bo-khoa-hoc-cong-nghe/lakehouse", "'..' is not allowed"),
    ("kind: lakehouse\nlocation: ~/lake", "'~'"),
    ("kind: lakehouse\nlocation: ${HOME}/lake", "variables are not allowed"),
    ("kind: lakehouse\nlocation: s3://AKIA:hunter22@bucket/x", "password in a URL"),
    ("kind: lakehouse\nlocation: http://example.org/lake", "not a supported lakehouse location"),
    ("kind: lakehouse\ncatalog_url_env: TONGHOP_PII_KEY", "not allowed for the catalogue URL"),
    ("kind: lakehouse\ncatalog_url_env: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "not allowed for the catalogue URL"),
    ("kind: delta", "field 'storage.kind'"),
])
def test_refused_storage_names_the_field_and_the_fix(tmp_path, storage, says):
    with pytest.raises(ConfigError) as err:
        load_tenant_file(_tenant_file(tmp_path, storage))
    message = str(err.value)
    assert says in message
    assert "storage" in message and "ninh-binh.yaml" in message
    assert "hunter22" not in message


def test_symlink_out_of_the_tenant_folder_is_refused(tmp_path, _isolated_home):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (_isolated_home / "ninh-binh").mkdir(parents=True)
    (_isolated_home / "ninh-binh" / "lake").symlink_to(outside)
    with pytest.raises(ConfigError, match="outside the tenant's data folder"):
        load_tenant_file(_tenant_file(tmp_path, "kind: lakehouse\nlocation: lake"))
