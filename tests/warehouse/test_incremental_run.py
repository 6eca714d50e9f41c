"""Cost follows change in extract_load, validate and train (issue 16.1), without losing a row.

- extract_load: a nothing-new run opens no file source (its probe — the files' stat — matches a promoted
  state), a changed database row is still read, a file rewritten with its size and time restored is read at the
  periodic full check, a file written a moment ago is never trusted by its stat;
- validate: only the new batch is validated, a bad one is still blocked (and its rows fetched again next run, the
  probe never skipping a source whose batch was not promoted); Data Docs render only the new result's page;
- train (models/retrain.py): with a few new dossiers in the same ISO week overdue risk is kept and scores the
  open dossiers — the new ones included — with its kept version; a closed ISO week, a data change over the
  threshold and `tonghop train` refit.

Starts from the session's published province (tests/fixtures/snapshots.py, 3,000 dossiers), copied; the train
tests share one trained copy per module and copy it again per test.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.runner import run
from pipelines.settings import TenantPaths
from pipelines.sources import probe
from tests.conftest import DEMO_TENANT, copy_demo_tenant, demo_env, step_metrics

FILE_SOURCES = {"ho_so", "chi_so_xa_hoi_so", "can_bo", "chi_so_cds_tinh", "dang_ky_kinh_doanh",
                "dang_ky_kinh_doanh_cu"}
ASKED_SOURCES = {"phan_anh_kien_nghi", "diem_phuc_vu_cong"}  # an API and a CKAN feed: asked, no stat probe
LOAD_VALIDATE = ["extract_load", "validate"]
THROUGH_TRAIN = ["extract_load", "validate", "transform", "train"]





def _last_update(db: Path) -> datetime:
    con = sqlite3.connect(str(db))
    try:
        return datetime.fromisoformat(con.execute("SELECT max(ngay_cap_nhat) FROM ho_so").fetchone()[0])
    finally:
        con.close()


def _aged(path: Path) -> None:
    """Date a file a minute back, as an export that arrived earlier: its stat can be trusted (not 'racy')."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 60 * 10**9))


