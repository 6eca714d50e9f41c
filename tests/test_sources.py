"""CSV and Excel readers on small files made in the test: options honoured, bad input named."""

from __future__ import annotations

from datetime import date

import duckdb
import openpyxl
import pytest

from pipelines.config import SourceConfig
from pipelines.errors import SourceError
from pipelines.settings import TenantPaths
from pipelines.sources import reader_for


@pytest.fixture
def paths(tmp_path):
    return TenantPaths(tmp_path).ensure()


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def _source(kind: str, location: str, **options) -> SourceConfig:
    return SourceConfig(name="s", kind=kind, location=location, options=options, primary_key=["ma"])


def test_csv_vietnamese_formats(paths, con):
    # Semicolon-delimited export with decimal commas, thousands dots and dd/mm/yyyy dates, codes with zeros.
    (paths.sources / "a.csv").write_text("ma;ngay;so_tien\n00123;31/12/2024;1.234.567,5\n00045;01/02/2025;12,0\n",
                                         encoding="utf-8")
    src = _source("csv", "sources/a.csv", delimiter=";", date_format="%d/%m/%Y", decimal_separator=",",
                  thousands=".", types={"ma": "VARCHAR", "so_tien": "DOUBLE"})
    rows = reader_for("csv")(src, con, paths).relation.order("ma").fetchall()
    assert rows == [("00045", date(2025, 2, 1), 12.0), ("00123", date(2024, 12, 31), 1234567.5)]


def test_csv_missing_file_names_source_and_path(paths, con):
    with pytest.raises(SourceError) as err:
        reader_for("csv")(_source("csv", "sources/missing.csv"), con, paths)
    assert "source 's'" in str(err.value) and "missing.csv" in str(err.value) and "file not found" in str(err.value)


def test_csv_unknown_option():
    # Refused when the tenant file is checked (SourceConfig), before any run: tests/config/test_source_options.py
    with pytest.raises(ValueError, match="unknown csv option — allowed: delimiter"):
        _source("csv", "sources/a.csv", delimeter=";")


def _report_workbook(path):
    """A department report: title row, a two-row merged header, data, a totals row and a notes row."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "XHS"
    ws["A1"] = "BÁO CÁO"
    ws.merge_cells("A1:D1")
    ws["A3"], ws["B3"], ws["C3"] = "Mã xã", "Kỳ báo cáo", "Tỷ lệ (%)"
    ws.merge_cells("A3:A4")
    ws.merge_cells("B3:B4")
    ws.merge_cells("C3:D3")
    ws["C4"], ws["D4"] = "Cáp quang hộ gia đình", "Chữ ký số cá nhân"
    ws.append(["00004", "Quý 1/2025", 80.5, 10.0])
    ws.append(["00007", "Quý 1/2025", 60.0, 20.5])
    ws.append(["Tổng cộng", None, 70.25, 15.25])
    ws.append(["Ghi chú: số liệu do xã báo cáo", None, None, None])
    wb.save(path)


@pytest.mark.parametrize(("join", "expected_columns"), [
    ("last", ["ma_xa", "ky_bao_cao", "cap_quang_ho_gia_dinh", "chu_ky_so_ca_nhan"]),
    # "all" keeps the merged parent so same-named children under different groups stay distinct.
    ("all", ["ma_xa", "ky_bao_cao", "ty_le_cap_quang_ho_gia_dinh", "ty_le_chu_ky_so_ca_nhan"]),
])
def test_excel_merged_header_and_totals(paths, con, join, expected_columns):
    _report_workbook(paths.sources / "r.xlsx")
    src = _source("excel", "sources/r.xlsx", sheet="XHS", header_row=3, header_rows=2, header_join=join,
                  stop_at="^(Tổng|Ghi chú)", types={"ma_xa": "VARCHAR"})
    rel = reader_for("excel")(src, con, paths).relation
    assert rel.columns == expected_columns
    # Two data rows: the totals and notes rows are cut off by stop_at.
    assert rel.fetchall() == [("00004", "Quý 1/2025", 80.5, 10.0), ("00007", "Quý 1/2025", 60.0, 20.5)]


def test_unreadable_workbook(paths, con):
    (paths.sources / "bad.xlsx").write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(SourceError) as err:
        reader_for("excel")(_source("excel", "sources/bad.xlsx"), con, paths)
    assert "unreadable workbook" in str(err.value) and "bad.xlsx" in str(err.value)


def test_excel_missing_sheet(paths, con):
    _report_workbook(paths.sources / "r.xlsx")
    with pytest.raises(SourceError, match="sheet 'Nope' not found"):
        reader_for("excel")(_source("excel", "sources/r.xlsx", sheet="Nope"), con, paths)
