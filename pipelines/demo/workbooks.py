"""The department workbook of digital-society indicators per commune, laid out like a real report."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np

from pipelines.demo.places import PROVINCE_NAME, communes

SHEET = "XHS"
TITLE = f"BÁO CÁO CHỈ SỐ XÃ HỘI SỐ THEO XÃ, PHƯỜNG - TỈNH {PROVINCE_NAME.upper()}"
GROUP_HEADER = "Tỷ lệ đạt các thành phần xã hội số (%)"
TOTAL_LABEL = "Tổng cộng / Bình quân"
NOTE = "Ghi chú: Số liệu do UBND các xã, phường báo cáo."
# The 8 basic components, with the province average at the first and the last reported quarter (%):
# e-identity rose fastest (VNeID level 2 drives), personal digital signatures stay rare.
COMPONENTS: dict[str, tuple[float, float]] = {
    "Cáp quang hộ gia đình": (72.0, 84.0),
    "Điện thoại thông minh": (78.0, 88.0),
    "Tài khoản định danh điện tử": (64.0, 90.0),
    "Chữ ký số cá nhân": (7.0, 24.0),
    "Tài khoản thanh toán số": (68.0, 84.0),
    "Tài khoản dịch vụ công trực tuyến": (42.0, 70.0),
    "Kỹ năng số cơ bản": (33.0, 58.0),
    "Kỹ năng an toàn thông tin cơ bản": (24.0, 48.0),
}
FIRST_YEAR, N_QUARTERS = 2024, 8  # Quý 1/2024 … Quý 4/2025
SAVED_AT = datetime(2026, 1, 10, 8, 0, 0)  # fixed, so the same seed gives byte-identical files
AUTHOR = "Sở Khoa học và Công nghệ tỉnh Ninh Bình"


def quarter_labels() -> list[str]:
    """'Quý 1/2024' … 'Quý 4/2025'."""
    return [f"Quý {q % 4 + 1}/{FIRST_YEAR + q // 4}" for q in range(N_QUARTERS)]


def indicator_values(rng: np.random.Generator) -> np.ndarray:
    """Percentages shaped (commune, quarter, component): upward on the logit scale, wards ahead."""
    units = communes()
    n_c, n_k = len(units), len(COMPONENTS)
    start, end = (np.array([v[i] for v in COMPONENTS.values()]) / 100 for i in (0, 1))
    logit_start = np.log(start / (1 - start))
    step = (np.log(end / (1 - end)) - logit_start) / (N_QUARTERS - 1)
    is_ward = np.array([c.is_ward for c in units], dtype=float)
    readiness = 0.45 * is_ward + rng.normal(0.0, 0.35, n_c)  # shared by all components of a commune
    level = logit_start + readiness[:, None] + rng.normal(0.0, 0.2, (n_c, n_k))
    pace = step * rng.lognormal(0.0, 0.25, (n_c, 1))  # some communes campaign harder than others
    t = np.arange(N_QUARTERS)[None, :, None]
    logit = level[:, None, :] + pace[:, None, :] * t + rng.normal(0.0, 0.05, (n_c, N_QUARTERS, n_k))
    return np.round(100 / (1 + np.exp(-logit)), 1)


def write_workbook(path: Path, rng: np.random.Generator) -> Path:
    """Write the `XHS` sheet: title, two-row merged header, commune × quarter rows, totals and a note."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    values = indicator_values(rng)
    names = list(COMPONENTS)
    last_col = get_column_letter(3 + len(names))
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    ws["A1"] = TITLE
    ws.merge_cells(f"A1:{last_col}1")
    ws["A2"] = "Đơn vị tính: %"
    for col, label in (("A", "Mã xã"), ("B", "Tên xã, phường"), ("C", "Kỳ báo cáo")):
        ws[f"{col}3"] = label
        ws.merge_cells(f"{col}3:{col}4")
    ws["D3"] = GROUP_HEADER
    ws.merge_cells(f"D3:{last_col}3")
    for i, name in enumerate(names):
        ws.cell(4, 4 + i, name)

    row = 5
    for c_idx, commune in enumerate(communes()):
        for q_idx, label in enumerate(quarter_labels()):
            ws.cell(row, 1, commune.code).number_format = "@"  # text: the leading zeros of codes matter
            ws.cell(row, 2, commune.name)
            ws.cell(row, 3, label)
            for k in range(len(names)):
                ws.cell(row, 4 + k, float(values[c_idx, q_idx, k])).number_format = "0.0"
            row += 1
    ws.cell(row, 1, TOTAL_LABEL).font = Font(bold=True)
    averages = np.round(values.reshape(-1, len(names)).mean(axis=0), 1)
    for k, avg in enumerate(averages):
        cell = ws.cell(row, 4 + k, float(avg))
        cell.number_format, cell.font = "0.0", Font(bold=True)
    ws.cell(row + 1, 1, NOTE).font = Font(italic=True)

    thin = Side(style="thin")
    header_style = Alignment(horizontal="center", vertical="center", wrap_text=True)
    ws["A1"].font, ws["A1"].alignment = Font(bold=True, size=14), Alignment(horizontal="center")
    ws["A2"].font = Font(italic=True)
    for r in (3, 4):
        for c in range(1, 4 + len(names)):
            cell = ws.cell(r, c)
            cell.font, cell.alignment = Font(bold=True), header_style
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
    ws.row_dimensions[4].height = 48
    for col, width in (("A", 9), ("B", 24), ("C", 12)):
        ws.column_dimensions[col].width = width
    for k in range(len(names)):
        ws.column_dimensions[get_column_letter(4 + k)].width = 14
    ws.freeze_panes = "D5"

    wb.properties.creator = wb.properties.lastModifiedBy = AUTHOR
    wb.properties.title = TITLE
    wb.properties.created = SAVED_AT
    buffer = io.BytesIO()
    wb.save(buffer)
    path.write_bytes(_pin_timestamps(buffer.getvalue()))
    return path


def _pin_timestamps(xlsx: bytes) -> bytes:
    """Re-zip with fixed entry times and a fixed 'modified' property (openpyxl stamps both with now)."""
    stamp = SAVED_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + stamp.encode() + rb"\g<2>", data)
            entry = zipfile.ZipInfo(info.filename, date_time=SAVED_AT.timetuple()[:6])
            entry.compress_type, entry.external_attr = zipfile.ZIP_DEFLATED, info.external_attr
            dst.writestr(entry, data)
    return out.getvalue()