def _query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture
def tenant(province_snapshot: Path, demo_portals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TenantPaths:
    """A copy of the published province whose sources were checked once from their new folder (a copy has
    other paths and inodes, so its first run reads every source and records their probes)."""
    paths = copy_demo_tenant(province_snapshot.parent.parent, tmp_path / "h")
    demo_env(monkeypatch, tmp_path / "h", demo_portals)
    first = run(DEMO_TENANT, steps=LOAD_VALIDATE, run_id="first")
    assert first.ok, first.summary()
    assert set(step_metrics(first, "extract_load")["sources_read"]) == FILE_SOURCES | ASKED_SOURCES
    return paths


def test_a_nothing_new_run_reads_no_unchanged_source(tenant: TenantPaths):
    report = run(DEMO_TENANT, steps=LOAD_VALIDATE, run_id="again")
    assert report.ok, report.summary()
    m = step_metrics(report, "extract_load")
    assert set(m["sources_not_read"]) == FILE_SOURCES  # not opened at all: a stat each
    assert set(m["sources_read"]) == ASKED_SOURCES     # their own cheap check (updated_since / the feed)
    assert set(m["sources"].values()) == {"unchanged"} and m["n_rows_loaded"] == 0
    assert "unchanged by their probe (not read): 6" in report.summary()
    assert step_metrics(report, "validate")["n_batches"] == 0
    # Recorded as an unchanged load carrying the promoted batch's watermark, as a read finding nothing would.
    (wm_now, wm_promoted), = _query(tenant.warehouse, """
        SELECT (SELECT watermark FROM meta.loads WHERE source = 'ho_so' AND batch_id = 'again'),
               (SELECT watermark FROM meta.loads WHERE source = 'ho_so' AND status = 'passed'
                ORDER BY loaded_at DESC LIMIT 1)""")
    assert wm_now is not None and wm_now == wm_promoted


def test_a_changed_database_row_is_read_and_only_the_new_batch_is_validated(tenant: TenantPaths, monkeypatch):
    from pipelines.demo.increment import add_dossier_changes

    # by Great Expectations, whose Data Docs this checks (a small batch would be checked by SQL and render no
    # page: tests/quality/test_sqlcheck.py)
    monkeypatch.setenv("TONGHOP_SQLCHECK_MAX_ROWS", "0")

    db = tenant.sources / "mot_cua.sqlite"
    docs = tenant.data_docs / "validations"
    pages_before = {p: p.stat().st_mtime_ns for p in docs.rglob("*.html")}
    assert pages_before
    changed = add_dossier_changes(db, n_new=6, n_late=4, when=_last_update(db) + timedelta(hours=1), tag="t1")
    _aged(db)
    report = run(DEMO_TENANT, steps=LOAD_VALIDATE, run_id="changed")
    assert report.ok, report.summary()
    m = step_metrics(report, "extract_load")
    assert m["sources"]["ho_so"] == "loaded" and "ho_so" in m["sources_read"]
    assert m["n_rows_loaded"] == changed["n_new"] + changed["n_late"] == 10
    assert set(m["sources_not_read"]) == FILE_SOURCES - {"ho_so"}
    v = step_metrics(report, "validate")
    assert v["n_batches"] == 1
    assert _query(tenant.warehouse, "SELECT DISTINCT source, batch_id FROM meta.validations WHERE run_id = 'changed'"
                  ) == [("ho_so", "changed")]
    # Data Docs: the new result got its page; the pages already rendered were kept, not rendered again.
    pages_after = {p: p.stat().st_mtime_ns for p in docs.rglob("*.html")}
    assert any("changed" in str(p) for p in set(pages_after) - set(pages_before))
    assert {p: pages_after.get(p) for p in pages_before} == pages_before


def test_a_bad_batch_is_still_blocked_and_fetched_again(tenant: TenantPaths):
    db = tenant.sources / "mot_cua.sqlite"
    stamp = (_last_update(db) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    con = sqlite3.connect(str(db))
    con.execute("INSERT INTO ho_so SELECT ma_ho_so || '-bad', ma_thu_tuc, linh_vuc, co_quan, ma_xa, ngay_nhan, "
                "ngay_hen_tra, ngay_tra, 'khong_ro', so_cccd, so_dien_thoai, ho_ten, ? FROM ho_so LIMIT 3", [stamp])
    con.commit()
    con.close()
    _aged(db)
    before = _query(tenant.warehouse, "SELECT count(*) FROM staging.ho_so")
    blocked = run(DEMO_TENANT, steps=LOAD_VALIDATE, run_id="bad")
    assert not blocked.ok and blocked.failed_step == "validate"
    assert "trang_thai" in blocked.error
    assert _query(tenant.warehouse, "SELECT status, n_rows_loaded FROM meta.loads WHERE source = 'ho_so' "
                                    "AND batch_id = 'bad'") == [("blocked", 3)]
    assert _query(tenant.warehouse, "SELECT count(*) FROM staging.ho_so") == before
    # The file has not changed since, but its probe stands for a batch that was not promoted: read again,
    # and the same rows fetched again (the watermark moves only with a promoted batch).
    again = run(DEMO_TENANT, steps=["extract_load"], run_id="bad2")
    m = step_metrics(again, "extract_load")
    assert "ho_so" in m["sources_read"] and m["sources"]["ho_so"] == "loaded" and m["n_rows_loaded"] == 3


def test_a_file_rewritten_with_its_size_and_time_restored_is_read_at_once(
        tenant: TenantPaths, monkeypatch: pytest.MonkeyPatch):
    csv = tenant.sources / "can_bo_mot_cua.csv"
    st = csv.stat()
    text = csv.read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines()[1:] if ln[-1] in "12345678")
    csv.write_text(text.replace(line, line[:-1] + str(int(line[-1]) + 1), 1), encoding="utf-8")
    os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns))  # what `cp -p`, `rsync -t` or an unzip do
    assert csv.stat().st_size == st.st_size and csv.stat().st_mtime_ns == st.st_mtime_ns
    # Size and time say nothing changed, but the file's ctime moved (no copy tool can set it back): the probe
    # differs, the source is read at once and the new value loaded — with size/mtime alone (and the same key in
    # the fingerprint cache) it was skipped until the periodic full check.
    rewrite = run(DEMO_TENANT, steps=LOAD_VALIDATE, run_id="rewrite")
    assert rewrite.ok, rewrite.summary()
    m = step_metrics(rewrite, "extract_load")
    assert "can_bo" in m["sources_read"] and m["sources"]["can_bo"] == "loaded"
    # The periodic full check still reads every file source (for a filesystem that keeps no ctime, the one
    # change a stat could then miss), hashing the bytes again rather than trusting the fingerprint cache.
    quiet = run(DEMO_TENANT, steps=["extract_load"], run_id="quiet")
    assert "can_bo" in step_metrics(quiet, "extract_load")["sources_not_read"]
    monkeypatch.setenv(probe.VERIFY_EVERY_ENV, "2")
    full = run(DEMO_TENANT, steps=LOAD_VALIDATE, run_id="verify")
    assert full.ok, full.summary()
    m = step_metrics(full, "extract_load")
    assert "can_bo" in m["sources_read"] and m["sources"]["can_bo"] == "unchanged"
    assert set(m["sources_not_read"]) == set()  # every file source was due its full check


