"""Real-world faults planted in the dossier export, in exact, documented numbers for data-quality tests.

Each fault hits its own rows (no row carries two), so every count below is exact. None of them nulls
`ma_ho_so`, `ngay_nhan` or `trang_thai`: a fault must be caught by checks, not block the load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.demo.places import divided_ward_codes


@dataclass(frozen=True)
class Fault:
    """One kind of planted fault: how often (per dossier) and what it looks like."""

    rate: float
    description: str


FAULTS: dict[str, Fault] = {
    "so_cccd_invalid": Fault(
        0.002, "so_cccd is not 12 digits (in turn): leading zeros lost in a spreadsheet (10-11 digits), the "
        "letter O typed for the first 0, an old 9-digit CMND number, or a 13th digit typed"),
    "ngay_tra_before_ngay_nhan": Fault(
        0.001, "a returned dossier's ngay_tra is 1-60 days before its ngay_nhan (a mistyped return date; "
        "ngay_cap_nhat keeps the real return time)"),
    "ma_xa_unknown": Fault(
        0.001, "ma_xa is a pre-July-2025 ward code of Ninh Bình, Hà Nam or Nam Định whose ward was divided among "
        "several current communes, so no commune can be chosen from the code (codes of wards that went whole "
        "into one commune are not faults: staging maps them)"),
    "ma_ho_so_duplicate": Fault(
        0.0005, "an extra row that repeats another dossier's row exactly (a re-exported batch appended at the end)"),
}


def planted_faults(rows: int) -> dict[str, int]:
    """How many rows carry each fault when `generate(rows=rows, faults=True)`; the seed only moves them.

    Counts are `rate × rows` rounded half up. Duplicates are extra lines: the CSV then holds
    `rows + planted_faults(rows)["ma_ho_so_duplicate"]` data lines and `rows` distinct `ma_ho_so`.
    """
    return {name: int(np.floor(f.rate * rows + 0.5)) for name, f in FAULTS.items()}


def plant(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """`frame` (clean dossiers) with the planted faults of `planted_faults(frame.height)`."""
    counts = planted_faults(frame.height)
    returned = (frame["trang_thai"] == "da_tra").to_numpy()
    order = rng.permutation(frame.height)
    # Dates first: only returned dossiers have an ngay_tra to mistype.
    late_rows = order[returned[order]][: counts["ngay_tra_before_ngay_nhan"]]
    if late_rows.size < counts["ngay_tra_before_ngay_nhan"]:
        raise ValueError(f"only {late_rows.size} returned dossiers, too few to plant "
                         f"{counts['ngay_tra_before_ngay_nhan']} ngay_tra faults: raise rows or move as_of later")
    rest = order[~np.isin(order, late_rows)]
    n_cccd, n_xa, n_dup = counts["so_cccd_invalid"], counts["ma_xa_unknown"], counts["ma_ho_so_duplicate"]
    if rest.size < n_cccd + n_xa + n_dup:
        raise ValueError(f"{frame.height} rows are too few to plant {sum(counts.values())} faults")
    cccd_rows, xa_rows = rest[:n_cccd], rest[n_cccd: n_cccd + n_xa]
    dup_rows = rest[n_cccd + n_xa: n_cccd + n_xa + n_dup]

    legacy = np.array(divided_ward_codes())
    n = frame.height
    shift_days = _at(late_rows, rng.integers(1, 61, late_rows.size), n)
    faulty = frame.with_columns(
        pl.coalesce(pl.col("ngay_nhan") - pl.duration(days=shift_days), "ngay_tra").alias("ngay_tra"),
        pl.coalesce(_at(xa_rows, legacy[rng.integers(0, legacy.size, xa_rows.size)], n), "ma_xa").alias("ma_xa"),
        pl.coalesce(_at(cccd_rows, _broken_cccd(frame["so_cccd"].gather(cccd_rows), rng), n), "so_cccd")
        .alias("so_cccd"),
    )
    return pl.concat([faulty, frame[np.sort(dup_rows)]])


def _at(rows: np.ndarray, values, height: int) -> pl.Series:
    """A full-height column holding `values` at `rows` and null elsewhere, to coalesce into a frame."""
    values = pl.Series(values)
    return pl.select(pl.repeat(None, height, dtype=values.dtype)).to_series().scatter(rows, values)


def _broken_cccd(cccd: pl.Series, rng: np.random.Generator) -> pl.Series:
    """The four shapes a CCCD number takes when it goes wrong, in turn."""
    kind = pl.Series(np.arange(cccd.len()) % 4)
    old_cmnd = pl.Series(rng.integers(10**8, 10**9, cccd.len())).cast(pl.String)
    extra_digit = pl.Series(rng.integers(0, 10, cccd.len())).cast(pl.String)
    return pl.select(
        # A valid CCCD starts with 0 (province codes 001-096): a spreadsheet drops it, leaving 10-11 digits.
        pl.when(pl.lit(kind) == 0).then(pl.lit(cccd).str.strip_chars_start("0"))
        .when(pl.lit(kind) == 1).then(pl.lit(cccd).str.replace("0", "O", literal=True, n=1))
        .when(pl.lit(kind) == 2).then(pl.lit(old_cmnd))  # a pre-2016 9-digit CMND number
        .otherwise(pl.concat_str(pl.lit(cccd), pl.lit(extra_digit)))
    ).to_series()
