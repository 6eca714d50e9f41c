"""The demo province through extract_load → validate → transform → publish once per module, then: no
personal data in the snapshot or any export, one token per person, units normalised, every column
documented, retention on a moved clock."""

from __future__ import annotations

import shutil
from datetime import timedelta

import duckdb
import pytest

from pipelines.cli import main
from pipelines.config import load_tenant
from pipelines.export import ExportError, export_table
from pipelines.reference.pii import CCCD, scan_database, scan_file
from pipelines.runner import run
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_TENANT

pytestmark = pytest.mark.integration
# train is left out: models are another module's business, and these checks are about the SQL layers;
# so are the sources other modules add (a local HTTP service, a database): only the demo's files load.
STEPS = ["extract_load", "validate", "transform", "publish"]
SOURCES = ["ho_so", "chi_so_xa_hoi_so", "chi_so_cds_tinh", "dang_ky_kinh_doanh", "dang_ky_kinh_doanh_cu"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo_sources):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TONGHOP_HOME", str(home))
        mp.setenv("TONGHOP_PII_KEY", "test-key-" + "0" * 40)
        mp.setenv("GX_ANALYTICS_ENABLED", "false")
        cfg = load_tenant(DEMO_TENANT)
        paths = TenantPaths.for_tenant(cfg.tenant_id).ensure()
        for f in demo_sources.iterdir():
            shutil.copy(f, paths.sources / f.name)
        report = run(cfg, steps=STEPS, run_id="r1", only_sources=SOURCES)
        assert report.ok, report.summary()
    return home, cfg, paths


def _q(path, sql, params=None):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_no_personal_data_in_any_snapshot_table(built):
    _, _, paths = built
    assert scan_database(paths.snapshot) == []
    # The scanner can fail: raw in the warehouse still holds the originals (CCCDs and phones).
    hits = scan_database(paths.warehouse, schemas=("raw",))
    assert {h.kind for h in hits} == {"cccd", "phone"}
    assert {h.column for h in hits} >= {"so_cccd", "so_dien_thoai"}


def test_no_personal_data_in_any_export(built, monkeypatch, tmp_path, capsys):
    home, _, paths = built
    monkeypatch.setenv("TONGHOP_HOME", str(home))
    tables = [f"{s}.{t}" for s, t in _q(paths.snapshot, "SELECT table_schema, table_name FROM information_schema.tables "
                                                         "WHERE table_schema IN ('staging', 'marts') ORDER BY 1, 2")]
    assert "marts.ho_so_thu_tuc_tuan" in tables and "staging.ho_so" in tables
    for table in tables:
        for fmt in ("csv", "parquet"):
            out = tmp_path / f"{table}.{fmt}"
            assert main(["export", "--tenant", DEMO_TENANT, "--table", table, "--format", fmt, "--out", str(out)]) == 0
            assert scan_file(out) == [], f"{out.name} carries personal data"
    # Default location, and the exported rows are the snapshot's rows.
    assert main(["export", "--tenant", DEMO_TENANT, "--table", "marts.ho_so_tuan"]) == 0
    exported = paths.root / "exports" / "marts.ho_so_tuan.csv"
    n = _q(paths.snapshot, "SELECT count(*) FROM marts.ho_so_tuan")[0][0]
    assert len(exported.read_text(encoding="utf-8").splitlines()) == n + 1  # plus the header
    capsys.readouterr()


def test_export_refuses_personal_data_and_unknown_tables(tmp_path):
    snap = tmp_path / "serving.duckdb"
    con = duckdb.connect(str(snap))
    con.execute("CREATE SCHEMA marts")
    con.execute("CREATE TABLE marts.leak AS SELECT 'ps_abc' AS token, '0912 345 678' AS so_dien_thoai")
    con.close()
    with pytest.raises(ExportError, match="so_dien_thoai"):
        export_table(snap, "marts.leak", "csv", tmp_path / "leak.csv")
    assert not list(tmp_path.glob("*leak.csv*"))  # nothing left behind, not even the temp file
    with pytest.raises(ExportError, match="not in the serving snapshot"):
        export_table(snap, "marts.khong_co", "csv", tmp_path / "x.csv")
    with pytest.raises(ExportError, match="schema one of"):
        export_table(snap, "raw.ho_so", "parquet", tmp_path / "x.parquet")


