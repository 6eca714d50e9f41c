"""Config is untrusted input: what a tenant file (or a `--tenant` argument) names must not reach another
tenant's files, the operator's buckets or the SQL the lakehouse and backups run. Each test fails on the code
before these checks (review items of the 2026-12-01 session). Seconds: no pipeline run, tiny DuckDB files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.config import RESERVED_TENANT_IDS, load_tenant, load_tenant_file
from pipelines.errors import ConfigError
from pipelines.settings import tenants_dir

SHIPPED = tenants_dir() / "ninh-binh.yaml"


def _tenant(folder: Path, tenant_id: str, extra: str = "") -> Path:
    """A copy of the shipped province's file under another id (and extra top-level settings)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = re.sub(r"(?m)^tenant_id:.*$", f"tenant_id: {tenant_id}", SHIPPED.read_text(encoding="utf-8"))
    path = folder / f"{tenant_id}.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


# --- the lakehouse's s3:// location: the operator's allow-list -------------------------------------------

LAKE = "\nstorage:\n  kind: lakehouse\n  location: {}\n"


@pytest.mark.parametrize(("allowed", "location", "ok"), [
    (None, "s3://kho-du-lieu/tinh", False),                           # no allow-list: no bucket at all
    ("kho-du-lieu/tinh", "s3://kho-du-lieu/tinh", True),
    ("kho-du-lieu/tinh", "s3://kho-du-lieu/tinh/ninh-binh", True),
    ("kho-du-lieu/tinh", "s3://kho-du-lieu/tinhkhac", False),         # a prefix of the name is not inside
    ("kho-du-lieu/tinh", "s3://bucket-cua-ai-do/x", False),           # anyone's bucket
    ("s3://kho-a/, kho-du-lieu", "s3://kho-du-lieu/bo", True),        # list, s3:// and slashes tolerated
])
def test_s3_location_must_be_in_the_operators_allow_list(tmp_path, monkeypatch, allowed, location, ok):
    if allowed is None:
        monkeypatch.delenv("TONGHOP_LAKEHOUSE_BUCKETS", raising=False)
    else:
        monkeypatch.setenv("TONGHOP_LAKEHOUSE_BUCKETS", allowed)
    path = _tenant(tmp_path / "tenants", "ninh-binh", LAKE.format(location))
    if ok:
        assert load_tenant_file(path).storage.location == location
        return
    with pytest.raises(ConfigError) as err:
        load_tenant_file(path)
    message = str(err.value)
    assert "field 'storage.location'" in message and "TONGHOP_LAKEHOUSE_BUCKETS" in message, message
    assert "ninh-binh.yaml" in message and "\n" not in message


def test_s3_location_checked_again_when_the_lakehouse_opens_it(tmp_path, monkeypatch):
    """A config checked under one installation setting, used under another: the writer refuses too."""
    from pipelines.lakehouse.catalog import location_uri

    monkeypatch.setenv("TONGHOP_LAKEHOUSE_BUCKETS", "kho-du-lieu")
    cfg = load_tenant_file(_tenant(tmp_path / "tenants", "ninh-binh", LAKE.format("s3://kho-du-lieu/tinh")))
    assert location_uri(cfg, cfg.storage) == "s3://kho-du-lieu/tinh/ninh_binh"
    monkeypatch.setenv("TONGHOP_LAKEHOUSE_BUCKETS", "kho-khac")
    with pytest.raises(ConfigError, match="not in the installation's allowed buckets"):
        location_uri(cfg, cfg.storage)


def test_tenants_sharing_an_allowed_bucket_cannot_nest_their_data_files(tmp_path, monkeypatch):
    """The allow-list is the installation's: every tenant may use `kho-du-lieu`, each under its own namespace
    folder. A location putting one tenant's folder inside (or around) another's is refused, naming it."""
    monkeypatch.setenv("TONGHOP_LAKEHOUSE_BUCKETS", "kho-du-lieu")
    folder = tmp_path / "tenants"
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(folder))
    _tenant(folder, "ninh-binh", LAKE.format("s3://kho-du-lieu/tinh"))  # files in kho-du-lieu/tinh/ninh_binh
    # Same allowed prefix, its own folder (kho-du-lieu/tinh/bo_y_te): fine.
    assert load_tenant_file(_tenant(folder, "bo-y-te", LAKE.format("s3://kho-du-lieu/tinh"))).storage.is_lakehouse
    (folder / "bo-y-te.yaml").unlink()
    for tenant_id, location in (("marts", "s3://kho-du-lieu/tinh/ninh_binh"),  # → …/ninh_binh/marts: inside
                                ("tinh", "s3://kho-du-lieu")):                  # → kho-du-lieu/tinh: around it
        with pytest.raises(ConfigError) as err:
            load_tenant_file(_tenant(folder, tenant_id, LAKE.format(location)))
        message = str(err.value)
        assert "field 'storage.location'" in message and "overlap those of tenant 'ninh-binh'" in message, message
        (folder / f"{tenant_id}.yaml").unlink()


# --- tenant ids the cross-tenant query uses for itself ----------------------------------------------------

@pytest.mark.parametrize("tenant_id", sorted(RESERVED_TENANT_IDS))
def test_reserved_tenant_ids_are_refused(tmp_path, tenant_id):
    with pytest.raises(ConfigError) as err:
        load_tenant_file(_tenant(tmp_path / "tenants", tenant_id))
    message = str(err.value)
    assert "field 'tenant_id'" in message and "is reserved" in message and "choose another" in message, message


