"""`tonghop backup` / `tonghop restore`: a tenant's warehouse (incl. quarantine and meta), snapshot and run
records come back exactly as they were; a corrupt backup is refused and changes nothing; a running writer
keeps a backup out. One small generated province, built once for the module (two real pipeline runs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.demo.provinces import write_province
from pipelines.settings import TenantPaths
from tests.conftest import file_digest, warehouse_state

PROVINCE = 20  # Lạng Sơn: 65 communes, one ward divided in 2025 (so the planted faults are quarantined)
STEPS = ["extract_load", "validate", "transform", "publish"]


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """A tenant run once, backed up, then run again on new source rows: (tenant, home, tenants, backup, before)."""
    from pipelines.runner import run

    root = tmp_path_factory.mktemp("backup")
    home, tenants, folder = root / "home", root / "tenants", root / "backup"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGHOP_HOME", str(home))
        mp.setenv("TONGHOP_TENANTS_DIR", str(tenants))
        mp.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
        tenant = write_province(PROVINCE, tenants, rows=600, sources=["ho_so", "can_bo"])
        assert run(tenant, steps=STEPS, run_id="first").ok
        paths = TenantPaths.for_tenant(tenant)
        before = {"warehouse": warehouse_state(paths.warehouse), "snapshot": file_digest(paths.snapshot),
                  "runs": paths.run_log.read_text(encoding="utf-8")}
        assert main(["backup", "--tenant", tenant, "--to", str(folder)]) == 0
        # More data arrives and a second run loads it and publishes: the warehouse, snapshot and run log move
        # on (validate and transform left out: they cost most of a run and add nothing to what is checked).
        write_province(PROVINCE, tenants, rows=900, sources=["ho_so", "can_bo"], seed=7)
        assert run(tenant, steps=["extract_load", "publish"], run_id="second").ok
    return tenant, home, tenants, folder, before


@pytest.fixture
def tenant_env(backed_up, monkeypatch, tmp_path):
    """This test's own copy of the tenant's home (after the second run), so tests do not see each other."""
    tenant, home, tenants, folder, before = backed_up
    mine = tmp_path / "home"
    shutil.copytree(home, mine)
    monkeypatch.setenv("TONGHOP_HOME", str(mine))
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    return tenant, TenantPaths.for_tenant(tenant), folder, before


def test_restore_brings_back_the_backed_up_tenant(tenant_env, capsys):
    tenant, paths, folder, before = tenant_env
    after_second_run = warehouse_state(paths.warehouse)
    assert after_second_run != before["warehouse"]  # the second run changed it: the restore has work to do
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["last_run"] == "first" and manifest["tables"]["meta.quarantine"] > 0

    assert main(["restore", "--tenant", tenant, "--from", str(folder)]) == 0
    out = capsys.readouterr().out
    # Table by table (rows and content hash), raw/staging/marts, the quarantine and meta: as at the backup.
    assert warehouse_state(paths.warehouse) == before["warehouse"]
    assert file_digest(paths.snapshot) == before["snapshot"]
    assert paths.run_log.read_text(encoding="utf-8") == before["runs"]
    kept = Path(out.split("kept in ")[1].split(" (delete")[0])
    assert warehouse_state(kept / "warehouse.duckdb") == after_second_run  # what it replaced, set aside


def test_a_corrupt_backup_is_refused_and_changes_nothing(tenant_env, tmp_path, capsys):
    tenant, paths, folder, _ = tenant_env
    state = warehouse_state(paths.warehouse)
    bad = tmp_path / "bad_backup"
    shutil.copytree(folder, bad)
    with (bad / "data" / "serving.duckdb").open("r+b") as fh:  # one byte flipped in the snapshot's copy
        fh.seek(5000)
        byte = fh.read(1)
        fh.seek(5000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert main(["restore", "--tenant", tenant, "--from", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "serving.duckdb does not match its checksum" in err and "nothing was restored" in err
    assert warehouse_state(paths.warehouse) == state

    (bad / "manifest.json").unlink()  # a backup cut short before its manifest
    assert main(["restore", "--tenant", tenant, "--from", str(bad)]) == 1
    assert "has no manifest.json" in capsys.readouterr().err
    assert warehouse_state(paths.warehouse) == state


def test_a_backup_whose_file_is_a_link_is_refused(tenant_env, tmp_path, capsys):
    """A listed file replaced by a symlink (to another tenant's or the system's file, same content or not) is
    refused: restore copies only what the manifest lists and verify checked, never following a link."""
    tenant, paths, folder, _ = tenant_env
    state = warehouse_state(paths.warehouse)
    bad = tmp_path / "linked_backup"
    shutil.copytree(folder, bad)
    outside = tmp_path / "elsewhere.duckdb"
    shutil.copy2(bad / "data" / "serving.duckdb", outside)  # same bytes: only the link gives it away
    (bad / "data" / "serving.duckdb").unlink()
    (bad / "data" / "serving.duckdb").symlink_to(outside)
    assert main(["restore", "--tenant", tenant, "--from", str(bad)]) == 1
    assert "serving.duckdb is a link leaving the backup" in capsys.readouterr().err
    assert warehouse_state(paths.warehouse) == state


def test_backup_waits_for_the_writer_lock(tenant_env, tmp_path, capsys):
    from pipelines.runcontrol import WriterLock

    tenant, paths, _, _ = tenant_env
    lock = WriterLock(paths, tenant, "a_running_step").acquire()
    try:
        assert main(["backup", "--tenant", tenant, "--to", str(tmp_path / "b")]) == 2
    finally:
        lock.release()
    assert "run a_running_step of tenant" in capsys.readouterr().err
    assert not (tmp_path / "b" / "manifest.json").exists()
