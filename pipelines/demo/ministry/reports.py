"""The provincial departments' quarterly digital-society reports to the ministry: one workbook per province.

Each of the 34 Sở Khoa học và Công nghệ sends `bao_cao_tinh/<code>_<province>.xlsx`, sheet `Bieu01`, typed by
hand the way such reports are: a letterhead and title above the table, a two-row header with merged group
cells, then one row per commune with *counts* (households, adults, and how many reached each of the eight
digital-society components — the ministry computes the rates), all numbers typed as text with Vietnamese
separators (`12.345`, `98,7`), the data date as `dd/mm/yyyy` text, a merged "Tổng cộng" row and a signature
block underneath. The rates behind the counts rise with urbanisation (wards ahead) and vary by province.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from pipelines.demo.ministry.provinces import Province, provinces
from pipelines.demo.workbooks import _pin_timestamps

FOLDER = "bao_cao_tinh"
SHEET = "Bieu01"
QUARTER = "Quý 3/2025"
DATA_DATE = date(2025, 9, 30)
HEADER_ROW = 6  # the first of the two header rows
TOTAL_LABEL = "Tổng cộng"
SAVED_AT = datetime(2025, 10, 15, 9, 0, 0)
# The eight components as counted: (header text, denominator, national rate at Q3/2025).
COMPONENTS: dict[str, tuple[str, float]] = {
    "Số hộ có cáp quang": ("ho", 0.84),
    "Số người có điện thoại thông minh": ("nguoi", 0.88),
    "Số người có tài khoản định danh điện tử mức 2": ("nguoi", 0.86),
    "Số người có chữ ký số cá nhân": ("nguoi", 0.22),
    "Số người có tài khoản thanh toán số": ("nguoi", 0.83),
    "Số người có tài khoản dịch vụ công trực tuyến": ("nguoi", 0.68),
    "Số người có kỹ năng số cơ bản": ("nguoi", 0.56),
    "Số người có kỹ năng an toàn thông tin cơ bản": ("nguoi", 0.46),
}
COVERAGE = "Tỷ lệ thôn, tổ dân phố có sóng 4G/5G (%)"
NOTES = (None, "Số liệu ước tính", "Số hộ theo rà soát sau sắp xếp đơn vị hành chính")


def report_path(out_dir: Path, province: Province) -> Path:
    return Path(out_dir) / FOLDER / f"{province.code}_{_ascii(province.short_name)}_Q3_2025.xlsx"


def report_rows(province: Province, rng: np.random.Generator) -> list[dict]:
    """One province's communes with their counts (numbers, before they are typed as text)."""
    n = len(province.communes)
    ward = np.array([c.is_ward for c in province.communes], dtype=float)
    households = np.round(rng.lognormal(np.log(9_000 + 9_000 * ward), 0.45)).astype(int)
    adults = np.round(households * rng.uniform(2.3, 2.9, n)).astype(int)
    province_effect = rng.normal(0.0, 0.25) + (0.2 if province.is_city else -0.1)
    readiness = province_effect + 0.3 * ward - 0.15 + rng.normal(0.0, 0.3, n)
    notes = rng.choice(len(NOTES), n, p=[0.93, 0.04, 0.03])
    rows = []
    for i, commune in enumerate(province.communes):
        row = {"ma": commune.code, "ten": commune.name, "ho": int(households[i]), "nguoi": int(adults[i])}
        for header, (base, national) in COMPONENTS.items():
            logit = np.log(national / (1 - national)) + readiness[i] + rng.normal(0.0, 0.2)
            row[header] = int(round(row[base] / (1 + np.exp(-logit))))
        row["phu_song"] = float(np.round(min(100.0, 100 / (1 + np.exp(-(2.8 + readiness[i] * 1.5)))), 1))
        row["ghi_chu"] = NOTES[notes[i]]
        rows.append(row)
    return rows


