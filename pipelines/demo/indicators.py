"""The province's digital-transformation report (demo): yearly indicators and plan statuses, one CSV.

What the Department of Science and Technology reports once a year against the 2023 targets: the digital
economy's share of GRDP, e-commerce's share of retail, and whether each required plan was issued. The
figures are illustrative and fixed (no randomness): the digital economy misses its > 16 % target, e-commerce
passes 8.5 % in 2025, two plans come late — so the scorecard shows every kind of outcome.
"""

from __future__ import annotations

import csv
from pathlib import Path

INDICATORS_FILE = "chi_so_cds_tinh.csv"
COLUMNS = ("ma_chi_tieu", "nam", "gia_tri", "trang_thai", "ngay_ban_hanh", "so_van_ban")
# (indicator, year, value %, status, date issued dd/mm/yyyy, document number)
ROWS = (
    ("kinh_te_so_ty_trong_grdp", 2022, "10,8", "", "", ""),
    ("kinh_te_so_ty_trong_grdp", 2023, "12,4", "", "", ""),
    ("kinh_te_so_ty_trong_grdp", 2024, "14,1", "", "", ""),
    ("kinh_te_so_ty_trong_grdp", 2025, "15,6", "", "", ""),
    ("tmdt_ty_trong_ban_le", 2022, "6,2", "", "", ""),
    ("tmdt_ty_trong_ban_le", 2023, "7,4", "", "", ""),
    ("tmdt_ty_trong_ban_le", 2024, "8,3", "", "", ""),
    ("tmdt_ty_trong_ban_le", 2025, "9,1", "", "", ""),
    ("du_lieu_mo_ke_hoach", 2023, "", "da_ban_hanh", "15/06/2023", "1520/KH-UBND"),
    ("du_lieu_mo_cong_bo", 2023, "", "da_ban_hanh", "20/09/2023", "2284/QĐ-UBND"),
    ("csdl_danh_muc", 2023, "", "da_ban_hanh", "28/07/2023", "1876/QĐ-UBND"),
    ("nen_tang_phan_tich_ke_hoach", 2023, "", "dang_xay_dung", "", ""),
    ("nen_tang_phan_tich_ke_hoach", 2024, "", "da_ban_hanh", "12/03/2024", "612/KH-UBND"),
    ("quan_tri_du_lieu_ke_hoach", 2023, "", "chua_ban_hanh", "", ""),
    ("quan_tri_du_lieu_ke_hoach", 2024, "", "dang_xay_dung", "", ""),
    ("quan_tri_du_lieu_ke_hoach", 2025, "", "da_ban_hanh", "05/05/2025", "1043/KH-UBND"),
)


def write_indicators(out_dir: Path) -> Path:
    """Write `chi_so_cds_tinh.csv` (Vietnamese decimal commas, dd/mm/yyyy dates, as the report is typed)."""
    path = Path(out_dir) / INDICATORS_FILE
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(ROWS)
    return path
