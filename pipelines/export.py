"""`tonghop export`: one table of the serving snapshot to CSV or Parquet, for analysts and open data.

Reads only the serving snapshot (never the warehouse, so it never blocks the pipeline and never sees
`raw`), writes to a temporary file, scans it for personal data and only then renames it into place:
a file the scanner flags is deleted and the export fails, naming the column.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipelines.errors import TonghopError

FORMATS = ("csv", "parquet")
EXPORTABLE_SCHEMAS = ("staging", "marts")


class ExportError(TonghopError):
    """An export that cannot be made: unknown table or format, no snapshot yet, or personal data found."""


def export_table(snapshot: Path, table: str, fmt: str, out: Path) -> Path:
    """Write `table` ('marts.ho_so_tuan') of `snapshot` to `out` in `fmt`; returns the file written."""
    import duckdb

    from pipelines.reference.pii import scan_file

    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'; expected one of {', '.join(FORMATS)}")
    match = re.fullmatch(r"([a-z]+)\.([a-z][a-z0-9_]*)", table)
    if not match or match.group(1) not in EXPORTABLE_SCHEMAS:
        raise ExportError(f"table '{table}': give '<schema>.<table>' with schema one of "
                          f"{', '.join(EXPORTABLE_SCHEMAS)}, e.g. marts.ho_so_tuan")
    if not snapshot.exists():
        raise ExportError(f"no serving snapshot at {snapshot} yet — run the pipeline first "
                          "(tonghop run --tenant …), exports read only the published snapshot")
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        known = [f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_schema IN {EXPORTABLE_SCHEMAS} ORDER BY 1, 2").fetchall()]
        if table not in known:
            raise ExportError(f"table '{table}' is not in the serving snapshot {snapshot}; exportable tables: "
                              f"{', '.join(known)}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.{fmt}")  # the suffix tells the scanner the format
        options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        schema, name = match.groups()
        con.execute(f"COPY (SELECT * FROM {schema}.\"{name}\") TO '{tmp}' ({options})")
    finally:
        con.close()
    hits = scan_file(tmp)
    if hits:
        tmp.unlink(missing_ok=True)
        columns = sorted({h.column for h in hits})
        raise ExportError(f"export of '{table}' stopped: column(s) {', '.join(columns)} hold values shaped like "
                          "personal data (CCCD or phone numbers) — pseudonymise them in staging before exporting")
    os.replace(tmp, out)
    return out


def default_path(root: Path, table: str, fmt: str) -> Path:
    """`<tenant data folder>/exports/<schema>.<table>.<fmt>`."""
    return root / "exports" / f"{table}.{fmt}"
