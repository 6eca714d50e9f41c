"""Officers at the one-stop-shop counters (cán bộ một cửa) per receiving agency: the demo's staffing roster.

Each agency is staffed after its expected share of the dossiers (`pipelines.demo.dossiers.agency_shares`:
procedure volumes, commune sizes), with noise: the roster is plausible but not optimal, as real rosters are,
so the staffing recommendation has something to find. The same officers are on duty every week (the source
holds one roster, no history); the dossier generator makes them take up dossiers first come, first served
(`pipelines.demo.dossiers.queue_wait`), so an agency with more load per officer returns later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pipelines.demo.catalogue import DEPARTMENTS, commune_agency_name
from pipelines.demo.places import communes

CAN_BO_FILE = "can_bo_mot_cua.csv"
ROSTER_STREAM = 9  # the roster's random stream: numpy default_rng([seed, ROSTER_STREAM])
OFFICER_UNITS = 300  # officers a perfectly balanced roster would have in all (before noise and minimums)
STAFFING_NOISE = 0.5  # lognormal sigma of each agency's officers around its share
MAX_UTILISATION = 0.9  # no counter is staffed so thin that it falls behind on an average day
MIN_OFFICERS = 1


def roster(seed: int) -> pl.DataFrame:
    """One row per receiving agency: co_quan (agency name as in the dossiers), so_can_bo (officers on duty).

    Officers ≈ share × OFFICER_UNITS × noise, at least MIN_OFFICERS and at least enough for the counter to keep
    up on an average day (utilisation ≤ MAX_UTILISATION at the generator's UTILISATION).
    """
    from pipelines.demo.dossiers import UTILISATION, agency_shares

    rng = np.random.default_rng([seed, ROSTER_STREAM])
    share = agency_shares(seed)
    wanted = np.round(share * OFFICER_UNITS * rng.lognormal(0.0, STAFFING_NOISE, share.size))
    keeps_up = np.ceil(share * OFFICER_UNITS * UTILISATION / MAX_UTILISATION)
    officers = np.maximum.reduce([wanted, keeps_up, np.full(share.size, MIN_OFFICERS)]).astype(np.int64)
    return pl.DataFrame({
        "co_quan": [*DEPARTMENTS, *(commune_agency_name(c.name) for c in communes())],
        "so_can_bo": pl.Series(officers, dtype=pl.Int64),
    })


def write_roster(out_dir: Path, seed: int) -> Path:
    """Write `can_bo_mot_cua.csv` into `out_dir`; the same seed gives the same bytes."""
    path = Path(out_dir) / CAN_BO_FILE
    roster(seed).write_csv(path)
    return path
