"""Department workbooks (.xlsx/.xls): header offsets, merged multi-row headers, totals and notes rows.

Options: `sheet` (a name, a list of names, or `"*"` for all sheets; default the first), `header_row`
(1-based row of the first header line, default 1), `header_rows` (how many header lines, default 1),
`header_join` (`all`: join every header line's text; `last`: keep the lowest non-empty line),
`stop_at` (regex on the first column: the first matching row ends the data, e.g. totals/notes),
`rename` (flattened name → column name), `types` (column → DuckDB type).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pipelines.errors import SourceError
from pipelines.sources.base import Extract, file_fingerprint, resolve_file
from pipelines.text import slugify

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths

_KNOWN = {"sheet", "header_row", "header_rows", "header_join", "stop_at", "rename", "types"}


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths) -> Extract:
    import pyarrow as pa

    path = resolve_file(source, paths)
    opts = dict(source.options)
    unknown = set(opts) - _KNOWN
    if unknown:
        raise SourceError(source.name, str(path), f"unknown excel option(s): {', '.join(sorted(unknown))}",
                          f"use only: {', '.join(sorted(_KNOWN))}")
    sheets = _open_sheets(source, path, opts.get("sheet"))
    frames: list[pa.Table] = []
    for sheet_name, rows in sheets:
        table = _sheet_to_arrow(source, f"{path}#{sheet_name}", rows, opts)
        if len(sheets) > 1:
            table = table.append_column("_sheet", pa.array([sheet_name] * table.num_rows, pa.string()))
        frames.append(table)
    table = pa.concat_tables(frames, promote_options="permissive") if len(frames) > 1 else frames[0]
    rel = con.from_arrow(table)
    types = opts.get("types") or {}
    if types:
        cols = ", ".join(_cast(c, types[c], table.schema.field(c).type) if c in types else f'"{c}"'
                         for c in table.column_names)
        missing = sorted(set(types) - set(table.column_names))
        if missing:
            raise SourceError(source.name, str(path), f"'types' names column(s) not in the sheet: {missing}",
                              f"columns found: {table.column_names}")
        rel = rel.project(cols)
    return Extract(relation=rel, fingerprint=file_fingerprint(path), location=str(path))


def _cast(column: str, target: str, arrow_type) -> str:
    """CAST to the declared type; numbers in a DATE/TIMESTAMP column are Excel serial dates (1 = 1900-01-01)."""
    import pyarrow as pa

    kind = target.strip().upper()
    if kind.startswith(("DATE", "TIMESTAMP")) and (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)):
        # Excel counts days from 1899-12-30 (its fictitious 1900-02-29 makes that the zero for modern dates).
        if kind == "DATE":
            return f'CAST(DATE \'1899-12-30\' + CAST(floor("{column}") AS INTEGER) AS DATE) AS "{column}"'
        return (f'CAST(TIMESTAMP \'1899-12-30\' + to_microseconds(CAST(round("{column}" * 86400000000) AS BIGINT))'
                f' AS {target}) AS "{column}"')
    return f'CAST("{column}" AS {target}) AS "{column}"'


def _open_sheets(source: SourceConfig, path, wanted) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Rows of the chosen sheets, with merged header cells filled in (both formats)."""
    try:
        if path.suffix.lower() == ".xls":
            return _xls_sheets(path, wanted)
        return _xlsx_sheets(path, wanted)
    except SourceError:
        raise
    except KeyError as exc:
        raise SourceError(source.name, str(path), f"sheet {exc} not found",
                          "check 'options.sheet' against the workbook's sheet names") from None
    except Exception as exc:  # openpyxl/xlrd raise many types for a damaged file
        raise SourceError(source.name, str(path), f"unreadable workbook ({type(exc).__name__}: {exc})",
                          "ask the agency to re-export the file, or check it opens in a spreadsheet program"
                          ) from None


def _pick(names: list[str], wanted) -> list[str]:
    if wanted in (None, ""):
        return names[:1]
    if wanted == "*":
        return names
    chosen = [wanted] if isinstance(wanted, str) else list(wanted)
    for name in chosen:
        if name not in names:
            raise KeyError(name)
    return chosen


def _xlsx_sheets(path, wanted):
    import openpyxl

    wb = openpyxl.load_workbook(path, data_only=True)
    out = []
    for name in _pick(wb.sheetnames, wanted):
        ws = wb[name]
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        for rng in ws.merged_cells.ranges:
            value = ws.cell(rng.min_row, rng.min_col).value
            for r in range(rng.min_row, rng.max_row + 1):
                for c in range(rng.min_col, rng.max_col + 1):
                    if r - 1 < len(rows) and c - 1 < len(rows[r - 1]):
                        rows[r - 1][c - 1] = value
        out.append((name, [tuple(r) for r in rows]))
    return out


def _xls_sheets(path, wanted):
    import xlrd

    book = xlrd.open_workbook(str(path), formatting_info=False)
    out = []
    for name in _pick(book.sheet_names(), wanted):
        sh = book.sheet_by_name(name)
        rows = []
        for r in range(sh.nrows):
            row = []
            for c in range(sh.ncols):
                cell = sh.cell(r, c)
                if cell.ctype == xlrd.XL_CELL_DATE:
                    row.append(xlrd.xldate.xldate_as_datetime(cell.value, book.datemode))
                elif cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
                    row.append(None)
                else:
                    row.append(cell.value)
            rows.append(tuple(row))
        out.append((name, rows))
    return out


def _sheet_to_arrow(source: SourceConfig, location: str, rows, opts):
    import pyarrow as pa

    header_row = int(opts.get("header_row", 1))
    n_header = int(opts.get("header_rows", 1))
    join = opts.get("header_join", "all")
    if len(rows) < header_row + n_header - 1:
        raise SourceError(source.name, location, f"the sheet has {len(rows)} rows, fewer than its header needs",
                          "check 'header_row'/'header_rows', or whether the file was truncated")
    header_lines = rows[header_row - 1: header_row - 1 + n_header]
    width = max(len(r) for r in header_lines)
    names: list[str] = []
    for c in range(width):
        parts: list[str] = []
        for line in header_lines:
            text = str(line[c]).strip() if c < len(line) and line[c] not in (None, "") else ""
            if text and text not in parts:
                parts.append(text)
        if not parts:
            continue
        raw = parts[-1] if join == "last" else " ".join(parts)
        names.append((c, slugify(raw)))
    rename = opts.get("rename") or {}
    columns = [(c, rename.get(n, n)) for c, n in names]
    seen = [n for _, n in columns]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise SourceError(source.name, location, f"header gives duplicate column names {dupes}",
                          "use 'rename' or 'header_join' in the source options")
    stop = re.compile(opts["stop_at"]) if opts.get("stop_at") else None
    data: list[tuple] = []
    for row in rows[header_row - 1 + n_header:]:
        first = row[0] if row else None
        if stop is not None and first is not None and stop.search(str(first)):
            break
        if all(v in (None, "") for v in row):
            continue
        data.append(row)
    arrays = {}
    for c, name in columns:
        values = [r[c] if c < len(r) else None for r in data]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed cell types in one column (numbers typed as text...): keep text, type later in staging.
            arrays[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(arrays)
