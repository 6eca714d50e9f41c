"""Administrative units from the installed packages, and normalisation of agency records to current units."""

from __future__ import annotations

import pytest

from pipelines.reference import admin_units
from tests.warehouse.sqlharness import build, connect, given, rows


@pytest.fixture(scope="module")
def units():
    """A DuckDB with the real reference tables and the staging unit models built from them."""
    con = connect("37")
    admin_units.register(con)
    for model in ("staging.dm_tinh", "staging.dm_xa", "staging.dm_xa_cu_moi", "staging.dm_don_vi_tra_cuu"):
        build(con, model)
    yield con
    con.close()


def test_current_units_are_the_2025_reform(units):
    # Resolution 202/2025/QH15: 34 provincial units (28 provinces + 6 cities); 3,321 communes since 1 July 2025.
    assert units.execute("SELECT count(*), count(*) FILTER (WHERE is_thanh_pho_truc_thuoc_tw) "
                         "FROM staging.dm_tinh").fetchone() == (34, 6)
    assert units.execute("SELECT count(*), count(DISTINCT ma_tinh) FROM staging.dm_xa").fetchone() == (3321, 34)
    # Ninh Bình (37) has the 129 communes the demo generates from the same package.
    assert units.execute("SELECT count(*) FROM staging.dm_xa WHERE ma_tinh = '37'").fetchone() == (129,)


def test_legacy_mapping_covers_every_legacy_ward_and_only_current_codes(units):
    n_old, n_unknown_target, n_63 = units.execute("""
        SELECT count(DISTINCT ma_xa_cu), count(*) FILTER (WHERE ten_xa_moi IS NULL), count(DISTINCT ma_tinh_cu)
        FROM staging.dm_xa_cu_moi""").fetchone()
    # 10,035 legacy wards with a code in vietnamadminunits (island districts have none), all 63 provinces,
    # and every target is an official current code (the packages disagree on ~120 codes: the official wins).
    assert (n_old, n_unknown_target, n_63) == (10_035, 0, 63)


@pytest.mark.parametrize(("kind", "key", "expected", "method", "n_candidates"), [
    # a current code is itself: 14464 is Xã Gia Viễn
    ("ma", "14464", "14464", "ma_hien_hanh", 1),
    # 13285 was Phường Quang Trung (Phủ Lý, Hà Nam) but is today's Phường Châu Sơn: the current meaning wins
    ("ma", "13285", "13285", "ma_hien_hanh", 1),
    # 13294, Phường Châu Cầu (Phủ Lý), was retired and went whole into 13291
    ("ma", "13294", "13291", "ma_cu", 1),
    # 13354, Phường Tiên Nội (Duy Tiên), was divided between 13363 and 13366: ambiguous, no guess
    ("ma", "13354", None, "ma_cu", 2),
    # a name typed without diacritics or unit kind resolves within the tenant's province
    ("ten_rut_gon", "giavien", "14464", "ten_hien_hanh", 1),
    ("ten_day_du", "xagiavien", "14464", "ten_hien_hanh", 1),
])
def test_lookup(units, kind, key, expected, method, n_candidates):
    found = rows(units, f"SELECT ma_xa, cach_khop, n_ung_vien FROM staging.dm_don_vi_tra_cuu "
                        f"WHERE loai_khoa = '{kind}' AND pham_vi IN ('37', '*') AND khoa = '{key}' "
                        "ORDER BY pham_vi DESC LIMIT 1")  # '37' > '*' in ASCII: the province scope first
    assert found == [{"ma_xa": expected, "cach_khop": method, "n_ung_vien": n_candidates}]


def test_demo_legacy_codes_map_unambiguously(units):
    # The demo plants retired ward codes of the three merged provinces (pipelines/demo/faults.py): each
    # maps to a current commune of Ninh Bình unless its ward was divided among several communes.
    from pipelines.demo.places import retired_ward_codes

    codes = retired_ward_codes()
    given(units, "demo_codes", "ma_xa VARCHAR", [(c,) for c in codes])
    n, n_mapped, n_ambiguous, n_in_37 = units.execute("""
        SELECT count(*), count(t.ma_xa), count(*) FILTER (WHERE t.n_ung_vien > 1), count(*) FILTER (WHERE t.ma_tinh = '37')
        FROM demo_codes d LEFT JOIN staging.dm_don_vi_tra_cuu t ON t.loai_khoa = 'ma' AND t.khoa = d.ma_xa""").fetchone()
    assert n == len(codes) and n_mapped + n_ambiguous == n   # never unknown: all are legacy codes
    assert n_mapped == n_in_37 and n_mapped / n > 0.98       # 266 of 269 whole, 3 wards were divided


def test_quarantine_reference_accepts_exactly_the_resolvable_codes(units):
    # The ho_so suite's in-set check (meta.reference 'units:37') lets through what staging can resolve to
    # one commune of the province, and nothing else: the demo's planted faults are the divided wards.
    from pipelines.demo.places import communes, divided_ward_codes, retired_ward_codes
    from pipelines.quality.reference import resolvable_unit_codes

    allowed = set(resolvable_unit_codes(37))
    divided = set(divided_ward_codes())
    assert len(divided) == 3 and not divided & allowed
    assert allowed == {c.code for c in communes()} | (set(retired_ward_codes()) - divided)
    given(units, "all_codes", "ma_xa VARCHAR", [(c,) for c in sorted(allowed | divided)])
    resolved = dict(units.execute("""
        SELECT d.ma_xa, t.ma_tinh FROM all_codes d LEFT JOIN staging.dm_don_vi_tra_cuu t
        ON t.loai_khoa = 'ma' AND t.khoa = d.ma_xa AND t.n_ung_vien = 1""").fetchall())
    assert {c for c, p in resolved.items() if p == "37"} == allowed
