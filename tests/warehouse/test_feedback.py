"""Citizen feedback (phản ánh, kiến nghị): staging.phan_anh and its weekly marts, maintained incrementally.

- On the demo province (the session's published snapshot, copied once for the module): a batch of new feedback
  *and* late updates of old items (answered, days to answer corrected, re-filed under another field, a phone
  number typed into a subject) is built incrementally, and that build equals a full rebuild table by table
  (EXCEPT ALL both ways); nothing personal from the source reaches the new tables.
- On a second, tiny tenant whose feedback system looks nothing like the demo's (a CSV export with English
  column names, text dates, status codes) mapped onto the shared `phan_anh` contract: the same models build
  (they read the contract, not source names), the weekly counts equal a hand computation, and a second batch
  of late updates is maintained incrementally, equal to a full rebuild.

The full rebuild rebuilds the feedback tables in a copy of the incrementally built warehouse, from every promoted
row, with the transform step's own views and model builder (`_rebuild_in_full`): what a full transform does for
them, in a second instead of a whole province's transform (tests/warehouse/test_incremental.py runs that one).
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.config import TenantConfig
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT, copy_demo_tenant, demo_env, serving_demo_portals, step_metrics

pytestmark = pytest.mark.integration
FEEDBACK = {"staging.phan_anh", "marts.phan_anh_tuan", "marts.phan_anh_ton_dong_tuan"}
N_NEW, N_LATE = 12, 15
WHEN = datetime(2025, 11, 3, 9)


def _differences(a: Path, b: Path, tables: set[str]) -> dict[str, tuple[int, int]]:
    """Per table of `tables` in two DuckDB files: rows of a not in b and of b not in a (multiset, EXCEPT ALL), as
    tests/warehouse/test_incremental.py compares them (there over every table)."""
    with duckdb.connect(str(a), read_only=True) as con:
        con.execute(f"ATTACH '{b}' AS other (READ_ONLY)")
        return {t: tuple(con.execute(f"SELECT count(*) FROM (SELECT * FROM {x} EXCEPT ALL SELECT * FROM {y})"
                                     ).fetchone()[0] for x, y in ((t, f"other.{t}"), (f"other.{t}", t)))
                for t in sorted(tables)}


def _rebuild_in_full(warehouse: Path, dst: Path, tenant, tables: set[str]) -> Path:
    """A copy of `warehouse` in which `tables` are built again in full over every promoted row, with the transform
    step's own views and model builder (what a full transform does for them; the other tables, which they read
    and which did not change, are kept): seconds where a whole full transform of the province takes ~15 s."""
    import shutil

    from pipelines.config import load_tenant
    from pipelines.contracts import build_contract_views
    from pipelines.settings import WAREHOUSE_SQL_DIR
    from pipelines.steps import _build_model, _source_views
    from pipelines.warehouse import connect, sql_models

    cfg = load_tenant(tenant) if isinstance(tenant, str) else tenant
    shutil.copy(warehouse, dst)
    with connect(dst) as con:
        con.execute("SET VARIABLE tonghop_pii_key = ?", ["test-key-" + "0" * 40])
        con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
        sources = {s.name for s in cfg.sources if s.contract == "phan_anh"}
        build_contract_views(con, cfg, _source_views(con, cfg, only=sources))
        for model in sql_models():
            if model.qualified in tables:
                _build_model(con, model)
    return dst


# --------------------------------------------------------------------------- the demo province


@pytest.fixture(scope="module")
def portal():
    """The demo's LGSP service of this module (same seed and size as the session's), whose feedback the tests
    change: the session's portal keeps serving the data every other module expects."""
    with serving_demo_portals() as server:
        yield server