def test_one_token_per_person_and_flags_from_raw(built):
    from pipelines.settings import WAREHOUSE_SQL_DIR

    _, _, paths = built
    con = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        con.execute("SET VARIABLE tonghop_pii_key = ?", ["test-key-" + "0" * 40])
        con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
        n, n_normalised_first, n_as_written, n_written_0x, n_valid_phone, n_valid_cccd = con.execute("""
            SELECT count(*),
                   count(*) FILTER (WHERE s.dien_thoai_token = pseudonymize(phone_normalize(r.so_dien_thoai))),
                   count(*) FILTER (WHERE s.dien_thoai_token = pseudonymize(r.so_dien_thoai)),
                   count(*) FILTER (WHERE regexp_full_match(r.so_dien_thoai, '0[0-9]{9}')),
                   count(*) FILTER (WHERE s.is_phone_valid), count(*) FILTER (WHERE s.is_cccd_valid)
            FROM staging.ho_so s JOIN raw.ho_so r USING (ma_ho_so)""").fetchone()
    finally:
        con.close()
    # Every token is the pseudonym of the normalised number; hashing the number as written would give the
    # same token only for the 62 % the demo writes as 0xxxxxxxxx (people.PHONE_FORMS), not for +84 / spaced forms.
    assert n_normalised_first == n
    assert n_as_written == n_written_0x < 0.7 * n
    # Rows failing the 12-digit check are quarantined before staging and the generator writes only valid
    # numbers otherwise: every promoted CCCD and phone is valid (flags computed from raw, kept in staging).
    assert n_valid_phone == n_valid_cccd == n


def test_units_normalised_and_unmatched_listed(built):
    _, _, paths = built
    (n, n_matched), = _q(paths.snapshot, "SELECT count(*), count(ma_xa) FROM staging.ho_so")
    (n_xhs, n_xhs_matched), = _q(paths.snapshot, "SELECT count(*), count(ma_xa) FROM staging.xa_hoi_so")
    n_listed = _q(paths.snapshot, "SELECT coalesce(sum(n_ban_ghi), 0) FROM staging.don_vi_chua_khop")[0][0]
    # Every record either resolves to a current commune or is listed, never dropped or guessed.
    assert n_matched + n_xhs_matched + n_listed == n + n_xhs
    assert n_matched == n and n_xhs_matched == n_xhs  # promoted rows carry current codes only (see quarantine)
    # Business registry: free-text head-office addresses, about a third still pre-2025 (with a district).
    (n_dn, n_dn_matched, n_old), = _q(paths.snapshot, "SELECT count(*), count(ma_xa), "
                                      "count(*) FILTER (WHERE huyen_trong_dia_chi IS NOT NULL) FROM staging.doanh_nghiep")
    n_dn_listed = _q(paths.snapshot, "SELECT coalesce(sum(n_ban_ghi), 0) FROM staging.dia_chi_chua_khop")[0][0]
    assert n_dn_matched + n_dn_listed == n_dn and n_old > 0.2 * n_dn
    # the only unresolved ones are wards divided among several communes (ambiguous), never guessed
    assert n_dn_matched > 0.97 * n_dn
    assert _q(paths.snapshot, "SELECT DISTINCT trang_thai_khop_don_vi FROM staging.dia_chi_chua_khop") in ([], [("mo_ho",)])


