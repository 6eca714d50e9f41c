"""Entry point: write the demo province's source files (dossier CSV and indicator workbook)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from pipelines.demo.business_registry import write_business_registry
from pipelines.demo.dossiers import dossiers
from pipelines.demo.faults import plant
from pipelines.demo.indicators import write_indicators
from pipelines.demo.onestop_db import MOT_CUA_FILE, load_postgres, write_sqlite
from pipelines.demo.staffing import write_roster
from pipelines.demo.workbooks import write_workbook

HO_SO_FILE = "ho_so_mot_cua.csv"
CHI_SO_FILE = "chi_so_xa_hoi_so.xlsx"
DATE_FORMAT, TIMESTAMP_FORMAT = "%d/%m/%Y", "%d/%m/%Y %H:%M:%S"


def generate(out_dir: Path, *, rows: int = 20_000, seed: int = 37, as_of: date = date(2025, 11, 1),
             faults: bool = True, postgres_dsn: str | None = None) -> dict[str, Path]:
    """Write `ho_so_mot_cua.csv` (`rows` dossiers) and `chi_so_xa_hoi_so.xlsx` into `out_dir`.

    Same arguments give byte-identical files. With `faults`, the CSV also carries the faults counted by
    `planted_faults(rows)`, including a few duplicate lines appended at the end. The same dossiers also
    go into the one-stop-shop database `mot_cua.sqlite` (and, with `postgres_dsn`, into PostgreSQL).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = dossiers(rows, seed, as_of)
    if faults:
        frame = plant(frame, np.random.default_rng([seed, 7]))
    ho_so = out_dir / HO_SO_FILE
    frame.write_csv(ho_so, date_format=DATE_FORMAT, datetime_format=TIMESTAMP_FORMAT)
    mot_cua = write_sqlite(out_dir / MOT_CUA_FILE, frame)
    if postgres_dsn:
        load_postgres(postgres_dsn, frame)
    chi_so = write_workbook(out_dir / CHI_SO_FILE, np.random.default_rng([seed, 8]))
    return {"ho_so": ho_so, "chi_so_xa_hoi_so": chi_so, "can_bo": write_roster(out_dir, seed),
            "chi_so_cds_tinh": write_indicators(out_dir), "mot_cua": mot_cua,
            # one enterprise per ~20 dossiers: dang_ky_kinh_doanh (Windows-1258) and _cu (TCVN3)
            **write_business_registry(out_dir, max(200, rows // 20), as_of, np.random.default_rng([seed, 10]))}
