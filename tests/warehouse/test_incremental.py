"""Cost follows change (pipelines/incremental.py, issue 16.1).

- A run with nothing promoted does no transform or publishing and says so (summary, runs.jsonl, Airflow task);
  a failed transform, or a changed configuration, still rebuilds.
- An incremental build equals a full rebuild, table by table (EXCEPT ALL both ways), after a batch that brings
  new dossiers *and* late updates of old ones (returned, return date corrected, moved to another agency).
- The snapshot is refreshed by replacing only the tables whose version changed.

Starts from the session's published province (tests/fixtures/snapshots.py), copied: one incremental run is
built per module, every test copies what it changes.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.runner import run
from tests.conftest import DEMO_TENANT, copy_demo_tenant, demo_env, file_digest, step_metrics

STEPS = ["extract_load", "validate", "transform", "publish"]
INCREMENTAL = {"staging.ho_so", "marts.ho_so_tuan", "marts.ho_so_ma_thu_tuc_tuan", "marts.ho_so_thu_tuc_tuan",
               "marts.ho_so_thoi_gian_xu_ly", "marts.ho_so_ton_dong_tuan"}
# maintained from the changed dossiers alone (sums of their new versions minus their old ones)
ADDITIVE = {"marts.ho_so_ma_thu_tuc_tuan", "marts.ho_so_thu_tuc_tuan", "marts.ho_so_ton_dong_tuan"}
N_NEW, N_LATE = 40, 40





@pytest.fixture(scope="module")
def changed(province_snapshot: Path, demo_portals, tmp_path_factory):
    """The published province after one more run that promoted a batch of new dossiers and late updates."""
    from pipelines.demo.increment import add_dossier_changes

    home = tmp_path_factory.mktemp("incremental")
    paths = copy_demo_tenant(province_snapshot.parent.parent, home)
    with pytest.MonkeyPatch.context() as mp:
        demo_env(mp, home, demo_portals)
        counts = add_dossier_changes(paths.sources / "mot_cua.sqlite", n_new=N_NEW, n_late=N_LATE,
                                     when=datetime(2025, 11, 3, 9))
        report = run(DEMO_TENANT, steps=STEPS, run_id="inc")
    assert report.ok, report.summary()
    return home, paths, report, counts


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    return [f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = ? "
        "AND table_schema IN ('staging', 'marts') AND table_type = 'BASE TABLE' ORDER BY 1, 2", [catalog]).fetchall()]


def _differences(a: Path, b: Path) -> dict[str, tuple[int, int]]:
    """Per table of two DuckDB files: rows of a not in b and of b not in a (multiset, EXCEPT ALL)."""
    con = duckdb.connect(str(a), read_only=True)
    try:
        con.execute(f"ATTACH '{b}' AS other (READ_ONLY)")
        mine = _tables(con, con.execute("SELECT current_database()").fetchone()[0])
        theirs = _tables(con, "other")
        assert mine == theirs
        out = {}
        for t in mine:
            s, n = t.split(".")
            ab = con.execute(f'SELECT count(*) FROM (SELECT * FROM {s}."{n}" EXCEPT ALL '
                             f'SELECT * FROM other.{s}."{n}")').fetchone()[0]
            ba = con.execute(f'SELECT count(*) FROM (SELECT * FROM other.{s}."{n}" EXCEPT ALL '
                             f'SELECT * FROM {s}."{n}")').fetchone()[0]
            out[t] = (ab, ba)
        return out
    finally:
        con.close()


def test_incremental_build_equals_a_full_rebuild_table_by_table(changed, tmp_path, monkeypatch, demo_portals,
                                                                  province_snapshot):
    home, paths, report, counts = changed
    transform = step_metrics(report, "transform")
    assert transform["build"] == "incremental", transform["reason"]
    assert set(transform["incremental"]) == INCREMENTAL
    assert {t for t, how in transform["incremental"].items() if "sums of the changed rows" in how} == ADDITIVE
    assert "as of " in transform["incremental"]["staging.ho_so"]  # data_as_of moved: pending dossiers' flags too
    assert counts == {"n_new": N_NEW, "n_late": N_LATE}
    # The batch really changed the dossier tables (so that the comparison below means something): new rows,
    # and old rows whose groups moved (the previous snapshot's weekly mart is not the new one).
    with duckdb.connect(str(province_snapshot), read_only=True) as con:
        n_before = con.execute("SELECT count(*) FROM staging.ho_so").fetchone()[0]
    assert n_before < transform["tables"]["staging.ho_so"] <= n_before + N_NEW
    before = _differences(province_snapshot, paths.warehouse)
    assert all(before[t] != (0, 0) for t in INCREMENTAL)
    # The same warehouse rebuilt in full: forget the recorded build, run transform again.
    full_home = tmp_path / "full"
    full = copy_demo_tenant(home, full_home)
    con = duckdb.connect(str(full.warehouse))
    con.execute("DELETE FROM meta.build_state")
    con.close()
    demo_env(monkeypatch, full_home, demo_portals)
    rebuilt = run(DEMO_TENANT, steps=["transform"], run_id="full")
    assert rebuilt.ok and step_metrics(rebuilt, "transform")["build"] == "full", rebuilt.summary()
    diff = _differences(paths.warehouse, full.warehouse)
    assert {t: d for t, d in diff.items() if d != (0, 0)} == {}
    assert INCREMENTAL <= set(diff)
    # The refreshed snapshot serves exactly those tables too.
    assert {t: d for t, d in _differences(paths.snapshot, full.warehouse).items() if d != (0, 0)} == {}


def test_snapshot_refresh_replaces_only_the_changed_tables(changed):
    _, paths, report, _ = changed
    publish = step_metrics(report, "publish")
    assert publish["build"].startswith("copy + replace (")
    assert 0 < publish["n_tables_rewritten"] < publish["n_tables"] - 2
    # the tables maintained from the change are patched in the snapshot's copy, not rewritten (the first test
    # compares the refreshed snapshot with a full rebuild, table by table)
    assert set(publish["tables_patched"]) == INCREMENTAL
    with duckdb.connect(str(paths.snapshot), read_only=True) as con:
        written = dict(con.execute("SELECT table_name, written_by FROM meta.snapshot_tables").fetchall())
        assert con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0] == "inc"
    assert {t: written[t] for t in INCREMENTAL} == dict.fromkeys(INCREMENTAL, "inc")
    # reference tables and marts not fed by the dossiers were kept as the previous run wrote them
    assert written["staging.dm_xa"] == written["marts.xa_hoi_so_tinh"] == "opendata"
    assert sum(w == "inc" for w in written.values()) == publish["n_tables_rewritten"] + publish["n_tables_patched"]
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:  # the records are dropped once published
        assert con.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'delta'"
                           ).fetchone()[0] == 0
    # versions and build keys are hashes written in letters: nothing in them looks like a CCCD or a phone
    from pipelines.reference.pii import scan_database

    assert scan_database(paths.snapshot) == []


def test_a_run_with_nothing_new_does_nothing_and_says_so(changed, tmp_path, monkeypatch, demo_portals):
    from pipelines.airflow_task import run_task_step

    home, _, _, _ = changed
    paths = copy_demo_tenant(home, tmp_path)
    demo_env(monkeypatch, tmp_path, demo_portals)
    snapshot_before = file_digest(paths.snapshot)
    report = run(DEMO_TENANT, steps=STEPS, run_id="again")
    assert report.ok, report.summary()
    assert "nothing new: transform, publish skipped — nothing promoted since the last build (run inc)" \
        in report.summary()
    assert "tables built" not in report.summary() and "snapshot published" not in report.summary()
    assert file_digest(paths.snapshot) == snapshot_before
    recorded = {r["step"]: r["metrics"]["build"] for r in map(json.loads, paths.run_log.read_text().splitlines())
                if r.get("run_id") == "again" and r.get("status") == "success" and "build" in r.get("metrics", {})}
    assert recorded == {"transform": "skipped", "publish": "skipped"}
    # An Airflow task of another DAG run decides the same way.
    assert run_task_step(DEMO_TENANT, "transform", "scheduled__x", last_step="transform")["build"] == "skipped"
    assert run_task_step(DEMO_TENANT, "publish", "scheduled__x", last_step="publish")["build"] == "skipped"


def test_a_failed_transform_or_a_changed_config_still_rebuilds(changed, tmp_path, monkeypatch, demo_portals):
    import pipelines.steps as steps
    from pipelines.config import load_tenant
    from pipelines.demo.increment import add_dossier_changes
    from pipelines.errors import TransformError

    home, _, _, _ = changed
    paths = copy_demo_tenant(home, tmp_path)
    demo_env(monkeypatch, tmp_path, demo_portals)
    add_dossier_changes(paths.sources / "mot_cua.sqlite", n_new=5, n_late=0, when=datetime(2025, 11, 4, 9),
                        tag="n2")
    real = steps._build_model

    def failing(con, model):
        if model.qualified == "marts.kpi_tong_quan":
            raise TransformError("injected: building marts.kpi_tong_quan failed")
        real(con, model)

    monkeypatch.setattr(steps, "_build_model", failing)
    broken = run(DEMO_TENANT, steps=["extract_load", "validate", "transform"], run_id="broken")
    assert broken.failed_step == "transform"
    monkeypatch.setattr(steps, "_build_model", real)
    # The batch promoted by the failed run is still to be built: the next run does it, from the change.
    again = run(DEMO_TENANT, steps=["transform"], run_id="again")
    assert step_metrics(again, "transform")["build"] == "incremental", again.summary()
    assert step_metrics(again, "transform")["tables"]["staging.ho_so"] > \
        step_metrics(changed[2], "transform")["tables"]["staging.ho_so"]
    # A changed configuration (here the retention) is a new fingerprint: everything is rebuilt.
    cfg = load_tenant(DEMO_TENANT)
    cfg = cfg.model_copy(update={"retention": cfg.retention.model_copy(update={"raw_days": 91})})
    result = steps.transform(steps.RunContext(cfg, "config"))
    assert result.metrics["build"] == "full" and "configuration" in result.metrics["reason"]
    # the changes recorded for the snapshot by the incremental build are dropped: nothing to patch from
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'delta'"
                           ).fetchone()[0] == 0
    assert steps.publish(steps.RunContext(cfg, "config")).metrics["n_tables_patched"] == 0


def test_a_batch_reloaded_or_scored_without_a_new_promotion_is_still_built(changed, tmp_path, monkeypatch,
                                                                            demo_portals):
    """Nothing new promoted, yet the build's inputs moved: a batch reloaded under the same id (a retry of the same
    run re-extracting newer rows) is another batch (full rebuild, not a skip), and quality scores of a batch
    that was blocked reach the quality mart and the snapshot (not a skip)."""
    import pipelines.steps as steps
    from pipelines.config import load_tenant
    from pipelines.warehouse import connect

    home, _, _, _ = changed
    paths = copy_demo_tenant(home, tmp_path)
    demo_env(monkeypatch, tmp_path, demo_portals)
    cfg = load_tenant(DEMO_TENANT)
    with connect(paths.warehouse) as con:
        con.execute("UPDATE meta.loads SET loaded_at = loaded_at + INTERVAL 1 SECOND "
                    "WHERE source = 'ho_so' AND batch_id = 'inc'")
    result = steps.transform(steps.RunContext(cfg, "reloaded"))
    assert result.metrics["build"] == "full" and "no longer promoted" in result.metrics["reason"], result.metrics
    assert steps.publish(steps.RunContext(cfg, "reloaded")).metrics["build"] != "skipped"

    with connect(paths.warehouse) as con:
        con.execute("INSERT INTO meta.quality_scores SELECT * REPLACE ('blocked_b' AS batch_id, 'blocked' AS run_id) "
                    "FROM meta.quality_scores LIMIT 1")
    result = steps.transform(steps.RunContext(cfg, "scored"))
    assert result.metrics["build"] != "skipped", result.metrics
    assert steps.publish(steps.RunContext(cfg, "scored")).metrics["build"] != "skipped"


def test_two_builds_before_one_publish_patch_the_snapshot_through_both(changed, tmp_path, monkeypatch,
                                                                        demo_portals):
    """Two incremental transforms, then one publish (a failed or skipped publish in between): the snapshot's copy
    is brought through both recorded changes, and equals the warehouse."""
    from pipelines.demo.increment import add_dossier_changes

    home, _, _, _ = changed
    paths = copy_demo_tenant(home, tmp_path)
    demo_env(monkeypatch, tmp_path, demo_portals)
    for i, day in enumerate((4, 5), 2):
        add_dossier_changes(paths.sources / "mot_cua.sqlite", n_new=6, n_late=6, when=datetime(2025, 11, day, 9),
                            tag=f"n{i}")
        built = run(DEMO_TENANT, steps=["extract_load", "validate", "transform"], run_id=f"b{i}")
        assert step_metrics(built, "transform")["build"] == "incremental", built.summary()
    published = run(DEMO_TENANT, steps=["publish"], run_id="pub")
    assert published.ok, published.summary()
    assert set(step_metrics(published, "publish")["tables_patched"]) == INCREMENTAL
    assert {t: d for t, d in _differences(paths.snapshot, paths.warehouse).items() if d != (0, 0)} == {}


# What the rolled-up marts computed from staging.ho_so directly before they were summed from the weekly marts
# (commit 1db4a9c's SQL): the sums must give the very same rows.
DIRECT = {
    "marts.kpi_tong_quan": """
        select max(data_as_of) as data_as_of, count(*) as n_ho_so, count(*) filter (where is_returned) as n_da_tra,
               count(*) filter (where not is_returned) as n_dang_xu_ly,
               count(*) filter (where is_pending_overdue) as n_dang_xu_ly_qua_han,
               count(*) filter (where is_on_time)::double / nullif(count(*) filter (where is_returned), 0)
                   as ty_le_dung_han,
               count(distinct co_quan) as n_co_quan, count(distinct ma_xa) as n_xa
        from staging.ho_so""",
    "marts.ho_so_thu_tuc_tuan": """
        with events as (
            select date_trunc('week', ngay_nhan)::date as tuan_bat_dau, co_quan, linh_vuc, ma_xa, 1 as is_received,
                   0 as is_returned, 0 as is_on_time, 0 as is_late, (not is_returned)::int as is_pending,
                   is_pending_overdue::int as is_pending_overdue
            from staging.ho_so
            union all
            select date_trunc('week', ngay_tra)::date, co_quan, linh_vuc, ma_xa, 0, 1, is_on_time::int,
                   is_overdue::int, 0, 0
            from staging.ho_so where is_returned)
        select tuan_bat_dau, co_quan, linh_vuc, ma_xa, xa.ten_xa, sum(is_received)::bigint as n_tiep_nhan,
               sum(is_returned)::bigint as n_da_tra, sum(is_on_time)::bigint as n_tra_dung_han,
               sum(is_late)::bigint as n_tra_qua_han, sum(is_pending)::bigint as n_dang_xu_ly,
               sum(is_pending_overdue)::bigint as n_dang_xu_ly_qua_han
        from events left join (select ma_xa, ten_xa from staging.dm_xa) xa using (ma_xa) group by all""",
}


@pytest.mark.parametrize("table", sorted(DIRECT))
def test_marts_summed_from_the_weekly_marts_equal_the_direct_computation(changed, table):
    _, paths, _, _ = changed
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
        for a, b in ((f"SELECT * FROM {table}", DIRECT[table]), (DIRECT[table], f"SELECT * FROM {table}")):
            assert con.execute(f"SELECT count(*) FROM (SELECT * FROM ({a}) EXCEPT ALL SELECT * FROM ({b}))"
                               ).fetchone()[0] == 0
