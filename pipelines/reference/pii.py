"""Scan for personal data that must never leave `raw`: CCCD-shaped and phone-shaped values.

Used by the tests over every table of the serving snapshot and every export, and by `tonghop export`
itself, which refuses to write a file the scanner flags. The patterns are deliberately wide (any 12-digit
run, any Vietnamese-looking phone in its common written forms): a pseudonym token never matches them
(its digits are mapped to letters, see `pseudonymize` in warehouse/macros.sql).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipelines.sqltext import quote_ident

CCCD = re.compile(r"(?<!\d)\d{12}(?!\d)")
PHONE = re.compile(r"(?<!\d)(?:\+?84|0)[ .]?\d{2,3}[ .]?\d{3}[ .]?\d{3,4}(?!\d)")
# Hex digits 0-9 spelled as the letters g-p: a digest written so holds no run of digits that this scan could
# mistake for a citizen ID (12 digits) or a phone number (model versions, build keys, the retraining recipe).
NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")
# A content digest (md5, xxh3_128, sha1, sha256: 32+ hex characters, at least one a-f letter, standing alone)
# is not personal data, yet about 7 % of sha256 digests hold a 12-digit run: such tokens are taken out before
# the patterns run (a model's `artefact_sha256` in meta.models was flagged as a CCCD). An all-digit run stays.
HEX_DIGEST = re.compile(r"(?<![0-9A-Za-z])(?=[0-9]*[a-fA-F])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")
# Column types whose text form could hold an identifier (dates, floats and booleans cannot).
_SCANNED_TYPES = ("VARCHAR", "BIGINT", "HUGEINT", "UBIGINT", "JSON")


@dataclass(frozen=True)
class Hit:
    """One value that looks like personal data: where it is and which pattern it matched."""

    table: str
    column: str
    kind: str  # cccd | phone
    value: str


# Columns that hold an enterprise's tax code: public by law (the national business registration portal
# publishes it), and 10 digits starting with 0 look like a phone number. A value there is let through only
# when it *is* a valid tax code (check digit); anything else in the column is still flagged.
PUBLIC_TAX_CODE_COLUMNS = frozenset({"ma_so_thue"})


def scan_values(values, table: str, column: str) -> list[Hit]:
    from pipelines.reference.identifiers import is_mst_valid

    public_tax_codes = column in PUBLIC_TAX_CODE_COLUMNS
    hits = []
    for v in values:
        if v is None:
            continue
        text = str(v)
        if public_tax_codes and is_mst_valid(text):
            continue
        text = HEX_DIGEST.sub(" ", text)
        if CCCD.search(text):
            hits.append(Hit(table, column, "cccd", text))
        elif PHONE.search(text):
            hits.append(Hit(table, column, "phone", text))
    return hits


def _scannable(data_type: str) -> bool:
    return data_type.startswith(_SCANNED_TYPES) or "[]" in data_type or data_type.startswith(("STRUCT", "MAP"))


def scan_relation(con, relation: str, label: str) -> list[Hit]:
    """Every scannable column of a table or query (`relation` is SQL usable after FROM)."""
    columns = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    hits: list[Hit] = []
    for name, data_type, *_ in columns:
        if not _scannable(str(data_type)):
            continue
        quoted = quote_ident(name)
        values = con.execute(f"SELECT DISTINCT CAST({quoted} AS VARCHAR) FROM {relation}").fetchall()
        hits += scan_values((v for (v,) in values), label, name)
    return hits


def scan_database(path: Path, schemas: tuple[str, ...] | None = None) -> list[Hit]:
    """Every table of a DuckDB file (or of the given schemas), opened read-only."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_type = 'BASE TABLE' ORDER BY 1, 2").fetchall()
        hits: list[Hit] = []
        for schema, table in tables:
            if schemas is None or schema in schemas:
                hits += scan_relation(con, f'{schema}."{table}"', f"{schema}.{table}")
        return hits
    finally:
        con.close()


def scan_file(path: Path) -> list[Hit]:
    """A CSV or Parquet export, read as text so nothing is lost to type inference (a CSV is all text)."""
    import duckdb

    path = Path(path)
    con = duckdb.connect()
    try:
        if path.suffix == ".parquet":
            relation = f"read_parquet('{path}')"
        else:
            relation = f"read_csv('{path}', header = true, all_varchar = true)"
        return scan_relation(con, relation, path.name)
    finally:
        con.close()
