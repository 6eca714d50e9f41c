"""The one-stop-shop system (hệ thống một cửa) as the database it really is: SQLite by default, PostgreSQL on request.

Three tables, as in the agency's software: `ho_so` (dossiers — the same rows as the CSV export, planted
faults included, since old systems enforce no key), `thu_tuc` (procedures: code, name, field, receiver,
legal processing days) and `co_quan` (receiving agencies). SQLite has no date type: dates are ISO text
(`2025-01-31`, `2025-01-31 08:15:00`), which sort as they compare, so a watermark filter
`ngay_cap_nhat > '…'` pushed down to the file is right; the tenant casts them with `options.types`.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
from contextlib import closing
from pathlib import Path

import polars as pl

from pipelines.demo.catalogue import (
    DEPARTMENTS,
    PROCEDURES,
    commune_agency_code,
    commune_agency_name,
    department_code,
)
from pipelines.demo.places import communes

MOT_CUA_FILE = "mot_cua.sqlite"
PAGE_SIZE = 4096  # fixed, so the same rows give the same file on every SQLite build

SCHEMA: dict[str, tuple[tuple[str, str, str], ...]] = {
    # table → (column, SQLite type, PostgreSQL type); the first column is the key except for ho_so.
    "co_quan": (("ma_co_quan", "TEXT", "text"), ("ten_co_quan", "TEXT", "text"), ("cap", "TEXT", "text"),
                ("ma_xa", "TEXT", "text")),
    "thu_tuc": (("ma_thu_tuc", "TEXT", "text"), ("ten_thu_tuc", "TEXT", "text"), ("linh_vuc", "TEXT", "text"),
                ("co_quan_tiep_nhan", "TEXT", "text"), ("so_ngay_giai_quyet", "INTEGER", "integer")),
    "ho_so": (("ma_ho_so", "TEXT", "text"), ("ma_thu_tuc", "TEXT", "text"), ("linh_vuc", "TEXT", "text"),
              ("co_quan", "TEXT", "text"), ("ma_xa", "TEXT", "text"), ("ngay_nhan", "TEXT", "date"),
              ("ngay_hen_tra", "TEXT", "date"), ("ngay_tra", "TEXT", "date"), ("trang_thai", "TEXT", "text"),
              ("so_cccd", "TEXT", "text"), ("so_dien_thoai", "TEXT", "text"), ("ho_ten", "TEXT", "text"),
              ("ngay_cap_nhat", "TEXT", "timestamp")),
}


def tables(dossiers: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The three tables, every value as the database stores it (dates as ISO text), in a fixed row order."""
    units = communes()
    co_quan = pl.DataFrame({
        "ma_co_quan": [*(department_code(i) for i in range(len(DEPARTMENTS))),
                       *(commune_agency_code(c.code) for c in units)],
        "ten_co_quan": [*DEPARTMENTS, *(commune_agency_name(c.name) for c in units)],
        "cap": ["tinh"] * len(DEPARTMENTS) + ["xa"] * len(units),
        "ma_xa": [None] * len(DEPARTMENTS) + [c.code for c in units],
    }, schema={"ma_co_quan": pl.String, "ten_co_quan": pl.String, "cap": pl.String, "ma_xa": pl.String})
    thu_tuc = pl.DataFrame({
        "ma_thu_tuc": [p.code for p in PROCEDURES],
        "ten_thu_tuc": [p.name for p in PROCEDURES],
        "linh_vuc": [p.field for p in PROCEDURES],
        "co_quan_tiep_nhan": [p.agency for p in PROCEDURES],
        "so_ngay_giai_quyet": pl.Series([p.legal_days for p in PROCEDURES], dtype=pl.Int64),
    }).unique("ma_thu_tuc", keep="first", maintain_order=True)
    ho_so = dossiers.select(
        pl.exclude("ngay_nhan", "ngay_hen_tra", "ngay_tra", "ngay_cap_nhat"),
        *(pl.col(c).dt.strftime("%Y-%m-%d") for c in ("ngay_nhan", "ngay_hen_tra", "ngay_tra")),
        pl.col("ngay_cap_nhat").dt.strftime("%Y-%m-%d %H:%M:%S"),
    ).select([c for c, _, _ in SCHEMA["ho_so"]])
    return {"co_quan": co_quan, "thu_tuc": thu_tuc, "ho_so": ho_so}


def write_sqlite(path: Path, dossiers: pl.DataFrame) -> Path:
    """Write `mot_cua.sqlite` from scratch: fixed page size, no journal, rows in the frames' order."""
    path = Path(path)
    path.unlink(missing_ok=True)
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("BEGIN")
        for name, frame in tables(dossiers).items():
            cols = SCHEMA[name]
            key = "" if name == "ho_so" else f", PRIMARY KEY ({cols[0][0]})"
            db.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t, _ in cols)}{key})")
            db.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(cols))})", frame.iter_rows())
        # What the software queries by: updates since a moment (the export), a dossier by its number.
        db.execute("CREATE INDEX ix_ho_so_ngay_cap_nhat ON ho_so (ngay_cap_nhat)")
        db.execute("CREATE INDEX ix_ho_so_ma_ho_so ON ho_so (ma_ho_so)")
        db.execute("COMMIT")
    return path


def content_digest(path: Path) -> str:
    """sha256 over every table's rows in rowid order: equal digests mean equal databases, whatever the bytes."""
    digest = hashlib.sha256()
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            digest.update(name.encode())
            for row in db.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                digest.update(repr(row).encode())
    return digest.hexdigest()


def load_postgres(dsn: str, dossiers: pl.DataFrame, schema: str = "public") -> dict[str, int]:
    """(Re)create the three tables in PostgreSQL with real DATE/TIMESTAMP types and fill them with COPY.

    Each table is streamed as one CSV buffer through `COPY … FROM STDIN`, in one transaction: a reader
    never sees half a load. Returns rows written per table.
    """
    import psycopg

    written: dict[str, int] = {}
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for name, frame in tables(dossiers).items():
            cols = SCHEMA[name]
            key = "" if name == "ho_so" else f", PRIMARY KEY ({cols[0][0]})"
            cur.execute(f'DROP TABLE IF EXISTS "{schema}".{name}')
            cur.execute(f'CREATE TABLE "{schema}".{name} ({", ".join(f"{c} {t}" for c, _, t in cols)}{key})')
            buffer = io.BytesIO()
            frame.write_csv(buffer, include_header=False, null_value="")
            with cur.copy(f'COPY "{schema}".{name} FROM STDIN (FORMAT csv)') as copy:
                copy.write(buffer.getvalue())
            written[name] = frame.height
        cur.execute(f'CREATE INDEX ON "{schema}".ho_so (ngay_cap_nhat)')
    return written
