"""Administrative units as reference tables, from installed packages only (no downloads).

- Current units (since 1 July 2025: 34 provinces, 3,321 communes) with official codes: `vietnam-provinces`.
- Legacy units (63 provinces, districts, 10k wards) and the legacy -> 2025 conversion: the data bundled in
  `vietnamadminunits` (`data/dataset.db`, `data/converter_2025.json`), read directly because importing that
  package costs about a second and its converter parses free text one address at a time.

A legacy ward either went whole into one new commune, or was divided among several: then the mapping
lists every candidate (`n_xa_moi` > 1) and marks the package's default one; normalisation treats such a
code as ambiguous and lists it instead of guessing.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from functools import cache
from importlib.util import find_spec
from pathlib import Path

PROVINCE_COLUMNS = ("ma_tinh", "ten_tinh", "loai_don_vi", "ten_ma", "ma_vung_dien_thoai")
COMMUNE_COLUMNS = ("ma_xa", "ten_xa", "loai_don_vi", "ma_tinh", "ten_ma")
COORDINATE_COLUMNS = ("cap", "ma", "ma_tinh", "vi_do", "kinh_do", "dien_tich_km2")
LEGACY_COLUMNS = ("ma_xa_cu", "ten_xa_cu", "ma_huyen_cu", "ten_huyen_cu", "ma_tinh_cu", "ten_tinh_cu",
                  "ma_xa_moi", "is_mac_dinh", "n_xa_moi")


def _package_data() -> Path:
    spec = find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("reference data needs the 'vietnamadminunits' package: install the project's dependencies")
    return Path(spec.submodule_search_locations[0]) / "data"


def _query(sql: str) -> list[tuple]:
    with closing(sqlite3.connect(f"file:{_package_data() / 'dataset.db'}?mode=ro", uri=True)) as con:
        return con.execute(sql).fetchall()


@cache
def provinces() -> tuple[tuple, ...]:
    """The 34 provincial units: ('01', 'Thành phố Hà Nội', 'thành phố trung ương', 'ha_noi', 24) …"""
    from vietnam_provinces import Province

    return tuple(sorted((f"{p.code.value:02d}", p.name, p.division_type.value, p.codename, p.phone_code)
                        for p in Province.iter_all()))


@cache
def communes() -> tuple[tuple, ...]:
    """The 3,321 commune-level units: ('00070', 'Phường Hoàn Kiếm', 'phường', '01', 'phuong_hoan_kiem') …"""
    from vietnam_provinces import Ward

    return tuple(sorted((f"{w.code.value:05d}", w.name, w.division_type.value, f"{w.province_code.value:02d}",
                         w.codename) for w in Ward.iter_all()))


@cache
def legacy_mapping() -> tuple[tuple, ...]:
    """Every pre-2025 ward with each current commune it went into (one row per candidate)."""
    data = json.loads((_package_data() / "converter_2025.json").read_text(encoding="utf-8"))
    new_code = _current_codes()
    legacy = {f"{p}_{d}_{w}": row for p, d, w, *row in _query(
        "SELECT provinceKey, districtKey, wardKey, wardCode, ward, districtCode, district, provinceCode, province "
        "FROM admin_units_legacy WHERE wardCode IS NOT NULL AND wardCode <> ''")}
    candidates: dict[str, list[tuple[str, bool]]] = {}
    for province_key, wards in data["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for ward_key, old_keys in wards.items():
            for old in old_keys:
                candidates.setdefault(old, []).append((new_code.get((province_key, ward_key)), True))
    for province_key, olds in data["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old, news in olds.items():
            for new in news:
                candidates.setdefault(old, []).append((new_code.get((province_key, new["newWardKey"])),
                                                       bool(new["isDefaultNewWard"])))
    rows = []
    for old, found in candidates.items():
        if old not in legacy:
            continue  # island districts without wards: no ward code to map from
        ward_code, ward, district_code, district, province_code, province = legacy[old]
        distinct = sorted({c for c, _ in found if c})
        default = {c for c, d in found if c and d}
        for code in distinct:
            rows.append((f"{int(ward_code):05d}", ward, f"{int(district_code):03d}", district,
                         f"{int(province_code):02d}", province, f"{int(code):05d}",
                         len(distinct) == 1 or code in default, len(distinct)))
    return tuple(sorted(set(rows)))


@cache
def coordinates() -> tuple[tuple, ...]:
    """Centroid (latitude, longitude) of every 2025 province and commune, and the commune's area, from the
    `admin_units` table bundled in `vietnamadminunits`, under the official codes of `vietnam-provinces`:
    ('tinh', '01', '01', 21.03, 105.85, None), ('xa', '00070', '01', 21.03, 105.85, 1.2) … A unit the two
    packages cannot be matched on, or without coordinates, is left out (the map then lists it as unplaced)."""
    new_code = _current_codes()
    official_provinces = {r[0] for r in provinces()}
    rows: dict[tuple[str, str], tuple] = {}
    for province_code, province_key, ward_key, p_lat, p_lon, w_lat, w_lon, area in _query(
            "SELECT provinceCode, provinceKey, wardKey, provinceLat, provinceLon, wardLat, wardLon, wardAreaKm2 "
            "FROM admin_units"):
        province = f"{int(province_code):02d}"
        if province in official_provinces and p_lat is not None and p_lon is not None:
            rows.setdefault(("tinh", province), ("tinh", province, province, float(p_lat), float(p_lon), None))
        code = new_code.get((province_key, ward_key))
        if code and w_lat is not None and w_lon is not None:
            rows.setdefault(("xa", code), ("xa", code, province, float(w_lat), float(w_lon),
                                           None if area is None else float(area)))
    return tuple(sorted(rows.values()))


def _current_codes() -> dict[tuple[str, str], str]:
    """(provinceKey, wardKey) of `vietnamadminunits` -> official code of `vietnam-provinces`.

    The two packages disagree on the code of ~120 new communes (the official list wins), so units are
    matched by exact name within the province, then by codename, then by code.
    """
    by_name = {(r[3], r[1]): r[0] for r in communes()}
    by_codename = {(r[3], r[4].replace("_", "")): r[0] for r in communes()}
    by_code = {r[0]: r[3] for r in communes()}
    out = {}
    for province_code, province_key, ward_key, ward_code, ward in _query(
            "SELECT provinceCode, provinceKey, wardKey, wardCode, ward FROM admin_units"):
        province, code = f"{int(province_code):02d}", f"{int(ward_code):05d}"
        out[(province_key, ward_key)] = (by_name.get((province, ward)) or by_codename.get((province, ward_key))
                                         or (code if by_code.get(code) == province else None))
    return out


def register(con, prefix: str = "ref_") -> list[str]:
    """Create temp tables `ref_dm_tinh`, `ref_dm_xa`, `ref_dm_xa_cu_moi`, `ref_dm_toa_do` on a DuckDB connection."""
    import polars as pl

    from pipelines.reference.register import temp_table

    tables = {"dm_tinh": (provinces(), PROVINCE_COLUMNS), "dm_xa": (communes(), COMMUNE_COLUMNS),
              "dm_xa_cu_moi": (legacy_mapping(), LEGACY_COLUMNS), "dm_toa_do": (coordinates(), COORDINATE_COLUMNS)}
    names = []
    for name, (rows, columns) in tables.items():
        temp_table(con, prefix + name, pl.DataFrame(rows, schema=list(columns), orient="row"))
        names.append(prefix + name)
    return names