@pytest.fixture(scope="module")
def changed(province_snapshot: Path, portal, tmp_path_factory):
    """The published province after a run that promoted one batch of new feedback and late updates."""
    from pipelines.demo.feedback import feedback_changes

    home = tmp_path_factory.mktemp("feedback")
    paths = copy_demo_tenant(province_snapshot.parent.parent, home)
    before = list(portal.data.feedback)
    portal.data.feedback, counts = feedback_changes(before, n_new=N_NEW, n_late=N_LATE, when=WHEN)
    with pytest.MonkeyPatch.context() as mp:
        demo_env(mp, home, portal)
        report = run(DEMO_TENANT, steps=["extract_load", "validate", "transform"], run_id="fb",
                     only_sources=["phan_anh_kien_nghi"])
    assert report.ok, report.summary()
    return home, paths, report, counts, before


def test_feedback_incremental_build_equals_a_full_rebuild(changed, province_snapshot, tmp_path):
    home, paths, report, counts, before = changed
    assert counts == {"n_new": N_NEW, "n_late": N_LATE}
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:  # the pull read only what changed
        assert con.execute("SELECT n_rows_read, status FROM meta.loads WHERE batch_id = 'fb' "
                           "AND source = 'phan_anh_kien_nghi'").fetchall() == [(N_NEW + N_LATE, "passed")]
    transform = step_metrics(report, "transform")
    assert transform["build"] == "incremental", transform["reason"]
    # only the feedback tables followed the change; the dossier tables were kept as they were
    assert set(transform["incremental"]) == FEEDBACK, transform["incremental"]
    assert transform["tables"]["staging.phan_anh"] == len(before) + N_NEW
    # the batch really changed every feedback table (so that the comparison below means something)
    moved = _differences(province_snapshot, paths.warehouse, FEEDBACK)
    assert all(moved[t] != (0, 0) for t in FEEDBACK), moved
    full = _rebuild_in_full(paths.warehouse, tmp_path / "full.duckdb", DEMO_TENANT, FEEDBACK)
    assert _differences(paths.warehouse, full, FEEDBACK) == dict.fromkeys(sorted(FEEDBACK), (0, 0))


def test_late_updates_replace_the_old_version(changed):
    _, paths, _, _, before = changed
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        # the first late update: re-filed under another field, answered, a phone number typed into its subject
        first = before[3]
        row = con.execute("SELECT linh_vuc, trang_thai, is_answered, tieu_de, cap_nhat_at FROM staging.phan_anh "
                          "WHERE ma_phan_anh = ?", [first["ma_phan_anh"]]).fetchall()
        assert len(row) == 1
        linh_vuc, trang_thai, answered, tieu_de, updated = row[0]
        assert linh_vuc != first["linh_vuc"] and trang_thai == "da_tra_loi" and answered
        assert tieu_de.startswith(first["tieu_de"]) and tieu_de.endswith("số ***") and updated > WHEN
        assert con.execute("SELECT count(*), count(DISTINCT ma_phan_anh) FROM staging.phan_anh").fetchone() == \
            (len(before) + N_NEW,) * 2
        assert con.execute("SELECT max(data_as_of) FROM staging.phan_anh").fetchone()[0] == WHEN.date()


def _assert_no_source_values(warehouse: Path, raw_table: str, raw_columns: tuple[str, ...], values: set[str]) -> None:
    """None of `values` (the source's names, phones, addresses) inside any text of the feedback tables; the
    phone kept only as a token; no name or address column at all."""
    from pipelines.reference.pii import scan_relation

    with duckdb.connect(str(warehouse), read_only=True) as con:
        # the source did send them: raw holds the originals (the check below can fail)
        for column in raw_columns:
            held = {v for (v,) in con.execute(f'SELECT "{column}" FROM raw.{raw_table}').fetchall()}
            assert held and held <= values, column
        con.execute("CREATE TEMP TABLE needle AS SELECT unnest(?::VARCHAR[]) AS v", [sorted(values)])
        for table in sorted(FEEDBACK):
            s, t = table.split(".")
            for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
                                    "AND table_name = ? AND data_type = 'VARCHAR'", [s, t]).fetchall():
                found = con.execute(f'SELECT any_value(needle.v) FROM {table} x JOIN needle ON contains(x."{c}", needle.v)'
                                    ).fetchone()[0]
                assert found is None, f"{table}.{c} holds a name, phone or address from the source"
            assert scan_relation(con, table, table) == []
        n, tokens = con.execute("SELECT count(*), count(nguoi_gui_token) FILTER (WHERE starts_with(nguoi_gui_token, "
                                "'ps_')) FROM staging.phan_anh").fetchone()
        assert n == tokens > 0
        columns = {c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE staging.phan_anh)").fetchall()}
        assert not {c for c in columns if "ho_ten" in c or "dia_chi" in c or "dien_thoai" in c}


