"""Real reference places for the demo: Ninh Bình's 129 communes, legacy ward codes, CCCD province codes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROVINCE_CODE = 37  # Tỉnh Ninh Bình after 1 July 2025 (former Ninh Bình, Hà Nam and Nam Định)
PROVINCE_NAME = "Ninh Bình"
# Legacy provinces merged into today's Ninh Bình (their pre-2025 ward codes still circulate in old systems).
LEGACY_PROVINCE_CODES = ("35", "36", "37")


@dataclass(frozen=True)
class Commune:
    """A current commune-level unit: 5-digit code, official name ('Xã Gia Viễn'), ward (phường) or not."""

    code: str
    name: str
    is_ward: bool


@cache
def communes() -> tuple[Commune, ...]:
    """The province's current communes and wards, ordered by code."""
    from vietnam_provinces import Ward

    units = [w for w in Ward.iter_all() if w.province_code.value == PROVINCE_CODE]
    return tuple(
        sorted(
            (Commune(f"{w.code.value:05d}", w.name, w.division_type.value == "phường") for w in units),
            key=lambda c: c.code,
        )
    )


@cache
def retired_ward_codes() -> tuple[str, ...]:
    """Pre-2025 ward codes of the three merged provinces that no current commune kept (unknown today)."""
    placeholders = ", ".join("?" for _ in LEGACY_PROVINCE_CODES)
    rows = _legacy_query(f"SELECT DISTINCT wardCode FROM admin_units_legacy WHERE provinceCode IN ({placeholders})",
                         LEGACY_PROVINCE_CODES)
    current = {c.code for c in communes()}
    return tuple(sorted({code for (code,) in rows if code} - current))


@cache
def divided_ward_codes() -> tuple[str, ...]:
    """Retired ward codes whose ward was divided among several current communes: the code alone cannot say
    which one, so normalisation must not guess (the demo plants them as unresolvable commune codes)."""
    from pipelines.reference.admin_units import legacy_mapping

    retired = set(retired_ward_codes())
    return tuple(sorted({row[0] for row in legacy_mapping() if row[8] > 1 and row[0] in retired}))


@cache
def birth_province_codes() -> tuple[str, ...]:
    """The 63 legacy province codes that open a CCCD number ('001' Hà Nội … '096' Cà Mau)."""
    rows = _legacy_query("SELECT DISTINCT provinceCode FROM admin_units_legacy")
    return tuple(sorted(f"{int(code):03d}" for (code,) in rows))


@contextmanager
def demo_province(code: int) -> Iterator[str]:
    """Generate for another of the 34 provinces of 2025 meanwhile: its communes, name and merged legacy provinces
    (the multi-tenant load test, benchmarks/bench_tenants.py). Yields the province's name; one thread only."""
    global PROVINCE_CODE, PROVINCE_NAME, LEGACY_PROVINCE_CODES
    from vietnam_provinces import Province

    from pipelines.reference.admin_units import legacy_mapping

    name = next((p.name for p in Province.iter_all() if p.code.value == code), None)
    if name is None:
        raise ValueError(f"no province with code {code} in the 2025 list (vietnam-provinces)")
    saved = PROVINCE_CODE, PROVINCE_NAME, LEGACY_PROVINCE_CODES
    caches = (communes, retired_ward_codes, divided_ward_codes)
    try:
        PROVINCE_CODE, PROVINCE_NAME = code, name.removeprefix("Tỉnh ").removeprefix("Thành phố ")
        for f in caches:
            f.cache_clear()
        current = {c.code for c in communes()}
        LEGACY_PROVINCE_CODES = tuple(sorted({row[4] for row in legacy_mapping() if row[6] in current}))
        yield name
    finally:
        PROVINCE_CODE, PROVINCE_NAME, LEGACY_PROVINCE_CODES = saved
        for f in caches:
            f.cache_clear()


def _legacy_query(sql: str, params: tuple = ()) -> list[tuple]:
    """Query `vietnamadminunits`' bundled SQLite file (importing the package itself costs ~1 s)."""
    import sqlite3
    from importlib.util import find_spec

    spec = find_spec("vietnamadminunits")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the demo needs the 'vietnamadminunits' package: install the project's dependencies")
    db = Path(spec.submodule_search_locations[0]) / "data" / "dataset.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        return con.execute(sql, params).fetchall()
