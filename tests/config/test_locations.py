"""Locations are confined: file sources stay inside the tenant's data folder (or operator-listed roots) after
symlinks, globs cannot escape, data_dir stays inside the data root, variables come from an allow-list, and
inline credentials are refused — each with one line naming the file, source and field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.config import SourceConfig, load_tenant_file
from pipelines.errors import ConfigError, SourceError
from pipelines.load import load_sources
from pipelines.settings import TenantPaths
from pipelines.sources.base import resolve_file, resolve_files, resolve_url
from pipelines.warehouse import connect
from tests.conftest import project_path
from tests.fixtures.tenants import tenant_of

SECRET = "Hunter2-s3cret-value"


def _demo() -> dict:
    return yaml.safe_load(project_path("tenants", "ninh-binh.yaml").read_text(encoding="utf-8"))


def _error(tmp_path: Path, mutate) -> str:
    data = _demo()
    mutate(data)
    path = tmp_path / "ninh-binh.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_tenant_file(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


def _set_location(index: int, location: str):
    return lambda d: d["sources"][index].update(location=location)


@pytest.mark.parametrize(("location", "expected"), [
    ("/etc/passwd", "resolves to /etc/passwd, outside the tenant's data folder"),
    ("../other-tenant/sources/mot_cua.sqlite", "'..' is not allowed in a file location"),
    ("sources/../../etc/passwd", "'..' is not allowed"),
    ("~/.ssh/id_rsa", "'~' (a home folder) is not allowed"),
    ("$HOME/../etc/passwd", "'..' is not allowed"),
    ("${HOME}/x.csv", "variable HOME is not allowed in a location"),
    ("sources/${TONGHOP_PII_KEY}.csv", "variable TONGHOP_PII_KEY looks like a secret"),
])
def test_file_locations_outside_the_data_folder_are_refused_at_config(tmp_path, location, expected):
    message = _error(tmp_path, _set_location(2, location))  # can_bo (csv)
    assert "field 'sources[can_bo].location'" in message and expected in message


@pytest.mark.parametrize(("location", "expected"), [
    ("http://127.0.0.1:${TONGHOP_DEMO_PORT}/x?tag=${TONGHOP_PII_KEY}", "TONGHOP_PII_KEY looks like a secret"),
    ("https://lgsp.example/api?k=${NB_LGSP_TOKEN}", "NB_LGSP_TOKEN looks like a secret"),
    ("https://${OTHER_TENANT_HOST}/api", "variable OTHER_TENANT_HOST is not allowed in a location — name it NINH_BINH_"),
])
def test_url_variables_come_from_the_allow_list(tmp_path, location, expected):
    message = _error(tmp_path, _set_location(4, location))  # phan_anh_kien_nghi (api)
    assert "field 'sources[phan_anh_kien_nghi].location'" in message and expected in message


def test_tenant_and_operator_variables_are_allowed(tmp_path, monkeypatch):
    data = _demo()
    data["sources"][4]["location"] = "https://${NINH_BINH_LGSP_HOST}/api"
    data["sources"][5]["location"] = "https://${PROVINCE_PORTAL}/ckan"
    path = tmp_path / "ninh-binh.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="variable PROVINCE_PORTAL is not allowed"):
        load_tenant_file(path)
    monkeypatch.setenv("TONGHOP_LOCATION_VARS", "PROVINCE_PORTAL,TONGHOP_PII_KEY")
    assert load_tenant_file(path).source("diem_phuc_vu_cong").location == "https://${PROVINCE_PORTAL}/ckan"
    # …but a secret-looking name stays refused even when the operator lists it
    data["sources"][5]["location"] = "https://x/ckan?tag=${TONGHOP_PII_KEY}"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="TONGHOP_PII_KEY looks like a secret"):
        load_tenant_file(path)


@pytest.mark.parametrize(("mutate", "expected"), [
    (_set_location(0, f"postgresql://nb:{SECRET}@db.example/motcua"), "'location' holds a password in a URL"),
    (_set_location(4, f"https://lgsp.example/api?token={SECRET}"), "token/api_key query parameter"),
    (_set_location(4, f"https://lgsp.example/api?x=1&api_key={SECRET}"), "token/api_key query parameter"),
    (_set_location(0, f"host=db user=nb password='{SECRET} x' dbname=m"), "a password field"),
    (lambda d: d["sources"][4]["options"].update(headers={"Authorization": f"Bearer {SECRET}"}),
     "option 'headers.Authorization' holds a credential"),
    (lambda d: d["sources"][4]["options"].update(params={"api_key": SECRET}), "option 'params.api_key' holds"),
    (lambda d: d["sources"][0]["options"].update(dsn=f"mysql://u:{SECRET}@h/db"), "option 'dsn' holds a password"),
])
def test_inline_credentials_are_refused_without_echoing_them(tmp_path, mutate, expected):
    message = _error(tmp_path, mutate)
    assert expected in message and "connection: {env: VAR}" in message
    assert SECRET not in message


def test_schema_errors_never_echo_the_config_object(tmp_path):
    # A whole mapping where a string is expected, holding an inline password: its type only, not its content.
    message = _error(tmp_path, lambda d: d.update(display_name={"dsn": f"postgresql://u:{SECRET}@h/d"}))
    assert "field 'display_name'" in message and "got a mapping with 1 key(s)" in message
    assert SECRET not in message and "postgresql" not in message
    message = _error(tmp_path, lambda d: d["sources"][0].update(options=f"password={SECRET}"))
    assert SECRET not in message and "looks like a secret" in message


def test_data_dir_must_be_inside_the_data_root(tmp_path, _isolated_home):
    for data_dir, expected in [("/tmp", "not a folder inside the data root"),
                               ("../elsewhere", "uses '~', a variable or '..'"),
                               ("$HOME/x", "uses '~', a variable or '..'")]:
        message = _error(tmp_path, lambda d, v=data_dir: d.update(data_dir=v))
        assert "field 'data_dir'" in message and expected in message
    data = _demo()
    data["data_dir"] = "ninh-binh-2"
    (tmp_path / "ninh-binh.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    cfg = load_tenant_file(tmp_path / "ninh-binh.yaml")
    assert TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).root == _isolated_home.resolve() / "ninh-binh-2"
    with pytest.raises(ConfigError, match="field 'data_dir'"):
        TenantPaths.for_tenant("ninh-binh", "/etc")


def test_data_dir_is_never_another_tenants_or_the_installations_folder(tmp_path, _isolated_home):
    """A tenant file aliasing another tenant's folder would give its users that tenant's snapshot (SQL console)
    and let `tonghop restore --tenant` replace it; `access` holds every account's password hash."""
    for data_dir, whose in [("bo-khoa-hoc-cong-nghe", "tenant 'bo-khoa-hoc-cong-nghe'"),
                            ("bo-khoa-hoc-cong-nghe/sub", "tenant 'bo-khoa-hoc-cong-nghe'"),
                            ("access", "the installation"), ("airflow/x", "the installation")]:
        message = _error(tmp_path, lambda d, v=data_dir: d.update(data_dir=v))
        assert "field 'data_dir'" in message and f"overlaps the folder of {whose}" in message, message
    with pytest.raises(ConfigError, match="overlaps the folder of tenant 'ninh-binh'"):
        TenantPaths.for_tenant("bo-khoa-hoc-cong-nghe", "ninh-binh")