def _personal_values(records: list[dict], name: str, phone: str, address: str) -> set[str]:
    """Names, phones (as written and their last 9 digits) and addresses of `records`."""
    out = set()
    for r in records:
        out |= {str(r[k]) for k in (name, phone, address) if r.get(k)}
        out.add("".join(ch for ch in str(r[phone]) if ch.isdigit())[-9:])
    return out


def test_no_personal_data_from_the_source_in_the_feedback_tables(changed, portal):
    _, paths, _, _, _ = changed
    values = _personal_values(portal.data.feedback, "ho_ten", "so_dien_thoai", "dia_chi")
    _assert_no_source_values(paths.warehouse, "phan_anh_kien_nghi", ("ho_ten", "so_dien_thoai", "dia_chi"), values)


# --------------------------------------------------------------------------- a second tenant, by hand

# Ward 14071 (Xã Minh Thái, Ninh Bình) in the current codes; 99999 resolves to no commune.
HEADER = ["feedbackId", "subject", "category", "ward_code", "channel", "submitted_at", "status_code", "days_to_answer",
          "updated_at", "sender_name", "sender_phone", "sender_address"]
#  id, field, ward, sent (dd/mm/yyyy), status, days, updated
ITEMS = [
    ("F1", "Đất đai", "14071", "06/10/2025 08:00", "ANSWERED", 3, "09/10/2025 10:00"),
    ("F2", "Đất đai", "14071", "07/10/2025 08:00", "ANSWERED", 20, "27/10/2025 10:00"),
    ("F3", "Đất đai", "14071", "08/10/2025 08:00", "IN_PROGRESS", None, "10/10/2025 10:00"),
    ("F4", "Đất đai", "14071", "14/10/2025 08:00", "ANSWERED", 5, "19/10/2025 10:00"),
    ("F5", "Môi trường", "14071", "14/10/2025 08:00", "NEW", None, "29/10/2025 10:00"),  # data_as_of: 29/10
    ("F6", "Đất đai", "99999", "06/10/2025 09:00", "ANSWERED", 9, "15/10/2025 10:00"),
    ("F7", "Đất đai", "14071", "09/10/2025 08:00", "ANSWERED", 2, "11/10/2025 10:00"),
]
SECOND = {  # a day later: F3 answered late (16 days), F5 re-filed under 'Đất đai', F8 new
    "F3": ("F3", "Đất đai", "14071", "08/10/2025 08:00", "ANSWERED", 16, "30/10/2025 09:00"),
    "F5": ("F5", "Đất đai", "14071", "14/10/2025 08:00", "NEW", None, "30/10/2025 09:30"),
    "F8": ("F8", "Môi trường", "99999", "30/10/2025 08:00", "NEW", None, "30/10/2025 08:00"),
}
SECOND_TENANT = {
    "tenant_id": "tinh-thu-gop-y", "display_name": "Tỉnh Thử (góp ý)", "kind": "province", "admin_code": "98",
    "sources": [{
        "name": "gop_y_cong_dan", "kind": "csv", "location": "sources/gop_y.csv",
        "description": "Góp ý, phản ánh (xuất CSV, cột tiếng Anh, ngày dd/mm/yyyy, mã trạng thái)",
        "options": {"delimiter": ",", "encoding": "utf-8",
                    "types": {"ward_code": "VARCHAR", "days_to_answer": "INTEGER", "sender_phone": "VARCHAR",
                              "submitted_at": "VARCHAR", "updated_at": "VARCHAR"}},
        "primary_key": ["feedbackId"], "personal_columns": ["sender_name", "sender_phone", "sender_address"],
        "contract": "phan_anh",
        "mapping": {
            "ma_phan_anh": "feedbackId", "tieu_de": "subject", "linh_vuc": "category", "ma_xa": "ward_code",
            "kenh_tiep_nhan": "channel", "ngay_gui": "try_strptime(submitted_at, '%d/%m/%Y %H:%M')",
            "trang_thai": "CASE status_code WHEN 'ANSWERED' THEN 'da_tra_loi' WHEN 'IN_PROGRESS' THEN 'dang_xu_ly' "
                          "ELSE 'moi_tiep_nhan' END",
            "so_ngay_xu_ly": "days_to_answer", "ngay_cap_nhat": "try_strptime(updated_at, '%d/%m/%Y %H:%M')",
            "ho_ten_nguoi_gui": "sender_name", "so_dien_thoai_nguoi_gui": "sender_phone",
            "dia_chi_nguoi_gui": "sender_address"},
    }],
}


