"""Reference lists that referential expectations check against, generated from installed packages.

An expectation whose `meta.reference` names a list here (e.g. `"communes:37"`) carries that list as its
`value_set`: GX checks it like any in-set expectation, inside DuckDB, and the list is reviewed in git.
`sync_suite` refreshes such value sets after a package update; a test fails while a suite is stale.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path


@cache
def commune_codes(province_code: int) -> tuple[str, ...]:
    """The current (post-1-July-2025) commune-level units of a province, 5-digit codes, from `vietnam-provinces`."""
    from vietnam_provinces import Ward

    return tuple(sorted(f"{w.code.value:05d}" for w in Ward.iter_all() if w.province_code.value == province_code))


@cache
def resolvable_unit_codes(province_code: int) -> tuple[str, ...]:
    """Codes staging can resolve to one current commune of the province: the current communes, plus every
    pre-2025 ward code that went whole into one of them (`vietnamadminunits`). A ward divided among several
    communes is left out: its code alone cannot say which, so its rows are quarantined and listed."""
    from pipelines.reference.admin_units import legacy_mapping

    current = set(commune_codes(province_code))
    legacy = {row[0] for row in legacy_mapping() if row[8] == 1 and row[6] in current}
    return tuple(sorted(current | legacy))


def reference_values(reference: str) -> list[str]:
    """The list a `meta.reference` names: `communes:<province code>` (current communes only) or
    `units:<province code>` (current communes and the legacy ward codes that map to exactly one)."""
    kind, _, arg = reference.partition(":")
    if kind == "communes" and arg.isdigit():
        return list(commune_codes(int(arg)))
    if kind == "units" and arg.isdigit():
        return list(resolvable_unit_codes(int(arg)))
    raise ValueError(f"unknown meta.reference {reference!r}; known: 'communes:<province code>', "
                     "'units:<province code>'")


def sync_suite(path: Path) -> bool:
    """Rewrite the value sets of a suite file's `meta.reference` expectations; True if anything changed."""
    suite = json.loads(path.read_text(encoding="utf-8"))
    changed = False
    for e in suite["expectations"]:
        reference = (e.get("meta") or {}).get("reference")
        if reference:
            values = reference_values(reference)
            changed |= e["kwargs"].get("value_set") != values
            e["kwargs"]["value_set"] = values
    if changed:
        path.write_text(json.dumps(suite, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return changed


if __name__ == "__main__":  # python -m pipelines.quality.reference expectations/gx/expectations/*.json
    import sys

    for arg in sys.argv[1:]:
        print(f"{arg}: {'updated' if sync_suite(Path(arg)) else 'up to date'}")
