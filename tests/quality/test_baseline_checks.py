"""Every contract-fed source is checked by its contract's baseline, a tenant suite adds to it, a source with no
checks says so on the quality page (never 100 %), timeliness explains itself, and `tonghop suggest-suite`
drafts a suite from a loaded source. One small tenant (CSV sources, its own tenants folder) built per module."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest

from pipelines.cli import main
from pipelines.config import load_tenant
from pipelines.runner import run
from pipelines.settings import TenantPaths

REPO = Path(__file__).resolve().parents[2]
TENANT = "thu-nghiem-dq"

YAML = f"""
tenant_id: {TENANT}
display_name: Tỉnh Thử nghiệm
kind: province
admin_code: "98"
schedule: "0 2 * * *"
sources:
  - name: ho_so_x          # contract + the tenant's own suite
    kind: csv
    location: sources/ho_so_x.csv
    options:
      types: {{ma_ho_so: VARCHAR, ma_thu_tuc: VARCHAR, ngay_nhan: DATE, so_cccd: VARCHAR, sdt: VARCHAR,
              ngay_cap_nhat: TIMESTAMP}}
    primary_key: [ma_ho_so]
    incremental_column: ngay_cap_nhat
    personal_columns: [so_cccd, sdt]
    expectation_suite: ho_so_x_rieng
    contract: ho_so
    mapping: {{so_cccd_nguoi_nop: so_cccd, so_dien_thoai_nguoi_nop: sdt}}
  - name: can_bo_huyen     # contract only: the baseline checks it
    kind: csv
    location: sources/can_bo_huyen.csv
    options: {{types: {{don_vi: VARCHAR, so_nguoi: INTEGER}}}}
    primary_key: [don_vi, so_nguoi]
    contract: can_bo
    mapping: {{co_quan: don_vi, so_can_bo: so_nguoi}}
  - name: ghi_chu          # no contract, no suite: not checked
    kind: csv
    location: sources/ghi_chu.csv
    primary_key: [ma]
