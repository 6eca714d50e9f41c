"""Tenant configuration: the shipped tenants validate, and every kind of bad file gets a one-line message
naming the file, the field and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.cli import main
from pipelines.config import load_all, load_tenant_file
from pipelines.errors import ConfigError
from tests.conftest import project_path


def _write(tmp_path: Path, data: dict, name: str | None = None) -> Path:
    path = tmp_path / f"{name or data.get('tenant_id', 'x')}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _demo() -> dict:
    return yaml.safe_load(project_path("tenants", "ninh-binh.yaml").read_text(encoding="utf-8"))


def test_shipped_tenants_validate():
    tenants = load_all(project_path("tenants"))
    assert [t.tenant_id for t in tenants] == sorted(t.tenant_id for t in tenants)
    demo = next(t for t in tenants if t.tenant_id == "ninh-binh")
    assert demo.kind == "province" and demo.admin_code == "37"
    assert demo.source("ho_so").personal_columns == ["so_cccd", "so_dien_thoai", "ho_ten"]
    assert demo.pool == "warehouse_ninh_binh"


@pytest.mark.parametrize(("mutate", "expected"), [
    # An unknown key is usually a typo: say which one and where.
    (lambda d: d["sources"][0].update(primay_key=["x"]), "field 'sources[ho_so].primay_key': unknown key"),
    # A wrong type names the field and the input.
    (lambda d: d.update(kind="city"), "field 'kind': got 'city', expected 'province' or 'ministry'"),
    (lambda d: d["sources"][0].update(primary_key="ma_ho_so"), "field 'sources[ho_so].primary_key'"),
    # An unknown source kind lists the kinds that exist.
    (lambda d: d["sources"][1].update(kind="oracle"),
     "field 'sources[chi_so_xa_hoi_so].kind': Value error, unknown source kind 'oracle'; expected one of"),
    (lambda d: d.pop("display_name"), "field 'display_name': required but missing"),
    # Secrets are referenced by name only: an inline password is not a field.
    (lambda d: d["sources"][0].update(connection={"password": "hunter2"}),
     "field 'sources[ho_so].connection.password': unknown key"),
    (lambda d: d["sources"][0].update(connection={"env": "lower_case"}), "field 'sources[ho_so].connection.env'"),
])
def test_bad_config_gets_one_line_naming_file_and_field(tmp_path, mutate, expected):
    data = _demo()
    mutate(data)
    path = _write(tmp_path, data, "ninh-binh")
    with pytest.raises(ConfigError) as err:
        load_tenant_file(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="tenant file not found"):
        load_tenant_file(tmp_path / "nowhere.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("tenant_id: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.yaml line \d+: not valid YAML"):
        load_tenant_file(broken)


def test_file_name_must_match_tenant_id(tmp_path):
    path = _write(tmp_path, _demo(), "another-name")
    with pytest.raises(ConfigError, match="name the file 'ninh-binh.yaml'"):
        load_tenant_file(path)


def test_validate_config_command(tmp_path, capsys):
    assert main(["validate-config"]) == 0
    assert "ok    " in capsys.readouterr().out
    data = _demo()
    data["sources"][0]["kind"] = "oracle"
    bad = _write(tmp_path, data, "ninh-binh")
    assert main(["validate-config", str(bad)]) == 2  # like every config error of the CLI
    captured = capsys.readouterr()
    assert "unknown source kind 'oracle'" in captured.err and "0 valid, 1 invalid" in captured.out