def _rows(items) -> list[dict]:
    out = []
    for i, (fid, field, ward, sent, status, days, updated) in enumerate(items):
        subject = "Đường xuống cấp" if fid != "F2" else "Đề nghị gọi lại 0912 345 678"  # a phone in free text
        out.append(dict(zip(HEADER, [fid, subject, field, ward, "Cổng", sent, status, "" if days is None else days,
                                     updated, f"Trần Thị Gửi {fid}", f"+84 912 345 6{i:02d}", f"Số {i} thôn Đông"],
                            strict=True)))
    return out


def _write_items(path: Path, items) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, HEADER)
        w.writeheader()
        w.writerows(_rows(items))


@pytest.fixture(scope="module")
def second_tenant(tmp_path_factory):
    """A tenant whose only source is a feedback CSV export, built from two batches (the second: late updates).
    Its key column is camelCase (`feedbackId`, like the ministry's `applicationNo`): still built from the change."""
    home = tmp_path_factory.mktemp("second_tenant")
    cfg = TenantConfig.model_validate(SECOND_TENANT)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"TONGHOP_HOME": str(home), "TONGHOP_PII_KEY": "test-key-" + "0" * 40,
                     "GX_ANALYTICS_ENABLED": "false"}.items():
            mp.setenv(k, v)
        paths = TenantPaths.for_tenant(cfg.tenant_id).ensure()
        _write_items(paths.sources / "gop_y.csv", ITEMS)
        first = run(cfg, steps=["extract_load", "validate", "transform"], run_id="b1")
        assert first.ok, first.summary()
        with duckdb.connect(str(paths.warehouse), read_only=True) as con:
            tables = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                      for t in ("marts.phan_anh_tuan", "marts.phan_anh_ton_dong_tuan")}
        items = [SECOND.get(i[0], i) for i in ITEMS] + [SECOND["F8"]]
        _write_items(paths.sources / "gop_y.csv", items)
        second = run(cfg, steps=["extract_load", "validate", "transform"], run_id="b2")
        assert second.ok, second.summary()
    return home, cfg, paths, first, tables, second


def test_a_second_tenant_gets_the_feedback_tables_from_the_contract(second_tenant):
    _, _, _, first, _, _ = second_tenant
    built = step_metrics(first, "transform")["tables"]
    assert built["staging.phan_anh"] == len(ITEMS)
    assert FEEDBACK <= set(built)
    # the dossier models read a contract this tenant does not feed: skipped, not failed
    assert "staging.ho_so" in step_metrics(first, "transform")["skipped"]


