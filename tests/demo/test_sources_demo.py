"""The demo province's sources look like a real province's: a one-stop-shop database (SQLite, PostgreSQL), a
legacy-encoded business-registry CSV with pre-2025 addresses, an LGSP API and a CKAN portal."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
import urllib.error
import urllib.request
from contextlib import closing
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from pipelines.demo import generate
from pipelines.demo.business_registry import business_registry, is_tax_code_valid, to_cp1258, to_tcvn3
from pipelines.demo.catalogue import DEPARTMENTS, PROCEDURES
from pipelines.demo.onestop_db import content_digest, load_postgres, tables
from pipelines.demo.servers import resource_id
from pipelines.reference.identifiers import is_mst_valid
from pipelines.sources import tcvn3
from tests.conftest import serving_demo_portals

ROWS = 2_000  # small: these tests check shapes and encodings, not statistics
N_COMMUNES = 129  # Ninh Bình's communes and wards after 1 July 2025 (vietnam-provinces)
TOKEN = "unit-test-token"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, rows=ROWS, seed=37)
    return out


@pytest.fixture(scope="module")
def portals():
    with serving_demo_portals(ROWS, TOKEN) as server:
        yield server.base_url


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --- one-stop-shop database ---------------------------------------------------------------------------------

def test_sqlite_holds_the_csv_rows_and_sources_are_deterministic(demo_dir: Path, tmp_path: Path):
    db = demo_dir / "mot_cua.sqlite"
    csv = pl.read_csv(demo_dir / "ho_so_mot_cua.csv", infer_schema=False)
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        ids = [r[0] for r in con.execute("SELECT ma_ho_so FROM ho_so ORDER BY rowid")]
        first = con.execute("SELECT ngay_nhan, ngay_cap_nhat FROM ho_so ORDER BY rowid LIMIT 1").fetchone()
    # Same rows in the same order as the CSV export (planted duplicates included: old systems have no key).
    assert ids == csv["ma_ho_so"].to_list()
    # ISO text, so `ngay_cap_nhat > '<watermark>'` compares as time does; the CSV says dd/mm/yyyy.
    assert first[0] == date(*reversed([int(x) for x in csv["ngay_nhan"][0].split("/")])).isoformat()
    assert len(first[1]) == 19 and first[1][10] == " "

    again = generate(tmp_path / "again", rows=ROWS, seed=37)
    other = generate(tmp_path / "other", rows=ROWS, seed=38)
    assert again["mot_cua"].read_bytes() == db.read_bytes()  # fixed page size, fixed row order
    assert content_digest(again["mot_cua"]) == content_digest(db) != content_digest(other["mot_cua"])
    registry = (demo_dir / "dang_ky_kinh_doanh.csv").read_bytes()
    assert again["dang_ky_kinh_doanh"].read_bytes() == registry != other["dang_ky_kinh_doanh"].read_bytes()


def test_sqlite_reference_tables_match_the_dossiers(demo_dir: Path):
    with closing(sqlite3.connect(f"file:{demo_dir / 'mot_cua.sqlite'}?mode=ro", uri=True)) as con:
        n_agencies = con.execute("SELECT count(*) FROM co_quan").fetchone()[0]
        procedures = dict(con.execute("SELECT ma_thu_tuc, so_ngay_giai_quyet FROM thu_tuc").fetchall())
        orphans = con.execute("SELECT count(*) FROM ho_so h LEFT JOIN co_quan c ON c.ten_co_quan = h.co_quan "
                              "LEFT JOIN thu_tuc t USING (ma_thu_tuc) WHERE c.ma_co_quan IS NULL "
                              "OR t.ma_thu_tuc IS NULL").fetchone()[0]
    assert n_agencies == len(DEPARTMENTS) + N_COMMUNES  # the departments and each commune People's Committee
    assert procedures == {p.code: p.legal_days for p in PROCEDURES}
    assert orphans == 0  # every dossier names a known agency and procedure


def test_tenant_reads_the_database_with_dates_typed(demo_tenant):
    from pipelines.settings import TenantPaths
    from pipelines.sources import reader_for

    source = next(s for s in demo_tenant.sources if s.name == "ho_so")
    assert source.kind == "sqlite" and source.incremental_column == "ngay_cap_nhat"
    con = duckdb.connect()
    extract = reader_for("sqlite")(source, con, TenantPaths.for_tenant(demo_tenant.tenant_id))
    types = dict(zip(extract.relation.columns, map(str, extract.relation.types), strict=True))
    # What warehouse/staging/ho_so.sql and the GX suite expect of the former CSV source.
    assert types["ngay_nhan"] == types["ngay_hen_tra"] == types["ngay_tra"] == "DATE"
    assert types["ngay_cap_nhat"] == "TIMESTAMP" and types["ma_xa"] == "VARCHAR"


def test_postgres_loader_copies_the_same_tables(postgres_server):
    from pipelines.demo.dossiers import dossiers

    frame = dossiers(500, 37, date(2025, 11, 1))
    written = load_postgres(postgres_server.dsn, frame)
    assert written == {"co_quan": len(DEPARTMENTS) + N_COMMUNES, "thu_tuc": len(PROCEDURES), "ho_so": 500}
    load_postgres(postgres_server.dsn, frame)  # a second demo replaces, never appends
    import psycopg

    with psycopg.connect(postgres_server.dsn) as conn:
        n, kind, newest = conn.execute("SELECT count(*), pg_typeof(min(ngay_nhan))::text, max(ngay_cap_nhat)::text "
                                       "FROM ho_so").fetchone()
    assert (n, kind) == (500, "date")
    assert newest == tables(frame)["ho_so"]["ngay_cap_nhat"].max()


# --- business registry: Windows-1258, pre-2025 addresses, tax codes -----------------------------------------

def test_business_registry_is_windows_1258_with_legacy_addresses(demo_dir: Path):
    raw = (demo_dir / "dang_ky_kinh_doanh.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # a UTF-8 reader must not take it silently
    text = raw.decode("cp1258")
    assert "\u0301" in text or "\u0300" in text  # tones are combining marks, as Windows writes them
    nfc = unicodedata.normalize("NFC", text)
    assert "Công ty" in nfc and "tỉnh Ninh Bình" in nfc
    lines = nfc.split("\r\n")
    assert lines[0].split(";")[0] == "ma_so_thue" and lines[-1] == ""
    rows = lines[1:-1]
    old = tcvn3.decode((demo_dir / "dang_ky_kinh_doanh_cu.csv").read_bytes()).split("\r\n")[1:-1]
    # One enterprise per 20 dossiers (at least 200), the pre-2008 ones only in the TCVN3 export.
    assert len(rows) + len(old) == max(200, ROWS // 20) and 0 < len(old) < len(rows)
    assert all(int(r.split(";")[4][-4:]) < 2008 for r in old)
    assert all(int(r.split(";")[4][-4:]) >= 2008 for r in rows)
    legacy = [r for r in rows if any(k in r for k in ("huyện ", "thành phố ", "thị xã "))]
    # About a third (35 %) still use district-based units, some of provinces merged into Ninh Bình.
    assert 0.2 < len(legacy) / len(rows) < 0.5
    assert any("tỉnh Nam Định" in r for r in legacy) and any("tỉnh Hà Nam" in r for r in legacy)


@pytest.mark.parametrize("name", ["dang_ky_kinh_doanh", "dang_ky_kinh_doanh_cu"])
def test_business_registry_reads_as_nfc_with_vietnamese_formats(demo_tenant, name):
    """The tenant's csv source (windows-1258 / tcvn3, `;`, decimal comma, dd/mm/yyyy) gives typed NFC rows."""
    from pipelines.settings import TenantPaths
    from pipelines.sources import reader_for

    source = next(s for s in demo_tenant.sources if s.name == name)
    con = duckdb.connect()
    extract = reader_for("csv")(source, con, TenantPaths.for_tenant(demo_tenant.tenant_id))
    try:
        rel = extract.relation
        types = dict(zip(rel.columns, map(str, rel.types), strict=True))
        assert types["ngay_dang_ky"] == "DATE" and types["von_dieu_le"] == "BIGINT"
        assert types["dien_tich_tru_so_m2"] == "DOUBLE"
        texts = [v for row in rel.project("ten_doanh_nghiep, dia_chi, ho_ten_nguoi_dai_dien").fetchall() for v in row]
        smallest, unique = rel.aggregate("min(von_dieu_le), count(DISTINCT ma_so_thue) = count(*)").fetchall()[0]
    finally:
        for undo in extract.cleanup:
            undo()
    assert all(unicodedata.is_normalized("NFC", t) for t in texts)
    assert any("Ninh Bình" in t for t in texts) and any("ư" in t or "ơ" in t for t in texts)
    assert smallest >= 100_000_000 and unique  # capital in whole hundreds of millions of đồng; one row per code


