"""The 34 provinces and centrally-run cities after 1 July 2025, with their communes (from `vietnam-provinces`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pipelines.demo.places import Commune


@dataclass(frozen=True)
class Province:
    """A current province: 2-digit code ('01'), official name ('Thành phố Hà Nội'), short name ('Hà Nội')."""

    code: str
    name: str
    short_name: str
    is_city: bool
    communes: tuple[Commune, ...]

    @property
    def weight(self) -> float:
        """Relative size (applications, licences): communes, with the five centrally-run cities counting triple."""
        return len(self.communes) * (3.0 if self.is_city else 1.0)


@cache
def provinces() -> tuple[Province, ...]:
    """The 34 provinces, ordered by code."""
    from vietnam_provinces import Province as VnProvince
    from vietnam_provinces import Ward

    by_province: dict[int, list[Commune]] = {}
    for w in Ward.iter_all():
        by_province.setdefault(w.province_code.value, []).append(
            Commune(f"{w.code.value:05d}", w.name, w.division_type.value == "phường"))
    out = []
    for p in VnProvince.iter_all():
        is_city = p.division_type.value == "thành phố trung ương"
        short = p.name.removeprefix("Thành phố ").removeprefix("Tỉnh ")
        out.append(Province(f"{p.code.value:02d}", p.name if is_city else f"Tỉnh {p.name}", short, is_city,
                            tuple(sorted(by_province.get(p.code.value, []), key=lambda c: c.code))))
    return tuple(sorted(out, key=lambda p: p.code))
