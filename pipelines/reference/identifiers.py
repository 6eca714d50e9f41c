"""Vietnamese identifiers in Python, rule for rule the same as the SQL macros in `warehouse/macros.sql`.

The warehouse validates and normalises with the SQL macros (set-based, fast); these functions exist to
state the rules readably, to check single values (CLI, apps) and to test the macros against
(`tests/reference/test_identifiers.py` runs both on the same inputs). Missing values give None.

- CCCD (căn cước công dân, Circular 59/2021/TT-BCA): 12 digits = 3-digit province-of-birth code (one of
  the 63 pre-2025 provinces), 1 century/sex digit (0/1: 1900s male/female, 2/3: 2000s), 2 digits of the
  birth year, 6 random digits.
- Tax code (mã số thuế, Circular 105/2020/TT-BTC): 10 digits whose 10th is a check digit over the first 9
  (weights 31 29 23 19 17 13 7 5 3, N10 = 10 - sum mod 11), optionally `-NNN` for a branch (001-999).
- Mobile numbers: 10 digits `0` + network prefix + 7 digits since the 2018 renumbering; `+84`, `84`,
  `0084` and a lost leading zero are the same number. Normal form: `0xxxxxxxxx`.
"""

from __future__ import annotations

import re
import unicodedata

from pipelines.sqltext import quote_ident

# The 63 pre-2025 province codes that open a CCCD number (they did not change on 1 July 2025).
CCCD_PROVINCE_CODES = frozenset((
    "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020", "022", "024",
    "025", "026", "027", "030", "031", "033", "034", "035", "036", "037", "038", "040", "042", "044", "045",
    "046", "048", "049", "051", "052", "054", "056", "058", "060", "062", "064", "066", "067", "068", "070",
    "072", "074", "075", "077", "079", "080", "082", "083", "084", "086", "087", "089", "091", "092", "093",
    "094", "095", "096"))
MST_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)
_SEPARATORS = re.compile(r"[ \t\r\n.()-]")
_MOBILE = re.compile(r"0(3[2-9]|5[25689]|7[06-9]|8[1-9]|9[0-46-9])[0-9]{7}")


def _clean(value: object, separators: re.Pattern = _SEPARATORS) -> str | None:
    if value is None:
        return None
    return separators.sub("", str(value)) or None


def cccd_normalize(value: object) -> str | None:
    """Separators (spaces, dots, dashes, brackets) dropped: '037 085 012 345' -> '037085012345'."""
    return _clean(value)


def is_cccd_valid(value: object) -> bool | None:
    """12 digits, a known province-of-birth code and a 20th/21st-century digit."""
    n = cccd_normalize(value)
    if n is None:
        return None
    return bool(re.fullmatch(r"[0-9]{12}", n)) and n[:3] in CCCD_PROVINCE_CODES and n[3] in "0123"