def test_a_file_written_a_moment_ago_is_not_trusted_by_its_stat(tenant: TenantPaths):
    from pipelines.config import load_tenant

    cfg = load_tenant(DEMO_TENANT)
    source = cfg.source("can_bo")
    assert probe.take(source, tenant) is not None
    (tenant.sources / "can_bo_mot_cua.csv").touch()
    assert probe.take(source, tenant) is None  # 'racy': modified within RACY_SECONDS of the check
    assert probe.take(cfg.source("phan_anh_kien_nghi"), tenant) is None  # an API: no stat to take


# --- train: the retraining policy ----------------------------------------------------------------------
# Two of the province's four models keep these tests to seconds: overdue risk (a fitted model with per-row
# outputs: the score-only path) and anomalies (no fitted parameters: recomputed on every new batch).
MODELS = ["overdue_risk", "anomalies"]


def _tenant_with_models():
    from pipelines.config import load_tenant

    return load_tenant(DEMO_TENANT).model_copy(update={"models": MODELS})


@pytest.fixture(scope="module")
def trained(province_snapshot: Path, demo_portals, tmp_path_factory) -> Path:
    """The published province with its models fitted once (the policy's first fit)."""
    home = tmp_path_factory.mktemp("trained")
    copy_demo_tenant(province_snapshot.parent.parent, home)
    with pytest.MonkeyPatch.context() as mp:
        demo_env(mp, home, demo_portals)
        report = run(_tenant_with_models(), steps=["train"], run_id="fit")
    assert report.ok, report.summary()
    decisions = step_metrics(report, "train")["model_decisions"]
    assert set(decisions) == set(MODELS)
    assert all(d.startswith("refit (no fit recorded") for d in decisions.values()), decisions
    return home


@pytest.fixture
def fitted(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_portals) -> TenantPaths:
    paths = copy_demo_tenant(trained, tmp_path / "h")
    demo_env(monkeypatch, tmp_path / "h", demo_portals)
    return paths


def _versions(db: Path) -> dict[str, str]:
    return dict(_query(db, "SELECT model_name, model_version FROM meta.model_policy"))


def _change(paths: TenantPaths, when: datetime, tag: str, n_new: int = 8, n_late: int = 4) -> None:
    from pipelines.demo.increment import add_dossier_changes

    db = paths.sources / "mot_cua.sqlite"
    add_dossier_changes(db, n_new=n_new, n_late=n_late, when=when, tag=tag)
    _aged(db)


def test_a_few_new_dossiers_in_the_same_week_keep_the_model_and_score_the_new_open_ones(fitted: TenantPaths):
    from models.retrain import retrain

    before = _versions(fitted.warehouse)
    db = fitted.sources / "mot_cua.sqlite"
    _change(fitted, _last_update(db) + timedelta(hours=1), "s1")
    report = run(_tenant_with_models(), steps=THROUGH_TRAIN, run_id="same_week")
    assert report.ok, report.summary()
    t = step_metrics(report, "train")
    d = t["model_decisions"]
    assert t["n_models_trained"] == 1 and set(t["models"]) == {"anomalies"}
    assert d["anomalies"].startswith("refit (a check without fitted parameters")
    assert t["models_scored"] == {"overdue_risk": before["overdue_risk"]} and t["models_kept"] == {}
    assert d["overdue_risk"].startswith(f"scored with version {before['overdue_risk']} (")
    assert "same ISO week" in d["overdue_risk"] and "< 5.0% since its fit" in d["overdue_risk"]
    assert f"model overdue_risk: scored with version {before['overdue_risk']}" in report.summary()
    # The scores cover the dossiers open now — the new ones too — and come from the kept version.
    (as_of,), = _query(fitted.warehouse, "SELECT max(data_as_of) FROM staging.ho_so")
    open_now = """FROM staging.ho_so WHERE ngay_hen_tra >= ngay_nhan AND ngay_nhan <= ?
                  AND (ngay_tra IS NULL OR ngay_tra > ?) AND ngay_hen_tra >= ?"""
    (n_open,), = _query(fitted.warehouse, f"SELECT count(*) {open_now}", [as_of] * 3)
    (n_new_open,), = _query(fitted.warehouse, f"SELECT count(*) {open_now} AND ma_ho_so LIKE '%-s1'", [as_of] * 3)
    assert n_new_open > 0
    assert f"({n_open:,} open rows scored)" in d["overdue_risk"]
    assert _query(fitted.warehouse, "SELECT DISTINCT model_version FROM marts.ho_so_nguy_co_qua_han") == \
        [(before["overdue_risk"],)]
    assert _versions(fitted.warehouse) == {**before, "anomalies": t["models"]["anomalies"]}
    # ... scored by the compiled form saved at the fit, which imports no scikit-learn (models/tree_scorer.py).
    assert (fitted.models / f"{before['overdue_risk']}.scorer.npz.sha256").is_file()
    # `tonghop train` fits whatever the policy says: a new version, on the data the kept one only scored.
    forced = retrain(DEMO_TENANT, model="overdue_risk", run_id="forced")
    assert forced.ok, forced.summary()
    fd = step_metrics(forced, "train")
    assert fd["model_decisions"]["overdue_risk"].startswith("refit (forced (tonghop train / retraining DAG))")
    assert fd["models"]["overdue_risk"] != before["overdue_risk"]


