"""CCCD, tax code, phone and name rules: the SQL macros and the Python functions give the same answer on the
same inputs, and the answers are right for reasons stated beside each input."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.reference import identifiers as ids
from pipelines.settings import WAREHOUSE_SQL_DIR


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("SET VARIABLE tonghop_pii_key = 'k'")
    c.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
    yield c
    c.close()


def sql(con, macro: str, value):
    return con.execute(f"SELECT {macro}(?::VARCHAR)", [value]).fetchone()[0]


CCCD_CASES = [
    ("037085012345", "037085012345", True),   # Ninh Bình-born (037), man born 1985 (0, 85)
    ("001300000001", "001300000001", True),   # Hà Nội (001), woman born in the 2000s (3)
    ("037 085 012 345", "037085012345", True),  # spaces typed in groups of three are not part of it
    ("037.085.012.345", "037085012345", True),
    ("37085012345", "37085012345", False),    # leading zero lost in a spreadsheet: 11 digits
    ("O37085012345", "O37085012345", False),  # letter O typed for the 0
    ("123456789", "123456789", False),        # an old 9-digit CMND
    ("0370850123456", "0370850123456", False),  # a 13th digit typed
    ("003085012345", "003085012345", False),  # 003 is no province code (the codes skip it)
    ("037585012345", "037585012345", False),  # century digit 5 = born in the 2100s: not a living citizen
    ("", None, None),                         # nothing given: neither valid nor invalid
    (None, None, None),
]


@pytest.mark.parametrize(("raw", "normal", "valid"), CCCD_CASES)
def test_cccd(con, raw, normal, valid):
    assert ids.cccd_normalize(raw) == sql(con, "cccd_normalize", raw) == normal
    assert ids.is_cccd_valid(raw) == sql(con, "is_cccd_valid", raw) == valid


@pytest.mark.parametrize(("raw", "year", "female"), [
    ("037085012345", 1985, False),   # digit 0: 1900s, male
    ("036195012345", 1995, True),    # digit 1: 1900s, female
    ("035203012345", 2003, False),   # digit 2: 2000s, male
    ("37085012345", None, None),     # invalid: nothing derived
])
def test_cccd_birth_year_and_sex(con, raw, year, female):
    assert ids.cccd_birth_year(raw) == sql(con, "cccd_birth_year", raw) == year
    assert ids.cccd_is_female(raw) == sql(con, "cccd_is_female", raw) == female


def test_cccd_province_codes_are_the_63_legacy_provinces():
    # The list in the macro and in Python is law (Circular 07/2016/TT-BCA); the package data must agree.
    from pipelines.demo.places import birth_province_codes

    assert ids.CCCD_PROVINCE_CODES == set(birth_province_codes())
    assert len(ids.CCCD_PROVINCE_CODES) == 63


PHONE_CASES = [
    ("0912345678", "0912345678", True),       # VinaPhone 091
    ("+84912345678", "0912345678", True),     # international form of the same number
    ("84 912 345 678", "0912345678", True),   # without the plus, in groups
    ("0084912345678", "0912345678", True),    # international dialling prefix
    ("091.234.5678", "0912345678", True),
    ("0912 345 678", "0912345678", True),
    ("912345678", "0912345678", True),        # the leading zero lost in a spreadsheet
    ("0321234567", "0321234567", True),       # Viettel 032 (since the 2018 renumbering)
    ("0162345678", "0162345678", False),      # 016x prefixes moved to 03x in 2018: no longer in use
    ("02293871234", "02293871234", False),    # a Ninh Bình landline (0229): not a mobile
    ("091234567", "091234567", False),        # a digit short
    ("abc", "abc", False),
    (None, None, None),
]


@pytest.mark.parametrize(("raw", "normal", "valid"), PHONE_CASES)
def test_phone(con, raw, normal, valid):
    assert ids.phone_normalize(raw) == sql(con, "phone_normalize", raw) == normal
    assert ids.is_phone_valid(raw) == sql(con, "is_phone_valid", raw) == valid
    assert ids.phone_e164(raw) == sql(con, "phone_e164", raw) == ("+84" + normal[1:] if valid else None)


MST_CASES = [
    # 0100109106: 31·0+29·1+23·0+19·0+17·1+13·0+7·9+5·1+3·0 = 114, 114 mod 11 = 4, 10-4 = 6 = 10th digit
    ("0100109106", "0100109106", True),
    ("0100109106-001", "0100109106-001", True),   # branch 001
    ("0100109106001", "0100109106-001", True),    # branch written without the dash
    ("0100 109 106", "0100109106", True),
    ("0100109107", "0100109107", False),          # check digit 7, should be 6
    ("0100109106-000", "0100109106-000", False),  # branch 000 does not exist (the head office has none)
    ("010010910", "010010910", False),            # 9 digits
    ("mst0100109106", "MST0100109106", False),
    (None, None, None),
]


@pytest.mark.parametrize(("raw", "normal", "valid"), MST_CASES)
def test_tax_code(con, raw, normal, valid):
    assert ids.mst_normalize(raw) == sql(con, "mst_normalize", raw) == normal
    assert ids.is_mst_valid(raw) == sql(con, "is_mst_valid", raw) == valid


@pytest.mark.parametrize(("raw", "name", "key", "bare"), [
    (" NGUYỄN  Văn An ", "nguyễn văn an", "nguyenvanan", "nguyenvanan"),
    ("UBND phường Hoa Lư", "ubnd phường hoa lư", "ubndphuonghoalu", "hoalu"),   # agency name -> its commune
    ("Xã Đồng Thái", "xã đồng thái", "xadongthai", "dongthai"),               # đ has no decomposition: mapped
    ("xa dong thai", "xa dong thai", "xadongthai", "dongthai"),               # typed without diacritics
    ("Phương Lâm", "phương lâm", "phuonglam", "phuonglam"),   # 'Phương' is a name, not the word 'Phường '
    ("Đặc khu Phú Quốc", "đặc khu phú quốc", "dackhuphuquoc", "phuquoc"),
])
def test_names_and_unit_keys(con, raw, name, key, bare):
    assert ids.name_normalize(raw) == sql(con, "name_normalize", raw) == name
    assert ids.unit_name_key(raw) == sql(con, "unit_name_key", raw) == key
    assert ids.unit_name_key_bare(raw) == sql(con, "unit_name_key_bare", raw) == bare


def test_every_written_form_of_one_number_gets_one_token(con):
    # Normalise, then pseudonymise: the five forms the demo writes must not become five people.
    forms = ["0912345678", "+84912345678", "84 912 345 678", "091.234.5678", "0912 345 678"]
    tokens = {con.execute("SELECT pseudonymize(phone_normalize(?))", [f]).fetchone()[0] for f in forms}
    assert len(tokens) == 1 and next(iter(tokens)).startswith("ps_")


@pytest.mark.parametrize(("column", "kind"), [
    ("so_cccd", "cccd"), ("cccd_nguoi_nop", "cccd"), ("so_dien_thoai", "phone"), ("sdt", "phone"),
    ("ma_so_thue", "mst"), ("ho_ten", "name"), ("dia_chi", None),
])
def test_identifier_kind_by_column_name(column, kind):
    assert ids.identifier_kind(column) == kind


def test_scanner_lets_through_valid_tax_codes_only_in_tax_code_columns():
    from pipelines.reference.pii import scan_values

    # 0600054254 is a valid enterprise tax code that is also shaped like a 10-digit phone number.
    assert scan_values(["0600054254"], "t", "ma_so_thue") == []
    assert [h.kind for h in scan_values(["0600054254"], "t", "ghi_chu")] == ["phone"]
    # a phone number typed into the tax-code column fails the check digit: still flagged
    assert [h.kind for h in scan_values(["0912345678"], "t", "ma_so_thue")] == ["phone"]


def test_scanner_ignores_content_digests_but_not_identifiers_next_to_them():
    from pipelines.reference.pii import scan_values

    # a real sha256 of a model artefact that holds a 12-digit run (422069153325): a checksum, not a CCCD
    digest = "cff757edf25b422069153325d68165a6e1f9ca0f4bcafc9f810815b81353062b"
    assert scan_values([f'{{"artefact_sha256": "{digest}"}}', digest], "meta.models", "metrics") == []
    # the identifiers themselves are still found, alone or beside a digest
    found = scan_values(["001234567890", f"{digest} 001234567890", "0912345678 " + digest], "t", "c")
    assert [h.kind for h in found] == ["cccd", "cccd", "phone"]
    # a CCCD glued to letters is not a digest (too short, or no hex token at all)
    assert [h.kind for h in scan_values(["cccd001234567890", "xx001234567890abcdefabcdefabcdefabcdef"],
                                        "t", "c")] == ["cccd", "cccd"]