def cccd_birth_year(value: object) -> int | None:
    """Birth year a valid CCCD encodes (century digit // 2 gives the century after 1900)."""
    n = cccd_normalize(value)
    if not is_cccd_valid(n):
        return None
    return 1900 + 100 * (int(n[3]) // 2) + int(n[4:6])


def cccd_is_female(value: object) -> bool | None:
    n = cccd_normalize(value)
    return int(n[3]) % 2 == 1 if is_cccd_valid(n) else None


def phone_normalize(value: object) -> str | None:
    """One form for a Vietnamese number: '+84 912 345 678', '84912345678', '912345678' -> '0912345678'.

    Anything else keeps its digits (and characters) without separators, so it still pseudonymises stably.
    """
    d = _clean(value)
    if d is None:
        return None
    if re.fullmatch(r"\+84[0-9]{9}", d):
        return "0" + d[3:]
    if re.fullmatch(r"0084[0-9]{9}", d):
        return "0" + d[4:]
    if re.fullmatch(r"84[0-9]{9}", d):
        return "0" + d[2:]
    if re.fullmatch(r"[1-9][0-9]{8}", d):  # the leading 0 lost in a spreadsheet
        return "0" + d
    return d


def is_phone_valid(value: object) -> bool | None:
    """A Vietnamese mobile number on a network prefix in use since 2018."""
    n = phone_normalize(value)
    return None if n is None else bool(_MOBILE.fullmatch(n))


def phone_e164(value: object) -> str | None:
    """'0912345678' -> '+84912345678' for valid mobiles, else None."""
    n = phone_normalize(value)
    return "+84" + n[1:] if is_phone_valid(n) else None


def mst_normalize(value: object) -> str | None:
    """Upper-cased, spaces and dots dropped; a 13-digit run becomes '0101234567-001'."""
    d = _clean(None if value is None else str(value).upper(), re.compile(r"[ \t\r\n.()]"))
    if d is not None and re.fullmatch(r"[0-9]{13}", d):
        return f"{d[:10]}-{d[10:]}"
    return d


def is_mst_valid(value: object) -> bool | None:
    """10 digits with a correct check digit, plus an optional branch suffix 001-999."""
    n = mst_normalize(value)
    if n is None:
        return None
    if not re.fullmatch(r"[0-9]{10}(-[0-9]{3})?", n) or n[10:] == "-000":
        return False
    check = 10 - sum(int(d) * w for d, w in zip(n[:9], MST_WEIGHTS, strict=True)) % 11
    return check == int(n[9])


def name_normalize(value: object) -> str | None:
    """NFC, lower case, runs of whitespace to one space: 'NGUYỄN  Văn A ' -> 'nguyễn văn a'."""
    if value is None:
        return None
    n = re.sub(r"[ \t\r\n]+", " ", unicodedata.normalize("NFC", str(value))).strip(" ").lower()
    return n or None


# Personal columns are recognised by name: which normaliser runs before pseudonymising, which flag is kept.
KIND_PATTERNS = (
    ("cccd", re.compile(r"(^|_)(cccd|cmnd|so_dinh_danh|can_cuoc)($|_)")),
    ("phone", re.compile(r"(^|_)(dien_thoai|sdt|so_dt|di_dong|phone)($|_)")),
    ("mst", re.compile(r"(^|_)(mst|ma_so_thue)($|_)")),
    ("name", re.compile(r"(^|_)(ho_ten|ho_va_ten|ten_nguoi|full_name)($|_)")),
)
SQL_NORMALIZER = {"cccd": "cccd_normalize", "phone": "phone_normalize", "mst": "mst_normalize",
                  "name": "name_normalize"}
SQL_VALIDATOR = {"cccd": "is_cccd_valid", "phone": "is_phone_valid", "mst": "is_mst_valid"}


def identifier_kind(column: str) -> str | None:
    """'so_cccd' -> 'cccd', 'so_dien_thoai' -> 'phone', 'ho_ten' -> 'name'; None when unrecognised."""
    for kind, pattern in KIND_PATTERNS:
        if pattern.search(column.lower()):
            return kind
    return None


UNIT_KIND_PREFIX = re.compile(r"^[ \t\r\n]*((ubnd|ủy ban nhân dân|uỷ ban nhân dân|uy ban nhan dan)[ \t\r\n]+)?"
                              r"(xã|phường|đặc khu|thị trấn|xa|phuong|dac khu|thi tran)[ \t\r\n]+")


def unit_name_key(value: object) -> str | None:
    """'UBND Phường Hoa Lư' -> 'ubndphuonghoalu': no diacritics, case, spaces or punctuation; đ -> d."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", str(value)).lower()
    # as DuckDB's strip_accents: decompose, drop combining marks; 'đ' is a letter of its own, mapped after
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "", unicodedata.normalize("NFC", text).replace("đ", "d")) or None


def unit_name_key_bare(value: object) -> str | None:
    """'UBND phường Hoa Lư' -> 'hoalu': also without a leading 'UBND' and the unit-kind word."""
    if value is None:
        return None
    return unit_name_key(UNIT_KIND_PREFIX.sub("", unicodedata.normalize("NFC", str(value)).lower()))


def personal_column_sql(columns: list[str]) -> tuple[list[str], list[str]]:
    """SQL for a source's personal columns: (REPLACE items: normalised then pseudonymised, extra items:
    validity flags computed from the raw value, e.g. `is_cccd_valid("so_cccd") AS "is_so_cccd_valid"`)."""
    replace, flags = [], []
    for column in columns:
        kind = identifier_kind(column)
        quoted = quote_ident(column)
        value = f"{SQL_NORMALIZER[kind]}({quoted})" if kind else quoted
        replace.append(f"pseudonymize({value}) AS {quoted}")
        if kind in SQL_VALIDATOR:
            # a value already tokenised by the retention purge has no validity left to tell
            flags.append(f"CASE WHEN NOT starts_with(lower(CAST({quoted} AS VARCHAR)), 'ps_') "
                         f'THEN {SQL_VALIDATOR[kind]}({quoted}) END AS "is_{column}_valid"')
    return replace, flags