def test_a_reserved_name_would_break_the_cross_tenant_query():
    """Why: the query attaches every tenant as a DuckDB catalogue next to its own; these names are taken."""
    import duckdb

    from pipelines.lakehouse.catalog import namespace
    from pipelines.lakehouse.reader import ALL
    from pipelines.sqltext import quote_ident

    con = duckdb.connect()
    con.execute(f"ATTACH ':memory:' AS {ALL}")
    for tenant_id in RESERVED_TENANT_IDS:
        with pytest.raises(duckdb.Error):
            con.execute(f"ATTACH ':memory:' AS {quote_ident(namespace(tenant_id))}")


# --- `--tenant` is an id, not a path ----------------------------------------------------------------------

@pytest.mark.parametrize("given", ["../x", "../../etc/passwd", "/tmp/x", "Ninh-Binh", "x/../ninh-binh", ""])
def test_tenant_argument_is_an_id_not_a_path(tmp_path, monkeypatch, capsys, given):
    tenants = tmp_path / "tenants"
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    shutil.copy(SHIPPED, tenants.mkdir() or tenants / "ninh-binh.yaml")
    _tenant(tmp_path, "x")  # a valid tenant file OUTSIDE tenants/: `--tenant ../x` reached it
    with pytest.raises(ConfigError, match="is not a tenant id"):
        load_tenant(given)
    assert main(["inspect", "--tenant", given]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("tonghop: error:") and "is not a tenant id" in err and "\n" not in err, err
    assert load_tenant("ninh-binh").tenant_id == "ninh-binh"  # an id still works


# --- two tenants' data_dir ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("mine", "theirs"), [
    ("chung", "chung"),               # the same folder
    ("chung/ninh-binh", "chung"),     # inside the other's
    ("chung", "chung/bo"),            # holding the other's
])
def test_two_tenants_cannot_share_a_custom_data_dir(tmp_path, monkeypatch, mine, theirs):
    tenants = tmp_path / "tenants"
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    _tenant(tenants, "bo-khoa-hoc", f"data_dir: {theirs}\n")
    with pytest.raises(ConfigError) as err:
        load_tenant_file(_tenant(tenants, "ninh-binh", f"data_dir: {mine}\n"))
    message = str(err.value)
    assert "field 'data_dir'" in message and "overlaps the data_dir of tenant 'bo-khoa-hoc'" in message, message


def test_separate_custom_data_dirs_are_fine(tmp_path, monkeypatch):
    tenants = tmp_path / "tenants"
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    _tenant(tenants, "bo-khoa-hoc", "data_dir: kho/bo\n")
    assert load_tenant_file(_tenant(tenants, "ninh-binh", "data_dir: kho/tinh\n")).data_dir == "kho/tinh"


@pytest.mark.parametrize("theirs", ['"/"', '"kho/tinh/x\\n2026-12-02 INFO fake: all checks passed"', '"kho\\0x"'])
def test_another_files_invalid_data_dir_claims_no_folder(tmp_path, monkeypatch, theirs):
    """Another file's data_dir outside the data root, or with a control character, is that file's own error:
    it neither refuses this tenant nor puts its text into this tenant's messages."""
    tenants = tmp_path / "tenants"
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    _tenant(tenants, "evil", f"data_dir: {theirs}\n")
    assert load_tenant_file(_tenant(tenants, "ninh-binh", "data_dir: kho/tinh\n")).data_dir == "kho/tinh"
    with pytest.raises(ConfigError, match="data_dir"):
        load_tenant_file(tenants / "evil.yaml")


def test_a_data_dir_with_a_control_character_is_refused(tmp_path, monkeypatch):
    tenants = tmp_path / "tenants"
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    with pytest.raises(ConfigError, match="control character") as err:
        load_tenant_file(_tenant(tenants, "ninh-binh", 'data_dir: "kho\\nINFO all fine"\n'))
    assert "\n" not in str(err.value)


# --- table names from the warehouse in lakehouse and backup SQL -------------------------------------------

ODD = 'bang "la"; DROP TABLE marts.x; --'


@pytest.fixture
def odd_warehouse(tmp_path):
    import duckdb

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts")
        con.execute('CREATE TABLE marts.x AS SELECT 1 AS a')
        con.execute(f'CREATE TABLE marts."{ODD.replace(chr(34), chr(34) * 2)}" AS SELECT 1 AS "co""t", 2 AS b')
    return path


def test_backup_counts_a_table_whatever_its_name(odd_warehouse):
    from pipelines.backup import _tables

    assert _tables(odd_warehouse) == {"marts.x": 1, f"marts.{ODD}": 1}


def test_lakehouse_sql_quotes_table_and_column_names(odd_warehouse):
    import duckdb

    from pipelines.lakehouse.writer import fingerprint, select_sql

    with duckdb.connect(str(odd_warehouse)) as con:
        assert con.sql(select_sql(con, "marts", ODD)).fetchall() == [(1, 2)]
        assert fingerprint(con, "marts", ODD)[1] == 1
        assert con.execute("SELECT count(*) FROM marts.x").fetchone()[0] == 1  # nothing was dropped


@pytest.mark.parametrize("name", ["..", ".", "a/../b", "../../etc", ODD])
def test_lakehouse_data_folder_of_a_table_is_one_segment_inside_its_schema(name):
    """A table's data files go under <root>/<schema>/<one segment>, never the schema folder itself or above."""
    from posixpath import normpath

    from pipelines.lakehouse.writer import _segment

    root = "/kho/tinh"
    where = f"{root}/{_segment('marts')}/{_segment(name)}"
    assert "/" not in _segment(name) and normpath(where).startswith(f"{root}/marts/") and normpath(where) == where