def test_weekly_counts_match_a_hand_computation(second_tenant):
    _, _, _, _, tables, _ = second_tenant
    d = datetime.strptime
    mon = {k: d(v, "%Y-%m-%d").date() for k, v in
           {"A": "2025-10-06", "B": "2025-10-13", "D": "2025-10-27"}.items()}
    xa = "Xã Minh Thái"
    # received that week; answered that week: all, on time, late, median and mean days; received that week and
    # still open, of which past the 15-day deadline on data_as_of (29/10)
    assert tables["marts.phan_anh_tuan"] == sorted([
        # F1, F2, F3, F7 received in A; F1 (3 days) and F7 (2 days) answered in A; F3 open since 08/10: overdue
        (mon["A"], "Đất đai", "14071", xa, 4, 2, 2, 0, 2.5, 2.5, 1, 1),
        (mon["A"], "Đất đai", None, None, 1, 0, 0, 0, None, None, 0, 0),    # F6 (ward 99999: unresolved)
        (mon["B"], "Môi trường", "14071", xa, 1, 0, 0, 0, None, None, 1, 0),  # F5, due 29/10: not past it
        (mon["B"], "Đất đai", "14071", xa, 1, 1, 1, 0, 5.0, 5.0, 0, 0),     # F4 sent and answered in B
        (mon["B"], "Đất đai", None, None, 0, 1, 1, 0, 9.0, 9.0, 0, 0),      # F6 answered 15/10
        (mon["D"], "Đất đai", "14071", xa, 0, 1, 0, 1, 20.0, 20.0, 0, 0),   # F2 answered 27/10, 20 days: late
    ], key=lambda r: tuple((x is None, x) for x in r))
    day = {k: d(f"2025-10-{k}", "%Y-%m-%d").date() for k in ("12", "19", "26", "29")}
    # open at each week end (the last one ends on data_as_of), and of those past their due date then
    assert tables["marts.phan_anh_ton_dong_tuan"] == [
        (day["12"], "Đất đai", 3, 0),      # F2, F3, F6 (answered 15/10)
        (day["19"], "Môi trường", 1, 0),   # F5
        (day["19"], "Đất đai", 2, 0),      # F2, F3
        (day["26"], "Môi trường", 1, 0),
        (day["26"], "Đất đai", 2, 2),      # F2 (due 22/10), F3 (due 23/10)
        (day["29"], "Môi trường", 1, 0),   # F5 due 29/10: not yet past
        (day["29"], "Đất đai", 1, 1),      # F3
    ]


def test_second_tenant_late_updates_build_incrementally_equal_to_a_full_rebuild(second_tenant, tmp_path):
    _, cfg, paths, _, _, second = second_tenant
    transform = step_metrics(second, "transform")
    assert transform["build"] == "incremental", transform["reason"]
    assert set(transform["incremental"]) == FEEDBACK
    full = _rebuild_in_full(paths.warehouse, tmp_path / "full.duckdb", cfg, FEEDBACK)
    assert _differences(paths.warehouse, full, FEEDBACK) == dict.fromkeys(sorted(FEEDBACK), (0, 0))
    values = _personal_values(_rows([SECOND.get(i[0], i) for i in ITEMS] + [SECOND["F8"]]) + [
        {"sender_phone": "0912 345 678"}], "sender_name", "sender_phone", "sender_address")
    _assert_no_source_values(paths.warehouse, "gop_y_cong_dan", ("sender_name", "sender_phone", "sender_address"),
                             values)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        assert con.execute("SELECT ma_phan_anh, linh_vuc, ngay_tra_loi, is_late FROM staging.phan_anh "
                           "WHERE ma_phan_anh IN ('F3', 'F5') ORDER BY 1").fetchall() == [
            ("F3", "Đất đai", datetime(2025, 10, 24).date(), True), ("F5", "Đất đai", None, False)]
