"""Radio-frequency licences by province: the frequency authority's licensing software export (no shared contract).

`giay_phep_tan_so.csv` is what that software's "Xuất dữ liệu" writes: UTF-16 (little-endian, with a BOM),
tab-separated, CRLF line ends, upper-case ASCII headers in Oracle style, frequencies and powers with a
decimal comma (`156,800`), dates as `dd/mm/yyyy`, the holder's name (a person for most ship stations: personal
data), the province as its 2-digit code. Ship stations concentrate in the coastal provinces; mobile base
stations follow population.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from pipelines.demo.ministry.applications import COMPANY_BRANDS, COMPANY_FORMS, COMPANY_TRADES
from pipelines.demo.ministry.provinces import provinces
from pipelines.demo.people import applicants

LICENCES_FILE = "giay_phep_tan_so.csv"
COLUMNS = ("SO_GIAY_PHEP", "LOAI_GIAY_PHEP", "TEN_CHU_GIAY_PHEP", "MA_TINH", "TAN_SO_MHZ", "CONG_SUAT_W",
           "NGAY_CAP", "NGAY_HET_HAN", "TRANG_THAI")
COASTAL = {"22", "31", "33", "37", "38", "40", "42", "44", "46", "48", "51", "52", "56", "68", "79", "82", "86",
           "91", "92", "96"}


@dataclass(frozen=True)
class LicenceType:
    name: str
    code: str  # in the licence number
    share: float
    coastal_only: bool
    person: float  # share held by individuals
    band_mhz: tuple[float, float]
    power_w: tuple[float, float]
    years: int  # validity


TYPES = (
    LicenceType("Đài tàu", "DT", 0.45, True, 0.85, (156.0, 162.0), (5.0, 25.0), 5),
    LicenceType("Trạm gốc thông tin di động", "TG", 0.25, False, 0.0, (700.0, 3800.0), (20.0, 80.0), 10),
    LicenceType("Mạng thông tin vô tuyến điện nội bộ", "NB", 0.12, False, 0.0, (136.0, 470.0), (5.0, 50.0), 5),
    LicenceType("Đài phát thanh, truyền hình", "PT", 0.06, False, 0.0, (87.5, 790.0), (100.0, 10_000.0), 10),
    LicenceType("Vi ba", "VB", 0.10, False, 0.0, (6_000.0, 38_000.0), (0.1, 1.0), 10),
    LicenceType("Đài vô tuyến điện nghiệp dư", "ND", 0.02, False, 1.0, (7.0, 146.0), (10.0, 400.0), 10),
)
STATUS = ("Còn hiệu lực", "Hết hạn", "Đã thu hồi")


def licences(n: int, rng: np.random.Generator, as_of: date) -> list[tuple[str, ...]]:
    """`n` licences as text rows in COLUMNS order, ordered by licence number."""
    places = provinces()
    coastal = np.array([p.code in COASTAL for p in places])
    size = np.array([p.weight for p in places])
    kind = rng.choice(len(TYPES), n, p=np.array([t.share for t in TYPES]))
    people = applicants(n, as_of, rng)
    rows = []
    for i in range(n):
        t = TYPES[kind[i]]
        w = size * (coastal * 4.0 + 0.05) if t.coastal_only else size
        place = places[rng.choice(len(places), p=w / w.sum())]
        if rng.random() < t.person:
            holder = people["ho_ten"][i]
        else:
            holder = (f"{COMPANY_FORMS[rng.integers(len(COMPANY_FORMS))]} {COMPANY_TRADES[rng.integers(len(COMPANY_TRADES))]}"
                      f" {COMPANY_BRANDS[rng.integers(len(COMPANY_BRANDS))]}")
        issued = as_of - timedelta(days=int(rng.integers(1, 365 * 8)))
        expires = date(issued.year + t.years, issued.month, min(issued.day, 28))
        revoked = rng.random() < 0.03
        status = STATUS[2] if revoked else STATUS[0] if expires >= as_of else STATUS[1]
        mhz = rng.uniform(*t.band_mhz)
        power = np.exp(rng.uniform(np.log(t.power_w[0]), np.log(t.power_w[1])))
        rows.append((f"{issued.year}/{t.code}-{place.code}-{i + 1:06d}/GP-CTS", t.name, holder, place.code,
                     f"{mhz:.3f}".replace(".", ","), f"{power:.1f}".replace(".", ","),
                     issued.strftime("%d/%m/%Y"), expires.strftime("%d/%m/%Y"), status))
    return sorted(rows)


def write_licences(out_dir: Path, n: int, rng: np.random.Generator, as_of: date) -> Path:
    """Write the UTF-16 tab-separated export; returns its path."""
    path = Path(out_dir) / LICENCES_FILE
    lines = ["\t".join(COLUMNS), *("\t".join(r) for r in licences(n, rng, as_of))]
    path.write_bytes("\r\n".join(lines).encode("utf-16") + "\r\n".encode("utf-16-le"))
    return path
