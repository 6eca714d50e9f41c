"""Officers at the one-stop-shop counters (cán bộ một cửa) per receiving agency: the demo's staffing roster.

Departments are staffed roughly after their share of procedures, communes with two or three officers
(wards three), each with some noise: the roster is plausible but not optimal, as real rosters are, so the
staffing recommendation has something to find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pipelines.demo.catalogue import DEPARTMENTS, PROCEDURES, commune_agency_name
from pipelines.demo.places import communes

CAN_BO_FILE = "can_bo_mot_cua.csv"


def roster(rng: np.random.Generator) -> pl.DataFrame:
    """One row per receiving agency: co_quan (agency name as in the dossiers), so_can_bo (officers)."""
    volume = {name: sum(p.volume for p in PROCEDURES if p.agency == name) for name in DEPARTMENTS}
    top = max(volume.values())
    dept = [max(2, round(3 + 9 * volume[name] / top * rng.lognormal(0.0, 0.3))) for name in DEPARTMENTS]
    units = communes()
    commune = [int(3 if c.is_ward else 2) + int(rng.integers(0, 2)) for c in units]
    return pl.DataFrame({
        "co_quan": [*DEPARTMENTS, *(commune_agency_name(c.name) for c in units)],
        "so_can_bo": pl.Series([*dept, *commune], dtype=pl.Int64),
    })


def write_roster(out_dir: Path, rng: np.random.Generator) -> Path:
    """Write `can_bo_mot_cua.csv` into `out_dir`; the same generator state gives the same bytes."""
    path = Path(out_dir) / CAN_BO_FILE
    roster(rng).write_csv(path)
    return path