def write_reports(out_dir: Path, rng: np.random.Generator, as_of: date) -> Path:
    """Write the 34 workbooks under `out_dir/bao_cao_tinh/`; returns that folder."""
    folder = Path(out_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for number, province in enumerate(provinces()):
        sent = DATA_DATE + timedelta(days=int(5 + rng.integers(0, 20)))
        path = report_path(out_dir, province)
        path.write_bytes(_workbook(province, report_rows(province, rng), sent, 100 + number))
    return folder


def _workbook(province: Province, rows: list[dict], sent: date, doc_no: int) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    headers = list(COMPONENTS)
    first_comp = 8  # H: the eight components, then coverage and notes
    last_col = get_column_letter(first_comp + len(headers) + 1)
    ws["A1"] = f"UBND {province.name.upper()}"
    ws["A2"] = "SỞ KHOA HỌC VÀ CÔNG NGHỆ"
    ws["A3"] = f"BIỂU 01: SỐ LIỆU XÃ HỘI SỐ CẤP XÃ — {QUARTER.upper()}"
    ws.merge_cells(f"A3:{last_col}3")
    ws["A4"] = f"(Kèm theo Báo cáo số {doc_no}/BC-SKHCN ngày {sent:%d/%m/%Y} của Sở Khoa học và Công nghệ)"
    ws.merge_cells(f"A4:{last_col}4")
    h1, h2 = HEADER_ROW, HEADER_ROW + 1
    for col, label in (("A", "TT"), ("B", "Mã ĐVHC"), ("C", "Tên xã, phường, đặc khu"), ("D", "Kỳ báo cáo"),
                       ("E", "Ngày chốt số liệu")):
        ws[f"{col}{h1}"] = label
        ws.merge_cells(f"{col}{h1}:{col}{h2}")
    ws[f"F{h1}"] = "Quy mô"
    ws.merge_cells(f"F{h1}:G{h1}")
    ws[f"F{h2}"], ws[f"G{h2}"] = "Tổng số hộ gia đình", "Dân số từ 15 tuổi trở lên"
    ws.cell(h1, first_comp, "Số lượng đạt các thành phần xã hội số cơ bản")
    ws.merge_cells(start_row=h1, end_row=h1, start_column=first_comp, end_column=first_comp + len(headers) - 1)
    for k, header in enumerate(headers):
        ws.cell(h2, first_comp + k, header)
    coverage_col, notes_col = first_comp + len(headers), first_comp + len(headers) + 1
    ws.cell(h1, coverage_col, COVERAGE)
    ws.merge_cells(start_row=h1, end_row=h2, start_column=coverage_col, end_column=coverage_col)
    ws.cell(h1, notes_col, "Ghi chú")
    ws.merge_cells(start_row=h1, end_row=h2, start_column=notes_col, end_column=notes_col)

    r = h2 + 1
    for i, row in enumerate(rows, 1):
        values = [i, row["ma"], row["ten"], QUARTER, f"{DATA_DATE:%d/%m/%Y}", _int_vn(row["ho"]),
                  _int_vn(row["nguoi"]), *(_int_vn(row[h]) for h in headers), _dec_vn(row["phu_song"]), row["ghi_chu"]]
        for c, v in enumerate(values, 1):
            cell = ws.cell(r, c, v)
            if isinstance(v, str):
                cell.number_format = "@"  # typed as text, as the departments do
        r += 1
    ws.cell(r, 1, TOTAL_LABEL).font = Font(bold=True)
    ws.merge_cells(start_row=r, end_row=r, start_column=1, end_column=5)
    sums = [sum(row["ho"] for row in rows), sum(row["nguoi"] for row in rows), *(sum(row[h] for row in rows)
                                                                                for h in headers)]
    for k, total in enumerate(sums):
        ws.cell(r, 6 + k, _int_vn(total)).font = Font(bold=True)
    ws.cell(r + 2, notes_col - 3, f"{province.short_name}, ngày {sent.day:02d} tháng {sent.month:02d} năm {sent.year}")
    ws.cell(r + 3, notes_col - 3, "GIÁM ĐỐC").font = Font(bold=True)

    thin = Side(style="thin")
    for rr in (h1, h2):
        for c in range(1, notes_col + 1):
            cell = ws.cell(rr, c)
            cell.font = Font(bold=True)
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
    ws["A3"].font = Font(bold=True, size=13)
    ws.column_dimensions["C"].width = 26
    wb.properties.creator = wb.properties.lastModifiedBy = f"Sở Khoa học và Công nghệ {province.short_name}"
    wb.properties.created = SAVED_AT
    buffer = io.BytesIO()
    wb.save(buffer)
    return _pin_timestamps(buffer.getvalue())


def _int_vn(value: int) -> str:
    """12345 → '12.345' (Vietnamese thousands dots)."""
    return f"{value:,}".replace(",", ".")


def _dec_vn(value: float) -> str:
    """98.7 → '98,7'."""
    return f"{value:.1f}".replace(".", ",")


def _ascii(name: str) -> str:
    from pipelines.text import slugify

    return slugify(name)
