"""Entry point: write the demo province's source files (dossier CSV and indicator workbook)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from pipelines.demo.dossiers import dossiers
from pipelines.demo.faults import plant
from pipelines.demo.workbooks import write_workbook

HO_SO_FILE = "ho_so_mot_cua.csv"
CHI_SO_FILE = "chi_so_xa_hoi_so.xlsx"
DATE_FORMAT, TIMESTAMP_FORMAT = "%d/%m/%Y", "%d/%m/%Y %H:%M:%S"


def generate(out_dir: Path, *, rows: int = 20_000, seed: int = 37, as_of: date = date(2025, 11, 1),
             faults: bool = True) -> dict[str, Path]:
    """Write `ho_so_mot_cua.csv` (`rows` dossiers) and `chi_so_xa_hoi_so.xlsx` into `out_dir`.

    Same arguments give byte-identical files. With `faults`, the CSV also carries the faults counted by
    `planted_faults(rows)`, including a few duplicate lines appended at the end.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = dossiers(rows, seed, as_of)
    if faults:
        frame = plant(frame, np.random.default_rng([seed, 7]))
    ho_so = out_dir / HO_SO_FILE
    frame.write_csv(ho_so, date_format=DATE_FORMAT, datetime_format=TIMESTAMP_FORMAT)
    chi_so = write_workbook(out_dir / CHI_SO_FILE, np.random.default_rng([seed, 8]))
    return {"ho_so": ho_so, "chi_so_xa_hoi_so": chi_so}
