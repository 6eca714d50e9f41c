"""Lakehouse mode against a real PostgreSQL catalogue (Iceberg SQL catalogue) and a local warehouse path:
the publish step's commit, concurrent writer processes (different tenants; different tables of one tenant),
readers pinned to one publish while writes go on, time travel, one SQL across tenants, secrets kept out."""

from __future__ import annotations

import logging
import shutil
import time
from datetime import UTC, datetime

import duckdb
import pytest

from pipelines.errors import ConfigError
from pipelines.lakehouse import LakehouseError, open_catalog, open_tenant, pin, publish_tenant, query
from pipelines.lakehouse.catalog import CATALOG_NAME
from pipelines.settings import TenantPaths
from tests.lakehouse.conftest import PASSWORD, finish, lakehouse_tenant, start_worker, synthetic_tenant


def _copy_tenant(snapshot, tenant_id: str):
    """The published tenant's folder (warehouse + serving snapshot) copied into this test's home."""
    paths = TenantPaths.for_tenant(tenant_id)
    shutil.copytree(snapshot.parent, paths.root, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("*.lock", "lakehouse"))
    return paths


def _serving_counts(path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = "
                             "'BASE TABLE' AND table_schema IN ('staging', 'marts', 'meta')").fetchall()
        return {f"{s}.{t}": con.execute(f'SELECT count(*) FROM {s}."{t}"').fetchone()[0] for s, t in tables
                if (s, t) != ("meta", "file_fingerprints")}
    finally:
        con.close()


def test_publish_step_commits_every_serving_table(province_snapshot, lakehouse_env, caplog):
    from pipelines.steps import RunContext, run_step

    cfg = lakehouse_tenant("ninh-binh")
    paths = _copy_tenant(province_snapshot, cfg.tenant_id)
    # The snapshot copied is of this very build: the step does not refresh it, and the lakehouse, which does
    # not hold it yet, catches up all the same (as after a lakehouse commit that failed).
    caplog.set_level(logging.INFO)
    result = run_step(RunContext(cfg, "lh-run-1"), "publish")  # the pipeline's own publish step

    expected = _serving_counts(paths.snapshot)
    lake = result.metrics["lakehouse"]
    assert lake["n_tables"] == len(expected) >= 20 and lake["n_tables_written"] == len(expected)
    con, pinned = open_tenant(cfg)
    assert pinned.run_id == "lh-run-1"
    assert {t: con.execute(f'SELECT count(*) FROM {t.split(".")[0]}."{t.split(".")[1]}"').fetchone()[0]
            for t in pinned.tables} == expected
    # the same rows, value for value, as the DuckDB snapshot
    con.close()
    con, _ = open_tenant(cfg, tables={"marts.ho_so_tuan"})
    lake_rows = con.execute("SELECT * FROM marts.ho_so_tuan ORDER BY ALL").fetchall()
    with duckdb.connect(str(paths.snapshot), read_only=True) as snap:
        assert lake_rows == snap.execute("SELECT * FROM marts.ho_so_tuan ORDER BY ALL").fetchall()
    # data files inside the tenant's data folder; raw (personal data) never published
    files = list((paths.root / "lakehouse").rglob("*.parquet"))
    assert files and all(f.resolve().is_relative_to(paths.root.resolve()) for f in files)
    assert not any(n.startswith("raw.") for n in pinned.tables)

    # the same snapshot again: nothing committed, no new publish record
    again = publish_tenant(cfg, paths.snapshot, "lh-run-2")
    assert again.publish_seq == pinned.publish_seq and again.metrics()["n_tables"] == 0
    between = datetime.now(UTC)
    time.sleep(0.01)
    # a new snapshot where one table lost rows → it and meta.snapshot are rewritten, the rest kept;
    # time travel still shows the first publish
    with duckdb.connect(str(paths.snapshot)) as snap:
        snap.execute("DELETE FROM marts.ho_so_tuan WHERE rowid % 2 = 0")
        snap.execute("UPDATE meta.snapshot SET run_id = 'lh-run-3'")
        left = snap.execute("SELECT count(*) FROM marts.ho_so_tuan").fetchone()[0]
    third = publish_tenant(cfg, paths.snapshot, "lh-run-3")
    assert third.metrics()["n_tables_written"] == 2 and third.publish_seq == pinned.publish_seq + 1
    latest, _ = open_tenant(cfg, tables={"marts.ho_so_tuan"})
    old, old_pin = open_tenant(cfg, as_of=between, tables={"marts.ho_so_tuan"})
    assert latest.execute("SELECT count(*) FROM marts.ho_so_tuan").fetchone()[0] == left
    assert old.execute("SELECT count(*) FROM marts.ho_so_tuan").fetchone()[0] == expected["marts.ho_so_tuan"]
    assert old_pin.run_id == "lh-run-1"
    with pytest.raises(LakehouseError, match="no lakehouse publish at"):
        open_tenant(cfg, as_of=datetime(2020, 1, 1, tzinfo=UTC))
    # the readers' connection reads registered tables only
    with pytest.raises(duckdb.Error, match="disabled"):
        latest.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
    assert PASSWORD not in caplog.text