"""
# (ma_ho_so, ma_thu_tuc, ngay_nhan, trang_thai, so_cccd, sdt, ngay_cap_nhat)
HO_SO = [
    ("H1", "TT001", "2025-11-03", "da_tra", "037085012345", "+84912345678", "2025-11-20 08:00:00"),
    ("H2", "TT002", "2025-11-04", "xong", "037085012346", "0912 345 678", "2025-11-21 08:00:00"),  # bad status
    ("H3", "X", "2025-11-05", "dang_xu_ly", "037085012347", "84 912 345 678", "2025-11-22 08:00:00"),  # own suite
    ("H4", "TT004", "2025-11-06", "dang_xu_ly", "123", "091.234.5678", "2025-11-23 08:00:00"),  # bad CCCD
    ("H5", "TT005", "2025-11-07", "da_tra", "037085012349", "0912345678", "2025-11-28 09:30:00"),  # clean
    ("H6", "TT006", "2025-11-07", "da_tra", "037085012350", "hỏi sau", "2025-11-24 09:30:00"),  # no phone
]
CAN_BO = [("UBND xã A", "3"), ("UBND xã B", "2"), ("UBND xã B", "4"), ("Sở Y tế", ""), ("Sở Tư pháp", "5")]
OWN_SUITE = {"name": "ho_so_x_rieng", "meta": {}, "expectations": [
    # the same check as the baseline's (type + kwargs): run once, with this suite's severity
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "ma_ho_so"}, "meta": {"severity": "warn"},
     "description": "ma_ho_so must be present (tenant suite)"},
    {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "ma_thu_tuc", "regex": "^TT[0-9]{3}$"},
     "meta": {"severity": "warn"}, "description": "ma_thu_tuc must look like TT000"},
]}


def _csv(path: Path, header: str, rows: list[tuple]) -> None:
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """The tenant's files and one full run, kept for the module (each test copies nothing it changes)."""
    root = tmp_path_factory.mktemp("dq")
    home, tenants = root / "home", root / "tenants"
    (tenants / TENANT / "expectations").mkdir(parents=True)
    (tenants / f"{TENANT}.yaml").write_text(textwrap.dedent(YAML), encoding="utf-8")
    (tenants / TENANT / "expectations" / "ho_so_x_rieng.json").write_text(json.dumps(OWN_SUITE), encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("TONGHOP_HOME", str(home))
    mp.setenv("TONGHOP_TENANTS_DIR", str(tenants))
    mp.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
    try:
        cfg = load_tenant(TENANT)  # also validate-config's checks: the suite exists
        sources = TenantPaths.for_tenant(TENANT).ensure().sources
        _csv(sources / "ho_so_x.csv", "ma_ho_so,ma_thu_tuc,ngay_nhan,trang_thai,so_cccd,sdt,ngay_cap_nhat", HO_SO)
        _csv(sources / "can_bo_huyen.csv", "don_vi,so_nguoi", CAN_BO)
        _csv(sources / "ghi_chu.csv", "ma,noi_dung", [("1", "a"), ("2", "b")])
        report = run(cfg, run_id="r1")
        assert report.ok, report.summary()
        yield {"home": home, "tenants": tenants, "cfg": cfg, "run_day": datetime.now(ZoneInfo(cfg.timezone)).date()}
    finally:
        mp.undo()


@pytest.fixture
def env(built, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TONGHOP_HOME", str(built["home"]))
    monkeypatch.setenv("TONGHOP_TENANTS_DIR", str(built["tenants"]))
    return built


def _warehouse(read=True):
    return duckdb.connect(str(TenantPaths.for_tenant(TENANT).warehouse), read_only=read)


def test_baseline_and_tenant_suite_quarantine_exactly_the_bad_rows(env):
    with _warehouse() as con:
        loads = dict((s, (r, p, q)) for s, r, p, q in con.execute(
            "SELECT source, n_rows_read, n_rows_promoted, n_rows_quarantined FROM meta.loads").fetchall())
        held = {json.loads(k)[0]: sorted(f) for k, f in con.execute(
            "SELECT row_key, failed_expectations FROM meta.quarantine WHERE source = 'ho_so_x'").fetchall()}
        checks = con.execute("SELECT suite, expectation, column_name, severity, description FROM meta.validations "
                             "WHERE source = 'ho_so_x'").fetchall()
        can_bo = con.execute("SELECT row_key, failed_expectations FROM meta.quarantine WHERE source = 'can_bo_huyen' "
                             "ORDER BY row_key").fetchall()
        unchecked = con.execute("SELECT count(*) FROM meta.validations WHERE source = 'ghi_chu'").fetchone()[0]
        scores = con.execute("SELECT source, dimension FROM meta.quality_scores ORDER BY 1, 2").fetchall()
    # ho_so_x: H2 (status outside the contract's values), H3 (the tenant suite's own regex), H4 (no CCCD) and
    # H6 (no phone number at all); H1, H5 and every phone written with separators or +84/84 are good rows
    assert held == {"H2": ["trang_thai must be one of {'da_tra', 'dang_xu_ly'} (contract ho_so.trang_thai)"],
                    "H3": ["ma_thu_tuc must look like TT000"],
                    "H4": ["so_cccd must be a 12-digit CCCD (contract ho_so.so_cccd_nguoi_nop)"],
                    "H6": ["sdt must be a Vietnamese phone number (contract ho_so.so_dien_thoai_nguoi_nop)"]}
    assert loads["ho_so_x"] == (6, 2, 4)
    # merged: the tenant suite's two checks first, then the baseline's without the not-null on ma_ho_so again
    assert checks[0][0] == "ho_so_x_rieng" and [c[4] for c in checks[:2]] == [
        "ma_ho_so must be present (tenant suite)", "ma_thu_tuc must look like TT000"]
    assert sum(1 for c in checks if c[1] == "expect_column_values_to_not_be_null" and c[2] == "ma_ho_so") == 1
    assert ("expect_column_values_to_be_unique", "ma_ho_so") in {(c[1], c[2]) for c in checks}
    # can_bo_huyen (no suite): the key (don_vi, so_nguoi)'s required so_nguoi NULL in one row is quarantined;
    # co_quan is the contract key, so the two rows of 'UBND xã B' are held back as a repeated key
    assert loads["can_bo_huyen"] == (5, 2, 3)
    assert [json.loads(k)[0] for k, _ in can_bo] == ["Sở Y tế", "UBND xã B", "UBND xã B"]
    assert loads["ghi_chu"] == (2, 2, 0) and unchecked == 0
    assert [d for s, d in scores if s == "ghi_chu"] == []  # not checked: nothing scored
    assert [d for s, d in scores if s == "can_bo_huyen"] == ["completeness", "uniqueness"]  # no validity check


def test_missing_required_column_blocks_the_batch(env, tmp_path, monkeypatch):
    home = tmp_path / "home2"
    monkeypatch.setenv("TONGHOP_HOME", str(home))
    cfg = load_tenant(TENANT)
    sources = TenantPaths.for_tenant(TENANT).ensure().sources
    _csv(sources / "ho_so_x.csv", "ma_ho_so,ma_thu_tuc,ngay_nhan,trang_thai,so_cccd,sdt,ngay_cap_nhat", HO_SO[:1])
    _csv(sources / "can_bo_huyen.csv", "don_vi,so_nguoi", CAN_BO[:1])
    (sources / "ghi_chu.csv").write_text("ma,noi_dung\n1,a\n", encoding="utf-8")
    # so_nguoi (-> required can_bo.so_can_bo) gone from the export: the batch is unusable
    bad = cfg.model_copy(update={"sources": [s if s.name != "can_bo_huyen" else s.model_copy(
        update={"primary_key": ["don_vi"], "options": {}}) for s in cfg.sources]})
    (sources / "can_bo_huyen.csv").write_text("don_vi,ghi_chu\nUBND xã A,x\n", encoding="utf-8")
    report = run(bad, run_id="r1")
    assert not report.ok
    assert "column so_nguoi must exist (contract can_bo.so_can_bo is required)" in report.summary()


def test_quality_page_not_checked_and_timeliness_explained(env, monkeypatch):
    from apps import fmt

    monkeypatch.setenv("TONGHOP_TENANT", TENANT)
    from tests.security.signin import signed_in

    at = signed_in(str(REPO / "apps" / "pages" / "2_Chat_luong_du_lieu.py"), "ky_thuat", TENANT, timeout=60)
    assert not at.exception, at.exception
    sources = [h.value for h in at.subheader if h.value.startswith("Nguồn dữ liệu: ")]
    assert sources == ["Nguồn dữ liệu: can_bo_huyen", "Nguồn dữ liệu: ghi_chu", "Nguồn dữ liệu: ho_so_x"]
    metrics = [(m.label, m.value) for m in at.metric]
    nc = "chưa kiểm tra"
    # can_bo_huyen: 1 NULL in 5 rows x 2 required columns; no validity or consistency check -> not checked
    assert metrics[0:4] == [("Đầy đủ", fmt.percent(0.9, 1, "vi")), ("Duy nhất", fmt.percent(1.0, 1, "vi")),
                            ("Hợp lệ", nc), ("Nhất quán", nc)]
    # ghi_chu: no contract, no suite -> every dimension not checked (never 100 %), and a warning says why
    assert metrics[4:8] == [("Đầy đủ", nc), ("Duy nhất", nc), ("Hợp lệ", nc), ("Nhất quán", nc)]
    assert sum("Nguồn này chưa được kiểm tra" in w.value for w in at.warning) == 1
    # ho_so_x: 4 of 6 rows fail a validity check; timeliness scored (incremental column) and explained
    assert metrics[10] == ("Hợp lệ", fmt.percent(2 / 6, 1, "vi")) and metrics[12][0] == "Kịp thời"
    day = env["run_day"]
    lag = (day - datetime(2025, 11, 28).date()).days
    assert (f"Kịp thời: dữ liệu mới nhất 28/11/2025, chạy ngày {day:%d/%m/%Y}: trễ {lag} ngày so với lịch "
            "hằng ngày") in [c.value for c in at.caption]
    at.sidebar.radio[0].set_value("English").run()
    assert [(m.label, m.value) for m in at.metric][4:8] == [
        ("Completeness", "not checked"), ("Uniqueness", "not checked"), ("Validity", "not checked"),
        ("Consistency", "not checked")]
    assert (f"Timeliness: newest data 28/11/2025, run on {day:%d/%m/%Y}: {lag} days behind the daily schedule"
            in [c.value for c in at.caption])


def test_suggest_suite_drafts_reviews_and_never_overwrites(env, capsys):
    target = env["tenants"] / TENANT / "expectations" / "ho_so_x.suggested.json"
    target.unlink(missing_ok=True)
    assert main(["suggest-suite", "--tenant", TENANT, "--source", "ho_so_x"]) == 0
    out = capsys.readouterr().out
    assert "batch r1, 2 promoted rows" in out and str(target) in out
    suite = json.loads(target.read_text(encoding="utf-8"))
    kinds = {(e["type"], e["kwargs"].get("column")): e["kwargs"] for e in suite["expectations"]}
    # profiled on the promoted rows (H1, H5): the quarantined ones are left out
    assert ("expect_column_values_to_be_unique", "ma_thu_tuc") in kinds
    assert kinds[("expect_column_values_to_be_between", "ngay_nhan")]["min_value"] <= "2025-11-03"
    assert kinds[("expect_column_values_to_be_between", "ngay_nhan")]["max_value"] >= "2026-11-07"
    # the contract baseline's checks are not repeated (they run anyway)
    assert ("expect_column_values_to_not_be_null", "ma_ho_so") not in kinds
    # personal columns: no value set, no range
    assert not any(c in ("so_cccd", "sdt") and t.endswith(("in_set", "between")) for t, c in kinds)
    assert main(["suggest-suite", "--tenant", TENANT, "--source", "ho_so_x"]) == 2  # exists: refused
    assert "never overwrites" in capsys.readouterr().err
    assert main(["suggest-suite", "--tenant", TENANT, "--source", "ho_so_x", "--force"]) == 0
    # a draft is not a suite until renamed: validate-config says so when a source names it
    assert main(["suggest-suite", "--tenant", TENANT, "--source", "can_bo_huyen",
                 "--out", str(tmp := target.with_name("cb.json")), "--force"]) == 0
    cb = json.loads(tmp.read_text(encoding="utf-8"))
    # promoted so_nguoi: 3 and 5, widened by 10 % of the range on each side
    assert {"column": "so_nguoi", "min_value": 2, "max_value": 6} in [
        e["kwargs"] for e in cb["expectations"] if e["type"] == "expect_column_values_to_be_between"]
    tmp.unlink()


def test_suggest_suite_while_a_run_writes_says_so(env, capsys):
    wh = TenantPaths.for_tenant(TENANT).warehouse
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('ok', flush=True); time.sleep(60)", str(wh)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        code = main(["suggest-suite", "--tenant", TENANT, "--source", "ho_so_x", "--out", "/dev/null", "--force"])
        err = capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert code == 2
    assert err.startswith("tonghop: error: the warehouse of tenant 'thu-nghiem-dq'")
    assert "is being written by process" in err and "try again" in err and "Traceback" not in err


def test_suggest_suite_without_a_loaded_batch(env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TONGHOP_HOME", str(tmp_path / "empty"))
    assert main(["suggest-suite", "--tenant", TENANT, "--source", "ho_so_x", "--out", str(tmp_path / "s.json")]) == 2
    assert "no warehouse yet" in capsys.readouterr().err
    assert main(["suggest-suite", "--tenant", TENANT, "--source", "nope", "--out", str(tmp_path / "s.json")]) != 0
    assert "has no source 'nope'" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "empty", ignore_errors=True)
