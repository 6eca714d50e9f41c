"""The business registry export (đăng ký kinh doanh): a Windows-1258 CSV from older software, as it really comes.

What makes it realistic, and what the pipeline must cope with:
- Windows-1258 with *decomposed* tone marks (`Nguyê` + U+0301), as Windows writes Vietnamese in that code
  page; `;` as delimiter, CRLF line ends, `dd/mm/yyyy` dates, capital as `1.500.000.000` and areas as
  `85,5` (Vietnamese thousands dot and decimal comma).
- Addresses are free text; about a third still use the pre-July-2025 district-based units of the three
  provinces merged into Ninh Bình ("phường Lộc Hạ, thành phố Nam Định, tỉnh Nam Định"), taken from
  `vietnamadminunits`' legacy data; the rest name a current commune ("xã Gia Viễn, tỉnh Ninh Bình").
- Tax codes (mã số thuế) are 10 digits with a check digit (Circular 105/2020/TT-BTC); a few were typed wrong.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.demo.people import applicants
from pipelines.demo.places import LEGACY_PROVINCE_CODES, _legacy_query, communes

DANG_KY_KINH_DOANH_FILE = "dang_ky_kinh_doanh.csv"
# Enterprises registered before the registry moved to Unicode software stay in the old TCVN3 export.
DANG_KY_KINH_DOANH_CU_FILE = "dang_ky_kinh_doanh_cu.csv"
TCVN3_BEFORE = date(2008, 1, 1)
ENCODING = "cp1258"
LEGACY_ADDRESS_SHARE = 0.35
INVALID_MST_SHARE = 0.03
MST_WEIGHTS = np.array([31, 29, 23, 19, 17, 13, 7, 5, 3])
# Tax authority codes that open a tax code: Nam Định 06, Hà Nam 07, Ninh Bình 27 (unchanged after 2025).
MST_PROVINCE_PREFIXES = np.array([27, 27, 27, 6, 6, 7])
FIRST_REGISTRATION = date(1995, 1, 1)

FORMS = {"Công ty TNHH": 0.55, "Công ty Cổ phần": 0.22, "Công ty TNHH một thành viên": 0.12,
         "Doanh nghiệp tư nhân": 0.07, "Hợp tác xã": 0.04}
TRADES = {  # trade in the name → VSIC 2018 industry code
    "Thương mại và Dịch vụ": "4690", "Xây dựng": "4100", "Du lịch": "7911", "Vận tải": "4933",
    "Nông sản": "4620", "May mặc": "1410", "Cơ khí": "2592", "Thực phẩm": "1079", "Đá mỹ nghệ": "2396",
    "Gốm sứ": "2393", "Dệt may": "1312", "Vật liệu xây dựng": "4663", "Công nghệ": "6201",
    "Nhà hàng": "5610", "Khách sạn": "5510", "Thủy sản": "0322",
}
BRANDS = ("Hoàng Long", "Tràng An", "Bái Đính", "Hoa Lư", "Phát Đạt", "Thành Công", "An Phú", "Minh Anh",
          "Tam Cốc", "Vân Long", "Kim Sơn", "Nam Phong", "Đại Việt", "Hưng Thịnh", "Thiên Trường", "Phủ Lý",
          "Sông Đáy", "Cúc Phương", "Gia Khánh", "Hải Hậu", "Xuân Thủy", "Vị Hoàng", "Trường Yên", "Hồng Hà")
STREETS = ("Trần Hưng Đạo", "Lê Lợi", "Lý Thái Tổ", "Đinh Tiên Hoàng", "Lê Hồng Phong", "Nguyễn Huệ",
           "Quang Trung", "Hai Bà Trưng", "Tràng An", "Xuân Thành", "Giải Phóng", "Lê Đại Hành", "Trường Chinh")
STATUSES = {"Đang hoạt động": 0.86, "Tạm ngừng kinh doanh": 0.08, "Đã giải thể": 0.06}
# Tone marks stay combining in Windows-1258; vowel shapes (â ê ô ơ ư ă) and đ are single bytes.
_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def business_registry(n: int, as_of: date, rng: np.random.Generator) -> pl.DataFrame:
    """`n` enterprises registered in the province, one row each, every value already as exported (text)."""
    forms, trades = list(FORMS), list(TRADES)
    form = rng.choice(len(forms), n, p=np.array(list(FORMS.values())))
    trade = rng.choice(len(trades), n)
    brand = rng.choice(len(BRANDS), n)
    names = [f"{forms[f]} {trades[t]} {BRANDS[b]}" for f, t, b in zip(form, trade, brand, strict=True)]
    # Registrations grow over the years: an exponential age, capped at the first registration day.
    span = (as_of - FIRST_REGISTRATION).days
    age = np.minimum(np.floor(rng.exponential(span / 4, n)), span - 1).astype("timedelta64[D]")
    registered = (np.datetime64(as_of, "D") - 1 - age).astype("datetime64[D]")
    capital = np.round(rng.lognormal(np.log(3e9), 1.1, n) / 1e8) * 1e8 + 1e8  # whole hundreds of millions
    area = np.round(rng.lognormal(np.log(120), 0.8, n), 1)
    status = np.array(list(STATUSES))[rng.choice(len(STATUSES), n, p=np.array(list(STATUSES.values())))]
    people = applicants(n, as_of, rng)
    return pl.DataFrame({
        "ma_so_thue": tax_codes(n, rng),
        "ten_doanh_nghiep": names,
        "loai_hinh": [forms[f] for f in form],
        "ma_nganh": [TRADES[trades[t]] for t in trade],
        "ngay_dang_ky": pl.Series(registered, dtype=pl.Date).dt.strftime("%d/%m/%Y"),
        "von_dieu_le": [_vn_number(int(c)) for c in capital],
        "dien_tich_tru_so_m2": [f"{a:.1f}".replace(".", ",") for a in area],
        "dia_chi": addresses(n, rng),
        "ho_ten_nguoi_dai_dien": people["ho_ten"],
        "so_dien_thoai": people["so_dien_thoai"],
        "trang_thai": status,
    }).sort("ma_so_thue")


def tax_codes(n: int, rng: np.random.Generator) -> list[str]:
    """`n` distinct 10-digit tax codes; `INVALID_MST_SHARE` of them carry a wrong check digit."""
    prefix = MST_PROVINCE_PREFIXES[rng.integers(0, MST_PROVINCE_PREFIXES.size, n)]
    serial = rng.choice(10**7, n, replace=False)
    digits = np.column_stack([prefix // 10, prefix % 10, *((serial // 10**k) % 10 for k in range(6, -1, -1))])
    total = digits @ MST_WEIGHTS
    # A sum divisible by 11 would need check digit 10: such numbers are never issued; nudge the 9th digit.
    bump = total % 11 == 0
    digits[bump, 8] = (digits[bump, 8] + 1) % 10
    check = 10 - (digits @ MST_WEIGHTS) % 11
    wrong = rng.random(n) < INVALID_MST_SHARE
    check = np.where(wrong, (check + rng.integers(1, 10, n)) % 10, check)
    return ["".join(map(str, row)) + str(c) for row, c in zip(digits, check, strict=True)]


def is_tax_code_valid(code: str) -> bool:
    """10 digits whose last is 10 - (weighted sum of the first 9 mod 11)."""
    if len(code) != 10 or not code.isdigit():
        return False
    return 10 - int(np.dot([int(d) for d in code[:9]], MST_WEIGHTS)) % 11 == int(code[9])


def addresses(n: int, rng: np.random.Generator) -> list[str]:
    """Street-level addresses: current communes of Ninh Bình, or (a third) pre-2025 district-based units."""
    current = [(c.name, c.is_ward) for c in communes()]
    legacy = legacy_wards()
    is_legacy = rng.random(n) < LEGACY_ADDRESS_SHARE
    pick_current = rng.integers(0, len(current), n)
    pick_legacy = rng.integers(0, len(legacy), n)
    house, street, hamlet = rng.integers(1, 400, n), rng.integers(0, len(STREETS), n), rng.integers(1, 20, n)
    out = []
    for i in range(n):
        if is_legacy[i]:
            unit, urban = legacy[pick_legacy[i]]
        else:
            name, urban = current[pick_current[i]]
            unit = f"{_lower_first(name)}, tỉnh Ninh Bình"
        place = f"Số {house[i]} đường {STREETS[street[i]]}" if urban else f"Thôn {hamlet[i]}"
        out.append(f"{place}, {unit}")
    return out


@cache
def legacy_wards() -> tuple[tuple[str, bool], ...]:
    """Pre-2025 units of Nam Định, Hà Nam and Ninh Bình as addresses wrote them, and whether urban."""
    marks = ", ".join("?" for _ in LEGACY_PROVINCE_CODES)
    rows = _legacy_query(f"SELECT ward, district, province, wardType FROM admin_units_legacy "
                         f"WHERE provinceCode IN ({marks}) ORDER BY wardCode", LEGACY_PROVINCE_CODES)
    return tuple((f"{_lower_first(w)}, {_lower_first(d)}, {_lower_first(p)}", kind != "Xã")
                 for w, d, p, kind in rows)


def write_business_registry(out_dir: Path, n: int, as_of: date, rng: np.random.Generator) -> dict[str, Path]:
    """Write `dang_ky_kinh_doanh.csv` (Windows-1258) and, for registrations before 2008, the old software's
    `dang_ky_kinh_doanh_cu.csv` (TCVN3); both `;`-separated with CRLF. Same arguments give the same bytes."""
    frame = business_registry(n, as_of, rng)
    old = frame["ngay_dang_ky"].str.to_date("%d/%m/%Y") < TCVN3_BEFORE
    out = {"dang_ky_kinh_doanh": Path(out_dir) / DANG_KY_KINH_DOANH_FILE,
           "dang_ky_kinh_doanh_cu": Path(out_dir) / DANG_KY_KINH_DOANH_CU_FILE}
    out["dang_ky_kinh_doanh"].write_bytes(to_cp1258(frame.filter(~old).write_csv(separator=";",
                                                                                   line_terminator="\r\n")))
    out["dang_ky_kinh_doanh_cu"].write_bytes(to_tcvn3(frame.filter(old).write_csv(separator=";",
                                                                                    line_terminator="\r\n")))
    return out


def to_tcvn3(text: str) -> bytes:
    """Encode as the legacy TCVN3 (ABC) export did: capitals with tones have no byte, so they go lower case
    (they were typed in the uppercase font `.VnTimeH`, which a text file does not keep)."""
    from pipelines.sources import tcvn3

    text = unicodedata.normalize("NFC", text)
    table = {ord(ch): ch.lower() for ch in set(text)
             if ord(ch) >= 0x80 and ord(ch) not in tcvn3.ENCODING_TABLE and ord(ch.lower()) in tcvn3.ENCODING_TABLE}
    return tcvn3.encode(text.translate(table))


def to_cp1258(text: str) -> bytes:
    """Encode Vietnamese text as Windows does in code page 1258: base letters precomposed, tones combining."""
    table = {}
    for ch in set(text):
        if ord(ch) < 128:
            continue
        parts = unicodedata.normalize("NFD", ch)
        tones = "".join(m for m in parts if m in _TONES)
        base = unicodedata.normalize("NFC", "".join(m for m in parts if m not in _TONES))
        table[ord(ch)] = base + tones
    return text.translate(table).encode(ENCODING)


def _vn_number(value: int) -> str:
    """1500000000 → '1.500.000.000'."""
    return f"{value:,}".replace(",", ".")


def _lower_first(name: str) -> str:
    """'Thành phố Nam Định' → 'thành phố Nam Định' (unit types are lower case inside an address)."""
    words = name.split(" ")
    kinds = {"Xã", "Phường", "Thị", "Thành", "Tỉnh", "Huyện", "Quận"}
    if words and words[0] in kinds:
        n = 2 if words[0] in {"Thị", "Thành"} else 1
        return " ".join([*(w.lower() for w in words[:n]), *words[n:]])
    return name