def test_a_closed_iso_week_refits(fitted: TenantPaths):
    db = fitted.sources / "mot_cua.sqlite"
    last = _last_update(db)
    monday = datetime.combine(last.date() + timedelta(days=7 - last.weekday()), datetime.min.time())
    _change(fitted, monday + timedelta(hours=9), "w1")
    report = run(_tenant_with_models(), steps=THROUGH_TRAIN, run_id="new_week")
    assert report.ok, report.summary()
    t = step_metrics(report, "train")
    assert t["n_models_trained"] == 2 and not t["models_scored"] and not t["models_kept"]
    assert "a new ISO week closed since its fit" in t["model_decisions"]["overdue_risk"]
    assert _versions(fitted.warehouse)["overdue_risk"] == t["models"]["overdue_risk"]


def test_a_data_change_over_the_threshold_refits(fitted: TenantPaths, monkeypatch: pytest.MonkeyPatch):
    from models.retrain import REFIT_SHARE_ENV

    before = _versions(fitted.warehouse)
    db = fitted.sources / "mot_cua.sqlite"
    monkeypatch.setenv(REFIT_SHARE_ENV, "0.002")  # 0.2 %: the 12 changed rows of ~3,000 are over it
    _change(fitted, _last_update(db) + timedelta(hours=1), "s2")
    report = run(_tenant_with_models(), steps=THROUGH_TRAIN, run_id="over")
    assert report.ok, report.summary()
    d = step_metrics(report, "train")["model_decisions"]
    assert "its training data changed by" in d["overdue_risk"] and "(≥ 0.2%: " in d["overdue_risk"], d
    assert _versions(fitted.warehouse)["overdue_risk"] != before["overdue_risk"]


def test_a_rebuild_under_other_definitions_or_another_upstream_version_refits(fitted: TenantPaths, monkeypatch):
    """What a fit read besides its rows is recorded with it: the warehouse's build definitions (not the list of
    models) and the versions of the models it reads. A run that died after refitting the upstream model, or
    `tonghop train --model <upstream>`, leaves the dependant on the old version: the next run refits it."""
    import json

    import models as registry_models
    from models.retrain import POLICY_TABLE, decide, record_fit
    from pipelines.warehouse import connect, transaction

    tenant = _tenant_with_models()
    version = _versions(fitted.warehouse)["overdue_risk"]
    with connect(fitted.warehouse) as con, transaction(con):
        assert decide(con, tenant, "overdue_risk", set()).action != "refit"
        # overdue_risk reading anomalies' output, fitted on its current version
        monkeypatch.setattr(registry_models, "dependencies",
                            lambda name: ("anomalies",) if name == "overdue_risk" else ())
        record_fit(con, tenant, "overdue_risk", version, "fit2")
        assert decide(con, tenant, "overdue_risk", set()).action != "refit"
        con.execute(f"UPDATE {POLICY_TABLE} SET model_version = 'anomalies-khac' WHERE model_name = 'anomalies'")
        d = decide(con, tenant, "overdue_risk", set())
        assert d.action == "refit" and "a model it reads has another version" in d.reason, d
        monkeypatch.setattr(registry_models, "dependencies", lambda name: ())
        record_fit(con, tenant, "overdue_risk", version, "fit3")
        assert decide(con, tenant, "overdue_risk", set()).action != "refit"
        # the list of models changes nothing; the SQL models' definitions do
        detail = json.loads(con.execute("SELECT detail FROM meta.build_state WHERE step = 'transform'").fetchone()[0])
        for part, refits in (("model_list", False), ("warehouse", True)):
            detail["parts"][part] = "khac"
            con.execute("UPDATE meta.build_state SET detail = ? WHERE step = 'transform'", [json.dumps(detail)])
            d = decide(con, tenant, "overdue_risk", set())
            assert (d.action == "refit" and "rebuilt under other definitions" in d.reason) == refits, (part, d)