def test_tax_codes_carry_check_digits_a_few_wrong():
    frame = business_registry(2_000, date(2025, 11, 1), np.random.default_rng(5))
    codes = frame["ma_so_thue"].to_list()
    assert all(len(c) == 10 and c.isdigit() for c in codes) and len(set(codes)) == len(codes)
    # The generator's rule is the warehouse's rule (pipelines.reference.identifiers).
    assert [is_tax_code_valid(c) for c in codes] == [is_mst_valid(c) for c in codes]
    n_bad = sum(not is_mst_valid(c) for c in codes)
    assert 25 <= n_bad <= 100  # 3 % of 2,000 = 60 expected; ±35 is beyond 4 standard deviations (≈7.6)
    assert is_tax_code_valid("0100109106") and not is_tax_code_valid("0100109107")  # Viettel's real code


def test_cp1258_encoding_round_trips_vietnamese():
    text = "Nguyễn Thị Hường; Đồng Hỷ; tỉnh Ninh Bình"
    raw = to_cp1258(text)
    assert unicodedata.normalize("NFC", raw.decode("cp1258")) == text
    assert len(raw) > len(text.encode("cp1258", errors="ignore"))  # tones written as separate bytes
    # TCVN3 has no capitals with tones: they come back lower case, everything else exactly.
    assert tcvn3.decode(to_tcvn3("Ý Yên, Đặng Thị Ánh")) == "ý Yên, Đặng Thị ánh"