# --- at read time: after symlinks, every glob match --------------------------------------------------------

@pytest.fixture
def outside(tmp_path) -> Path:
    folder = tmp_path / "other-tenant"
    folder.mkdir()
    (folder / "secret.csv").write_text("ma\n1\n", encoding="utf-8")
    return folder


def _csv(location: str) -> SourceConfig:
    return SourceConfig(name="s", kind="csv", location=location, primary_key=["ma"])


def test_symlink_out_of_the_data_folder_is_refused(paths, outside):
    (paths.sources / "link.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(SourceError) as err:
        resolve_file(_csv("sources/link.csv"), paths)
    assert "outside the tenant's data folder" in str(err.value) and "TONGHOP_ALLOWED_ROOTS" in str(err.value)
    assert "field 'sources[s].location'" in str(err.value)
    (paths.sources / "dir").symlink_to(outside, target_is_directory=True)
    with pytest.raises(SourceError, match="outside the tenant's data folder"):
        resolve_file(_csv("sources/dir/secret.csv"), paths)
    # and nothing is loaded: the warehouse gets no raw table
    with connect(paths.warehouse) as con, pytest.raises(SourceError):
        load_sources(con, tenant_of(_csv("sources/link.csv")), paths, "r1")


def test_glob_matches_are_each_checked(paths, outside):
    (paths.sources / "a.csv").write_text("ma\n1\n", encoding="utf-8")
    assert resolve_files(_csv("sources/*.csv"), paths) == [paths.sources / "a.csv"]
    (paths.sources / "b.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(SourceError, match=r"'b.csv' \(matched by the pattern\) resolves to .*outside"):
        resolve_files(_csv("sources/*.csv"), paths)
    with pytest.raises(ValueError, match="'..' is not allowed"):  # refused by the config check…
        _csv("sources/../../*/secret.csv")
    unchecked = SourceConfig.model_construct(name="s", kind="csv", location="sources/../../*/secret.csv")
    with pytest.raises(SourceError, match="'..' is not allowed"):  # …and by the reader
        resolve_files(unchecked, paths)
    with pytest.raises(SourceError, match="outside the tenant's data folder"):
        resolve_files(_csv(f"{outside}/*.csv"), paths)


def test_operator_listed_roots_are_allowed(paths, outside, monkeypatch):
    with pytest.raises(SourceError):
        resolve_file(_csv(str(outside / "secret.csv")), paths)
    monkeypatch.setenv("TONGHOP_ALLOWED_ROOTS", f"/nonexistent{':'}{outside}")
    assert resolve_file(_csv(str(outside / "secret.csv")), paths) == outside / "secret.csv"


def test_url_expansion_refuses_secret_variables_at_read_time(monkeypatch):
    monkeypatch.setenv("TONGHOP_DEMO_PORT", "8765")
    ok = SourceConfig.model_construct(name="x", kind="api", location="http://127.0.0.1:${TONGHOP_DEMO_PORT}/a")
    assert resolve_url(ok) == "http://127.0.0.1:8765/a"
    # model_construct skips the config checks: the reader's own check still refuses
    bad = SourceConfig.model_construct(name="x", kind="api", location="http://h/a?tag=${TONGHOP_PII_KEY}")
    with pytest.raises(SourceError) as err:
        resolve_url(bad)
    assert "looks like a secret" in str(err.value) and "test-key-" not in str(err.value)