def test_concurrent_writer_processes_readers_see_whole_publishes_one_sql(province_snapshot, ministry_snapshot,
                                                                        lakehouse_env, tmp_path, capsys):
    """Two writer processes at once: first each publishes its own tenant (different tenants concurrently),
    then both commit different tables of a third tenant (3 publishes each) while this process reads."""
    import pyarrow.dataset  # noqa: F401 — the reader's imports done before the race (seconds on a busy machine)
    import pyiceberg.io.pyarrow  # noqa: F401

    province, ministry, third = synthetic_tenant("tinh-mot"), synthetic_tenant("bo-mot"), synthetic_tenant("tinh-hai")
    snaps = {t.tenant_id: _copy_tenant(s, t.tenant_id).snapshot
             for t, s in ((province, province_snapshot), (ministry, ministry_snapshot))}
    # a few tables each (the publish step's full commit is the test above): the data dictionary, the snapshot
    # record and the tenant's first marts
    counts = {t: _serving_counts(s) for t, s in snaps.items()}
    chosen = {t: ["meta.data_dictionary", "meta.snapshot", *sorted(n for n in c if n.startswith("marts."))[:3]]
              for t, c in counts.items()}
    catalog = open_catalog("TONGHOP_LAKEHOUSE_CATALOG")  # the catalogue's own tables exist before the race
    rounds = 3

    def jobs(tenant, tables):
        return ({"op": "publish", "tenant": tenant, "snapshot": str(snaps[tenant.tenant_id]),
                 "run_id": f"run-{tenant.tenant_id}", "tables": chosen[tenant.tenant_id]},
                {"op": "rounds", "tenant": third, "folder": str(_folder(tmp_path, tenant.tenant_id)),
                 "rounds": rounds, "tables": tables})

    procs = [start_worker(tmp_path, *jobs(province, ["marts.a", "marts.b"])),
             start_worker(tmp_path, *jobs(ministry, ["marts.c"]))]
    seen: list[int] = []
    while any(p.poll() is None for p in procs):  # a reader during the writes
        try:
            con, pinned = open_tenant(third, tables={"marts.a", "marts.b"})
        except LakehouseError:  # nothing published yet
            time.sleep(0.1)
            continue
        if {"marts.a", "marts.b"} <= pinned.tables.keys():
            ka = con.execute("SELECT min(k), max(k), count(*) FROM marts.a").fetchone()
            kb = con.execute("SELECT min(k), max(k), count(*) FROM marts.b").fetchone()
            assert ka == kb, f"publish {pinned.publish_seq} mixes tables of two publishes: a={ka} b={kb}"
            assert not seen or ka[0] >= seen[-1], "a later read went back to an older publish"
            seen.append(ka[0])
        con.close()
        time.sleep(0.05)
    outcomes = [finish(p) for p in procs]
    for (results, log), t in zip(outcomes, (province, ministry), strict=True):
        assert results[0]["publish_seq"] == 1 and results[0]["n_tables_written"] == len(chosen[t.tenant_id])
        assert PASSWORD not in log and "lakehouse publish 1 of" in log
    assert seen, "the reader never saw a publish of tinh-hai while the writers ran"
    # every publish of both writers of tinh-hai landed, in one order, none lost to a concurrent commit
    assert sorted(outcomes[0][0][1]["seqs"] + outcomes[1][0][1]["seqs"]) == list(range(1, 2 * rounds + 1))
    final = pin(catalog, third.tenant_id)
    assert final.publish_seq == 2 * rounds and set(final.tables) == {"marts.a", "marts.b", "marts.c"}
    con, _ = open_tenant(third)
    assert con.execute("SELECT (SELECT max(k) FROM marts.a), (SELECT max(k) FROM marts.b), "
                       "(SELECT max(k) FROM marts.c)").fetchone() == (rounds, rounds, rounds)

    # one SQL across tenants, each pinned to its own publish
    cols, rows, pins = query("SELECT tenant_id, count(*) AS n FROM all_tenants.meta.data_dictionary GROUP BY ALL "
                             "ORDER BY ALL", tenants=[province, ministry])
    assert cols == ["tenant_id", "n"]
    assert dict(rows) == {t: c["meta.data_dictionary"] for t, c in counts.items()}
    assert {p.tenant_id: set(p.tables) for p in pins} == {t: set(c) for t, c in chosen.items()}
    _, rows, _ = query("SELECT (SELECT count(*) FROM tinh_mot.meta.snapshot) + (SELECT count(*) FROM "
                       "bo_mot.meta.snapshot) + (SELECT count(*) FROM tinh_hai.marts.c)",
                       tenants=[province, ministry, third])
    assert rows == [(2 + 50,)]

    # the CLI: `tonghop lakehouse query` across the tenant files of TONGHOP_TENANTS_DIR
    from pipelines.cli import main

    folder = tmp_path / "tenants"
    folder.mkdir()
    import yaml

    for t in (province, ministry):
        (folder / f"{t.tenant_id}.yaml").write_text(
            yaml.safe_dump(t.model_dump(mode="json", exclude_none=True), allow_unicode=True), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGHOP_TENANTS_DIR", str(folder))
        capsys.readouterr()
        assert main(["lakehouse", "query", "SELECT tenant_id, count(*) AS n FROM all_tenants.meta.snapshot "
                     "GROUP BY ALL ORDER BY ALL", "--format", "csv"]) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[:3] == ["tenant_id,n", "bo-mot,1", "tinh-mot,1"]
        assert main(["lakehouse", "query", "SELECT * FROM all_tenants.marts.no_such_table"]) != 0
        err = capsys.readouterr().err
        assert "all_tenants.marts.ho_so_tuan" in err and "Traceback" not in err and PASSWORD not in err


def _folder(tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    return path


def test_catalogue_errors_never_show_the_secret(lakehouse_env, province_snapshot, monkeypatch, caplog, capsys):
    cfg = lakehouse_tenant("ninh-binh")
    paths = _copy_tenant(province_snapshot, cfg.tenant_id)
    caplog.set_level(logging.DEBUG)
    # nothing listens there: the driver's error quotes host and port, never the password
    monkeypatch.setenv("TONGHOP_LAKEHOUSE_CATALOG", f"postgresql://tonghop:{PASSWORD}@127.0.0.1:9/lakehouse")
    with pytest.raises(LakehouseError) as err:
        publish_tenant(cfg, paths.snapshot, "lh-secret")
    message = str(err.value)
    assert "TONGHOP_LAKEHOUSE_CATALOG" in message and "cannot be opened" in message
    assert PASSWORD not in message and PASSWORD not in caplog.text
    # a database that does not exist on a live server
    monkeypatch.setenv("TONGHOP_LAKEHOUSE_CATALOG", lakehouse_env.rsplit("/", 1)[0] + "/no_such_db")
    from pipelines.cli import main

    assert main(["lakehouse", "publish", "--tenant", "ninh-binh"]) != 0  # tenant file is duckdb: refused first
    err_text = capsys.readouterr().err
    assert "storage: {kind: lakehouse}" in err_text and PASSWORD not in err_text
    with pytest.raises(LakehouseError) as err:
        publish_tenant(cfg, paths.snapshot, "lh-secret")
    assert "no_such_db" in str(err.value) and PASSWORD not in str(err.value)
    monkeypatch.delenv("TONGHOP_LAKEHOUSE_CATALOG")
    with pytest.raises(ConfigError, match="TONGHOP_LAKEHOUSE_CATALOG is not set"):
        publish_tenant(cfg, paths.snapshot, "lh-secret")
    assert PASSWORD not in caplog.text
    assert CATALOG_NAME == "tonghop"