# --- LGSP API and CKAN portal --------------------------------------------------------------------------------

def test_api_needs_the_token_and_paginates(portals: str):
    url = f"{portals}/lgsp/api/v1/phan-anh-kien-nghi"
    assert _get(f"{url}?page=1&page_size=10")[0] == 401
    assert _get(f"{url}?page=1&page_size=10", token="wrong")[0] == 401
    seen, page = [], 1
    while True:
        status, body = _get(f"{url}?page={page}&page_size=70", TOKEN)
        assert status == 200
        items = body["data"]["items"]
        seen += items
        if len(items) < 70:
            break
        page += 1
    total = max(200, ROWS // 10)  # one feedback record per 10 dossiers, at least 200
    assert body["data"]["total"] == total == len(seen) == len({r["ma_phan_anh"] for r in seen})
    assert page == -(-total // 70)  # ceil(200 / 70) = 3 pages, the last one short
    assert {"ho_ten", "so_dien_thoai", "ngay_cap_nhat", "ma_xa"} <= set(seen[0])
    since = sorted(r["ngay_cap_nhat"] for r in seen)[total // 2]
    _, newer = _get(f"{url}?page=1&page_size=1000&updated_since={since.replace(' ', '%20')}", TOKEN)
    assert newer["data"]["total"] == sum(r["ngay_cap_nhat"] > since for r in seen) < total
    assert _get(f"{url}?page=x", TOKEN)[0] == 400


def test_ckan_portal_has_the_action_api_shapes(portals: str):
    api = f"{portals}/ckan/api/3/action"
    status, body = _get(f"{api}/package_search?rows=10")
    assert status == 200 and body["success"] and body["result"]["count"] == 2
    names = {p["name"] for p in body["result"]["results"]}
    assert names == {"chi-so-xa-hoi-so", "diem-phuc-vu-hanh-chinh-cong"}
    _, show = _get(f"{api}/package_show?id=chi-so-xa-hoi-so")
    resource = show["result"]["resources"][0]
    assert resource["id"] == resource_id("chi-so-xa-hoi-so") and resource["format"] == "CSV"
    status, missing = _get(f"{api}/package_show?id=khong-co")
    assert status == 404 and missing["success"] is False

    records, offset = [], 0
    while True:
        _, page = _get(f"{api}/datastore_search?resource_id={resource['id']}&limit=400&offset={offset}")
        records += page["result"]["records"]
        offset += 400
        if offset >= page["result"]["total"]:
            break
    # 129 communes × the 8 components of the latest quarter, with CKAN's own _id 1..n.
    assert len(records) == page["result"]["total"] == N_COMMUNES * 8
    assert [r["_id"] for r in records] == list(range(1, N_COMMUNES * 8 + 1))
    assert {f["id"] for f in page["result"]["fields"]} >= {"_id", "ma_xa", "thanh_phan", "ty_le_phan_tram"}

    with urllib.request.urlopen(resource["url"], timeout=10) as resp:
        lines = resp.read().decode("utf-8").splitlines()
    assert lines[0] == "ma_xa,ten_xa,ky_bao_cao,thanh_phan,ty_le_phan_tram" and len(lines) == 1 + N_COMMUNES * 8
