"""Typing text cells the Vietnamese way, in one place for the csv, excel, json and api readers.

Options (tenant YAML, `options:`): `types` (column → DuckDB type), `date_format` / `timestamp_format`
(strptime, e.g. `%d/%m/%Y`), `decimal_separator` (`,` for `50,5`), `thousands` (`.` for `50.000`).

A value that does not fit its declared type never fails the batch and is never silently NULL: its row gets a
reason in the hidden column `REJECT` (column, value, what was expected) and the loader keeps that row in
`raw."_rejected_<source>"` while the rest lands. Numbers are checked against the declared separators, so
`1,234.5` under `thousands: .` / `decimal_separator: ,` is refused rather than read as 1.2345. Empty text is
NULL, not an error. Everything is one SQL projection: no Python loop per row.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pipelines.errors import SourceError
from pipelines.sqltext import quote_ident as q
from pipelines.sqltext import quote_literal as lit

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig

REJECT = "_tonghop_reject"  # reason a row does not fit (NULL when it does); never lands in raw
ROW = "_tonghop_row"        # 1-based row (sheet row, record number) for the quarantine; never lands in raw
HIDDEN = (REJECT, ROW)
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "INT", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL", "NUMERIC")
_TEXT = ("VARCHAR", "TEXT", "STRING")


def is_numeric(typ: str) -> bool:
    return typ.strip().upper().split("(")[0] in _NUMERIC


def number_pattern(decimal_separator: str | None, thousands: str | None) -> str:
    """The regex a number written with these separators must match (`50.000,5`, `-1.234`, `12,5`)."""
    dec = re.escape(decimal_separator or ".")
    if thousands:
        grouped = rf"\d{{1,3}}({re.escape(thousands)}\d{{3}})+|\d+"
    else:
        grouped = r"\d+"
    return rf"^[+-]?({grouped})({dec}\d+)?$"


def text_to_number(expr: str, typ: str, decimal_separator: str | None, thousands: str | None) -> tuple[str, str]:
    """(typed SQL, SQL condition that the text is a well-formed number) for a VARCHAR expression."""
    text = f"trim({expr})"
    plain = text
    if thousands:
        plain = f"replace({plain}, {lit(thousands)}, '')"
    if decimal_separator and decimal_separator != ".":
        plain = f"replace({plain}, {lit(decimal_separator)}, '.')"
    ok = f"regexp_full_match({text}, {lit(number_pattern(decimal_separator, thousands))})"
    return f"CASE WHEN {ok} THEN TRY_CAST({plain} AS {typ}) END", ok


def typed_expr(col: str, src_type: str, target: str, opts: dict[str, Any]) -> str:
    """SQL giving column `col` (now `src_type`) as `target`, NULL where the value does not fit."""
    c = q(col)
    kind = target.strip().upper()
    src = src_type.upper()
    src_numeric = is_numeric(src)
    if kind.startswith(("DATE", "TIMESTAMP")) and src_numeric:
        # Excel counts days from 1899-12-30 (its fictitious 1900-02-29 makes that the zero for modern dates).
        if kind == "DATE":
            return f"TRY_CAST(DATE '1899-12-30' + TRY_CAST(floor({c}) AS INTEGER) AS DATE)"
        return (f"TRY_CAST(TIMESTAMP '1899-12-30' + to_microseconds(TRY_CAST(round({c} * 86400000000) AS BIGINT))"
                f" AS {target})")
    if src not in _TEXT:
        return f"TRY_CAST({c} AS {target})"
    text = f"NULLIF(trim({c}), '')"
    if is_numeric(kind) and (opts.get("decimal_separator") or opts.get("thousands")):
        return text_to_number(text, target, opts.get("decimal_separator"), opts.get("thousands"))[0]
    if kind == "DATE" and opts.get("date_format"):
        return f"TRY_CAST(try_strptime({text}, {lit(opts['date_format'])}) AS DATE)"
    if kind.startswith("TIMESTAMP") and (opts.get("timestamp_format") or opts.get("date_format")):
        fmt = opts.get("timestamp_format") or opts["date_format"]
        return f"TRY_CAST(try_strptime({text}, {lit(fmt)}) AS {target})"
    return f"TRY_CAST({text} AS {target})"


def _expected(target: str, opts: dict[str, Any]) -> str:
    kind = target.strip().upper()
    if is_numeric(kind) and (opts.get("decimal_separator") or opts.get("thousands")):
        return (f"a {target} written with thousands '{opts.get('thousands') or ''}' and decimal "
                f"'{opts.get('decimal_separator') or '.'}'")
    if kind == "DATE" and opts.get("date_format"):
        return f"a DATE in date_format {opts['date_format']}"
    if kind.startswith("TIMESTAMP") and (opts.get("timestamp_format") or opts.get("date_format")):
        return f"a {target} in format {opts.get('timestamp_format') or opts['date_format']}"
    return f"a {target}"


def apply(source: SourceConfig, location: str, rel: duckdb.DuckDBPyRelation, opts: dict[str, Any],
          types: dict[str, str] | None = None) -> duckdb.DuckDBPyRelation:
    """Cast the declared columns; rows with a value that does not fit get a reason in `REJECT`.

    `types` overrides `opts['types']` (e.g. the CSV reader hands over only the columns DuckDB cannot type).
    A reason already in the relation's `REJECT` column (a spreadsheet error cell) is kept.
    """
    types = dict(opts.get("types") or {}) if types is None else dict(types)
    if not types:
        return rel
    current = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    missing = sorted(set(types) - set(current))
    if missing:
        raise SourceError(source.name, location, f"'types' names column(s) not in the input: {missing}",
                          f"columns found: {[c for c in rel.columns if c not in HIDDEN]}")
    cols: list[str] = []
    reasons: list[str] = [q(REJECT)] if REJECT in current else []
    for col, src in current.items():
        if col == REJECT:
            continue
        if col not in types:
            cols.append(q(col))
            continue
        expr = typed_expr(col, src, types[col], opts)
        cols.append(f"{expr} AS {q(col)}")
        bad = f"{q(col)} IS NOT NULL AND NULLIF(trim({q(col)}::VARCHAR), '') IS NOT NULL AND ({expr}) IS NULL"
        shown = f"left({q(col)}::VARCHAR, 80)"
        reasons.append(f"CASE WHEN {bad} THEN concat('column ''{col.replace(chr(39), chr(39) * 2)}'': ''', "
                       f"{shown}, ''' is not {_expected(types[col], opts).replace(chr(39), chr(39) * 2)}') END")
    reject = f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '') AS {q(REJECT)}"
    return rel.project(", ".join([*cols, reject]))


def flag_nul(rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """Rows with a NUL byte in a text value (a damaged export, a file padded after a crash) get a reason."""
    current = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    text = [c for c, t in current.items() if t == "VARCHAR" and c not in HIDDEN]
    if not text:
        return rel
    reasons = [q(REJECT)] if REJECT in current else []
    reasons += [f"CASE WHEN contains({q(c)}, chr(0)) THEN 'column ''{c.replace(chr(39), chr(39) * 2)}'' holds a "
                "NUL byte (damaged export?)' END" for c in text]
    cols = [q(c) for c in rel.columns if c != REJECT]
    return rel.project(", ".join([*cols, f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '') AS {q(REJECT)}"]))


def split(con: duckdb.DuckDBPyConnection, name: str, rel: duckdb.DuckDBPyRelation,
          original: duckdb.DuckDBPyRelation | None = None):
    """(the rows that fit, SQL giving the rows that do not — _row, row_json, _reason —, cleanup).

    The readers' relation stays clean (no hidden column); the loader runs the SQL after the rows landed
    and keeps those rows in quarantine. Without a `REJECT` column there is nothing to split.
    """
    if REJECT not in rel.columns:
        hidden = [c for c in HIDDEN if c in rel.columns]
        return (rel.project(", ".join(q(c) for c in rel.columns if c not in hidden)) if hidden else rel), None, []
    view = f"_parsed_{name}"
    con.register(view, rel)
    visible = [c for c in rel.columns if c not in HIDDEN]
    good = con.view(view).filter(f"{q(REJECT)} IS NULL").project(", ".join(q(c) for c in visible))
    row = q(ROW) if ROW in rel.columns else "NULL::BIGINT"
    rejects = (f"SELECT {row} AS _row, to_json(struct_pack({', '.join(f'{q(c)} := {q(c)}' for c in visible)})) "
               f"AS row_json, {q(REJECT)} AS _reason FROM {q(view)} WHERE {q(REJECT)} IS NOT NULL")
    return good, rejects, [lambda: con.unregister(view)]
