"""Department workbooks (.xlsx/.xls): header offsets, merged multi-row headers, totals and notes rows.

`location` may be a glob (`bao_cao_tinh/*.xlsx`, one workbook per province): every match is read with the same
options, in name order, and a `_file` column names each row's workbook.

Options: `sheet` (a name, a list of names, or `"*"` for all sheets; default the first), `header_row`
(1-based row of the first header line, default 1), `header_rows` (how many header lines, default 1),
`header_join` (`all`: join every header line's text; `last`: keep the lowest non-empty line),
`stop_at` (regex on the first column: the first matching row ends the data, e.g. totals/notes),
`rename` (flattened name → column name), and the typing options shared with csv/json/api
(`pipelines.sources.parsing`): `types`, `date_format`, `timestamp_format`, `decimal_separator`, `thousands`,
so that text cells such as `50.000,5` and `31/12/2024` get typed; numbers in a DATE column are Excel serial
dates. A cell that does not fit its type, or a spreadsheet error cell (`#DIV/0!`, `#N/A`…), sends its row to
quarantine with the cell named (never a silent NULL).

Unchanged workbooks cost a `stat`: the fingerprint comes from the (path, size, mtime) cache, and when it
matches an already promoted batch the workbook is not opened at all.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from pipelines.errors import SourceError
from pipelines.sources import parsing
from pipelines.sources.base import Extract, ReadState, files_fingerprint, resolve_files, source_options
from pipelines.sources.options import ParsingOptions, Regex
from pipelines.text import slugify

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths


def _sheet_names(value: Any) -> Any:
    """A sheet named `2024` reads as a number in YAML: it is still a sheet name."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value]
    return value


class Options(ParsingOptions):
    """Options of an `excel` source (openpyxl reads the .xlsx family, xlrd legacy .xls)."""

    FORMATS = (".xlsx", ".xlsm", ".xltx", ".xltm", ".xls")

    sheet: Annotated[str | list[str], BeforeValidator(_sheet_names)] | None = Field(
        default=None, description='a sheet name, a list of names, or `"*"` for every sheet (adds a `_sheet` '
                                  "column); default the first sheet")
    header_row: int = Field(default=1, ge=1, description="1-based row of the first header line")
    header_rows: int = Field(default=1, ge=1, description="how many header lines (merged multi-row headers "
                                                          "are flattened)")
    header_join: Literal["all", "last"] = Field(
        default="all", description="all: join every header line's text; last: keep the lowest non-empty line")
    stop_at: Regex | None = Field(default=None, description="regex on the first column: the first matching row "
                                                            "and everything below it are dropped (totals, notes)")
    rename: dict[str, str] = Field(default_factory=dict, description="flattened header name → column name")

ERROR_CELLS = {"#DIV/0!", "#N/A", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#GETTING_DATA", "#SPILL!",
               "#CALC!"}


def read(source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
         state: ReadState | None = None) -> Extract:
    import pyarrow as pa

    files = resolve_files(source, paths)  # a glob reads every workbook (one per province/department)
    path = files[0] if len(files) == 1 else source.location
    fingerprint = files_fingerprint(files, con)
    if state is not None and state.is_promoted is not None and state.is_promoted(fingerprint):
        # Already promoted: the loader records `unchanged` without the rows; parsing would cost seconds.
        return Extract(relation=con.sql("SELECT NULL::VARCHAR AS _unchanged WHERE false"),
                       fingerprint=fingerprint, location=str(path))
    opts = source_options(source)
    frames: list[pa.Table] = []
    for file in files:
        sheets = _open_sheets(source, file, opts.get("sheet"))
        for sheet_name, rows in sheets:
            table = _sheet_to_arrow(source, f"{file}#{sheet_name}", rows, opts)
            if len(sheets) > 1:
                table = table.append_column("_sheet", pa.array([sheet_name] * table.num_rows, pa.string()))
            if len(files) > 1:  # which workbook each row came from
                table = table.append_column("_file", pa.array([file.name] * table.num_rows, pa.string()))
            frames.append(table)
    table = pa.concat_tables(frames, promote_options="permissive") if len(frames) > 1 else frames[0]
    name = f"_sheet_{source.name}"
    con.register(name, table)  # Arrow in memory; read twice at most (the rows that fit, then the others)
    rel = parsing.apply(source, str(path), con.view(name), opts)
    rel, rejects, cleanup = parsing.split(con, source.name, rel)
    return Extract(relation=rel, fingerprint=fingerprint, location=str(path),
                   rejects_sql=[rejects] if rejects else [], cleanup=[*cleanup, lambda: con.unregister(name)])


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
    numbers: list[int] = []
    errors: list[str | None] = []
    first_data = header_row - 1 + n_header
    for i, row in enumerate(rows[first_data:], first_data + 1):
        first = row[0] if row else None
        if stop is not None and first is not None and stop.search(str(first)):
            break
        if all(v in (None, "") for v in row):
            continue
        bad = [f"cell {_cell(c, i)} (column '{n}') holds the spreadsheet error {row[c]}" for c, n in columns
               if c < len(row) and isinstance(row[c], str) and row[c].strip() in ERROR_CELLS]
        if bad:
            row = tuple(None if isinstance(v, str) and v.strip() in ERROR_CELLS else v for v in row)
        data.append(row)
        numbers.append(i)
        errors.append("; ".join(bad) or None)
    arrays = {parsing.ROW: pa.array(numbers, pa.int64())}
    if any(errors):
        arrays[parsing.REJECT] = pa.array(errors, pa.string())
    for c, name in columns:
        values = [r[c] if c < len(r) else None for r in data]
        try:
            arrays[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            # Mixed cell types in one column (numbers typed as text...): keep text, type later in staging.
            arrays[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(arrays)


def _cell(col: int, row: int) -> str:
    """0-based column and 1-based row → `C5`."""
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row}"
