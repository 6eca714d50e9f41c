"""The second demo tenant, Bộ Khoa học và Công nghệ: its generator, its dossier API, its provincial workbooks, and a
real extract_load + validate of its three sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest

from pipelines.config import load_tenant
from pipelines.demo.ministry import AS_OF, TENANT_ID, generate_ministry, n_dossiers
from pipelines.demo.ministry import api as ministry_api
from pipelines.demo.ministry.applications import STATUS_CODES, applications
from pipelines.demo.ministry.provinces import provinces
from pipelines.demo.ministry.reports import FOLDER, report_rows
from pipelines.settings import TenantPaths
from tests.conftest import DEMO_ROWS

N_COMMUNES = 3321  # the communes of the 34 provinces since 1 July 2025 (vietnam-provinces)


@pytest.fixture(scope="module")
def ministry_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ministry_sources")
    generate_ministry(out, rows=DEMO_ROWS, seed=37)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generator_is_deterministic(ministry_sources: Path, tmp_path: Path):
    again = tmp_path / "again"
    generate_ministry(again, rows=DEMO_ROWS, seed=37)
    first, second = _files(ministry_sources), _files(again)
    assert len([f for f in first if f.startswith(FOLDER)]) == 34
    assert first == second  # byte-identical, workbooks included (zip times pinned)
    hanoi = provinces()[0]
    assert report_rows(hanoi, np.random.default_rng([37, 1])) == report_rows(hanoi, np.random.default_rng([37, 1]))
    assert report_rows(hanoi, np.random.default_rng([37, 1])) != report_rows(hanoi, np.random.default_rng([38, 1]))
    assert applications(500, 37, AS_OF) == applications(500, 37, AS_OF)
    assert applications(500, 37, AS_OF) != applications(500, 38, AS_OF)


def test_api_requires_the_key_and_pages_by_cursor(demo_portals):
    url = f"{demo_portals.base_url}{ministry_api.APPLICATIONS_PATH}"
    key = {ministry_api.KEY_HEADER: demo_portals.ministry_token}
    with httpx.Client(timeout=30) as http:
        assert http.get(url).status_code == 401
        refused = http.get(url, headers={ministry_api.KEY_HEADER: "wrong"})
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHENTICATED"
        assert http.get(url, params={"cursor": "not-a-cursor"}, headers=key).status_code == 400
        assert http.get(url, params={"limit": 5000}, headers=key).status_code == 400

        seen, pages, link = [], 0, f"{url}?limit=300"
        while link:
            body = http.get(link, headers=key).json()
            assert len(body["items"]) <= 300 and body["paging"]["count"] == len(body["items"])
            assert (body["paging"]["next"] is None) == (body["paging"]["nextCursor"] is None)
            seen += body["items"]
            link, pages = body["paging"]["next"], pages + 1
        expected = n_dossiers(DEMO_ROWS)
        assert pages == -(-expected // 300)
        assert len({r["applicationNo"] for r in seen}) == len(seen) == expected
        assert [r["lastModified"] for r in seen] == sorted(r["lastModified"] for r in seen)

        since = seen[len(seen) // 2]["lastModified"]
        later = http.get(url, params={"limit": 500, "modifiedSince": since}, headers=key).json()
        newer = [r for r in seen if r["lastModified"] > since]
        assert later["items"] == newer[:500] and later["items"]

    record = seen[0]
    assert set(record) >= {"applicationNo", "receivedDate", "dueDate", "completedAt", "status", "lastModified"}
    assert {r["status"] for r in seen} <= set(STATUS_CODES)
    organisations = [r for r in seen if r["applicantType"] == "ORGANIZATION"]
    assert len(organisations) > len(seen) / 2  # mostly businesses
    assert all(r["applicantTaxCode"] and r["applicantIdNo"] is None for r in organisations)


def _read(source_name: str, sources: Path, con: duckdb.DuckDBPyConnection):
    from pipelines.sources import reader_for

    cfg = load_tenant(TENANT_ID)
    paths = TenantPaths.for_tenant(TENANT_ID).ensure()
    shutil.copytree(sources, paths.sources, dirs_exist_ok=True)
    source = cfg.source(source_name)
    return reader_for(source.kind)(source, con, paths)


def test_workbooks_parse_with_the_tenant_reader_options(ministry_sources: Path):
    """The tenant's excel options (header row 6, two merged header rows, stop at 'Tổng cộng') read all 34
    workbooks; the text numbers parse and add up to each workbook's own totals row."""
    import openpyxl

    con = duckdb.connect()
    extract = _read("bao_cao_xa_hoi_so_tinh", ministry_sources, con)
    rel = extract.relation
    assert {"ma_dvhc", "ten_xa_phuong_dac_khu", "ky_bao_cao", "tong_so_ho_gia_dinh", "dan_so_tu_15_tuoi_tro_len",
            "so_ho_co_cap_quang", "so_nguoi_co_ky_nang_an_toan_thong_tin_co_ban", "_file"} <= set(rel.columns)
    con.register("wb", rel)
    n, n_files, n_codes, totals = con.execute(
        "SELECT count(*), count(DISTINCT _file), count(DISTINCT ma_dvhc), count(*) FILTER (WHERE ma_dvhc ILIKE 'Tổng%') "
        "FROM wb").fetchone()
    assert (n, n_files, n_codes, totals) == (N_COMMUNES, 34, N_COMMUNES, 0)
    expected_codes = {c.code for p in provinces() for c in p.communes}
    assert {r[0] for r in con.execute("SELECT ma_dvhc FROM wb").fetchall()} == expected_codes

    # Hà Nội's households: the sum of '12.345'-typed cells equals the workbook's own 'Tổng cộng' row.
    book = next((ministry_sources / FOLDER).glob("01_*.xlsx"))
    sheet = openpyxl.load_workbook(book, data_only=True)["Bieu01"]
    total_row = next(r for r in sheet.iter_rows(values_only=True) if r[0] == "Tổng cộng")
    total = int(total_row[5].replace(".", ""))
    summed = con.execute("SELECT sum(CAST(replace(tong_so_ho_gia_dinh, '.', '') AS BIGINT)) FROM wb "
                         "WHERE _file = ?", [book.name]).fetchone()[0]
    assert summed == total > 0
    con.close()