def test_every_column_documented_and_dictionary_written(built, monkeypatch):
    from pipelines.dictionary import undocumented

    home, cfg, paths = built
    con = duckdb.connect(str(paths.snapshot), read_only=True)
    try:
        assert undocumented(con) == []
        n_columns, n_described = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE column_description <> '') FROM meta.data_dictionary").fetchone()
        n_tables = con.execute("SELECT count(DISTINCT table_schema || table_name) FROM meta.data_dictionary").fetchone()[0]
    finally:
        con.close()
    assert n_columns == n_described > 150 and n_tables >= 18
    monkeypatch.setenv("TONGHOP_HOME", str(home))
    assert main(["dictionary", "--tenant", DEMO_TENANT]) == 0
    md = (paths.root / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert "## `marts.ho_so_thu_tuc_tuan`" in md and "`nguoi_nop_token`" in md
    assert (paths.root / "docs" / "data-dictionary.html").read_text(encoding="utf-8").count("<h2") == n_tables


def test_scorecard_has_every_2023_target(built):
    _, _, paths = built
    latest = dict(_q(paths.snapshot, "SELECT ma_chi_tieu, is_dat FROM marts.chuyen_doi_so_chi_tieu WHERE is_nam_moi_nhat"))
    # 5 plans + 2 economy shares + 8 digital-society components + 1 DTI indicator, each with data.
    assert len(latest) == 16
    # The demo report: digital economy 15.6 % (target > 16 %: not met), e-commerce 9.1 % (> 8.5 %: met).
    assert latest["kinh_te_so_ty_trong_grdp"] is False and latest["tmdt_ty_trong_ban_le"] is True
    kinds = dict(_q(paths.snapshot, "SELECT phan_loai, count(*) FROM marts.danh_muc_csdl GROUP BY 1"))
    assert kinds == {"quoc_gia": 1, "dung_chung": 2, "noi_bo": 1}  # the four databases in tenants/ninh-binh.yaml


def test_retention_tokenises_expired_raw_and_keeps_joins(built, tmp_path):
    from pipelines.reference.retention import purge_raw
    from pipelines.settings import WAREHOUSE_SQL_DIR

    _, cfg, paths = built
    wh = tmp_path / "warehouse.duckdb"
    shutil.copy(paths.warehouse, wh)
    con = duckdb.connect(str(wh))
    try:
        con.execute("SET VARIABLE tonghop_pii_key = ?", ["test-key-" + "0" * 40])
        con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
        loaded_at = con.execute("SELECT max(_loaded_at) FROM raw.ho_so").fetchone()[0]
        tokens_before = con.execute("SELECT ma_ho_so, nguoi_nop_token, dien_thoai_token FROM staging.ho_so "
                                    "ORDER BY 1").fetchall()
        # The clock one day short of the retention: nothing happens.
        assert purge_raw(con, cfg, loaded_at + timedelta(days=cfg.retention.raw_days - 1)) == \
               {"n_rows_deleted": 0, "n_rows_pseudonymised": 0}
        # One day past it: every promoted row of the sources with personal columns (the dossiers and both
        # business-registry exports) is tokenised in place.
        personal = [s.name for s in cfg.sources if s.personal_columns and s.name in SOURCES]
        assert personal == ["ho_so", "dang_ky_kinh_doanh", "dang_ky_kinh_doanh_cu"]
        n_raw = sum(con.execute(f'SELECT count(*) FROM raw."{name}"').fetchone()[0] for name in personal)
        result = purge_raw(con, cfg, loaded_at + timedelta(days=cfg.retention.raw_days + 1))
        assert result == {"n_rows_deleted": 0, "n_rows_pseudonymised": n_raw}
        assert not [v for (v,) in con.execute("SELECT so_cccd FROM raw.ho_so").fetchall() if v and CCCD.search(v)]
        # A second purge has nothing left to do, and the staging rebuilt from tokenised raw keeps the tokens.
        assert purge_raw(con, cfg, loaded_at + timedelta(days=400))["n_rows_pseudonymised"] == 0
        from pipelines.steps import _source_views

        con.close()  # reopened as a new transform would: the purge was committed
        con = duckdb.connect(str(wh))
        con.execute("SET VARIABLE tonghop_pii_key = ?", ["test-key-" + "0" * 40])
        con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
        _source_views(con, cfg)
        after = con.execute("SELECT ma_ho_so, so_cccd, so_dien_thoai FROM src_ho_so "
                            "WHERE ma_ho_so IN (SELECT ma_ho_so FROM staging.ho_so) ORDER BY 1").fetchall()
        assert after == tokens_before
        assert con.execute("SELECT count(*), min(action) FROM meta.retention_purges").fetchone() == (
            len(personal), "pseudonymised")
    finally:
        con.close()