@pytest.fixture
def ministry_tenant(ministry_sources: Path, demo_portals, monkeypatch: pytest.MonkeyPatch):
    """The ministry tenant with its files in this test's home and its API reachable with its key."""
    from pipelines.demo.servers import PORT_ENV

    monkeypatch.setenv(PORT_ENV, str(demo_portals.server_address[1]))
    monkeypatch.setenv(ministry_api.TOKEN_ENV, demo_portals.ministry_token)
    cfg = load_tenant(TENANT_ID)
    paths = TenantPaths.for_tenant(cfg.tenant_id).ensure()
    shutil.copytree(ministry_sources, paths.sources, dirs_exist_ok=True)
    return cfg


def test_extract_load_and_validate_land_every_row(ministry_tenant):
    from pipelines.runner import run

    report = run(TENANT_ID, steps=["extract_load", "validate"])
    assert report.ok, report.summary()
    paths = TenantPaths.for_tenant(TENANT_ID)
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        loads = {s: (status, n) for s, status, n in con.execute(
            "SELECT source, status, n_rows_loaded FROM meta.loads").fetchall()}
        types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_schema = 'raw' AND table_name = 'giay_phep_tan_so'").fetchall())
        watermark = con.execute("SELECT watermark FROM meta.loads WHERE source = 'ho_so_dvc_bo'").fetchone()[0]
    assert loads == {"ho_so_dvc_bo": ("passed", n_dossiers(DEMO_ROWS)),
                     "bao_cao_xa_hoi_so_tinh": ("passed", N_COMMUNES),
                     "giay_phep_tan_so": ("passed", max(400, DEMO_ROWS // 4))}
    # UTF-16, tab-separated, decimal commas and dd/mm/yyyy typed at read
    assert types["TAN_SO_MHZ"] == "DOUBLE" and types["NGAY_CAP"] == "DATE" and types["MA_TINH"] == "VARCHAR"
    newest = max(r["lastModified"] for r in applications(n_dossiers(DEMO_ROWS), 37, AS_OF))
    assert watermark == str(newest)  # epoch milliseconds, sent back as modifiedSince next time

    # A second run: the API is asked only for records after the watermark (none), the files are unchanged.
    again = run(TENANT_ID, steps=["extract_load", "validate"])
    assert again.ok, again.summary()
    with duckdb.connect(str(paths.warehouse), read_only=True) as con:
        n_raw = con.execute("SELECT count(*) FROM raw.ho_so_dvc_bo").fetchone()[0]
        second = dict(con.execute("SELECT source, status FROM meta.loads WHERE run_id = ?", [again.run_id]).fetchall())
    assert n_raw == n_dossiers(DEMO_ROWS)
    assert set(second.values()) <= {"unchanged"}, second
