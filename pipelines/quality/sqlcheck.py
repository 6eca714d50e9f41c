"""Check a small batch with plain DuckDB SQL, with Great Expectations' results, without importing GX.

Why: importing Great Expectations costs ~4 s per process, while the suite itself on a 12,000-row batch
takes well under a second (issue 16, docs/performance.md "Cost follows change"). A run that brings 1 % new
dossiers paid that import for every batch. :func:`validate_expectations_sql` computes every expectation of
a source's merged suite in one DuckDB query and returns the same :class:`~pipelines.quality.suites.SuiteOutcome`
that :func:`~pipelines.quality.suites.validate_expectations` (GX) returns: ``success``, ``element_count``,
``unexpected_count``, ``unexpected_percent`` (GX's denominator: the non-null values for a column map
expectation, the rows left after ``ignore_row_if`` for a column pair / compound one, every row for
``not_be_null``), ``observed_value`` (row count), ``mostly``, severity and description as suites.py gives
them. tests/quality/test_sqlcheck.py checks the two engines agree, expectation by expectation, on real and
crafted batches.

Exact or not at all: an expectation type, a kwarg or a value this module cannot reproduce exactly (a
``row_condition``, an empty value set, string bounds of a ``between``, a regex on a non-text column, a column
the batch lacks, a DuckDB error…) raises :class:`SqlCheckUnsupported` naming it, and the caller validates
the batch with GX instead. ``pipelines.steps.validate`` uses this path only for batches of at most
:func:`max_rows` rows whose suite (same :func:`suite_fingerprint`) GX has validated for that source before
(expectations/README.md, "Small batches: SQL instead of a GX process").

Row-level predicates come from :mod:`pipelines.quality.rowchecks` (the quarantine's), so "unexpected" means
the same thing in the check and in the quarantine. Importing this module imports neither GX nor pandas.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.quality import rowchecks
from pipelines.quality.suites import (
    VALIDATION_DUCKDB_SETTINGS,
    ExpectationOutcome,
    SuiteOutcome,
    _column_of,
    _dict_severity,
    describe,
    expectation_key,
)

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DEFAULT_MAX_ROWS",
    "MAX_ROWS_ENV",
    "SqlCheckUnsupported",
    "max_rows",
    "suite_fingerprint",
    "validate_expectations_sql",
]

# Batches above this many rows are validated by GX (its result file and Data Docs page are kept for them);
# below it by SQL. Both engines run DuckDB aggregates, so what SQL saves is GX's fixed cost: ~3 s per process
# (import, context) plus ~0.2 s per suite warm (ho_so's 11 checks: SQL 0.05 s on 12,000 rows, 0.09 s on 100,000;
# GX 0.27 s on either). 200,000: a 1 % day at 10M dossiers (100,000 rows) stays on SQL, while a first or full load
# (a run of a minute at 1M) keeps GX's own record for a fixed cost of a few percent of that run.
MAX_ROWS_ENV = "TONGHOP_SQLCHECK_MAX_ROWS"
DEFAULT_MAX_ROWS = 200_000

_TEXT = ("VARCHAR",)
_INTEGER = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
            "UBIGINT", "UHUGEINT")
_DOUBLE = ("DOUBLE",)


class SqlCheckUnsupported(Exception):
    """The suite holds something SQL here cannot compute exactly as GX does: validate the batch with GX."""


def max_rows() -> int:
    """Largest batch checked by SQL (``TONGHOP_SQLCHECK_MAX_ROWS``, default 200,000; 0 = always GX)."""
    from pipelines.settings import env_number

    return int(env_number(MAX_ROWS_ENV, DEFAULT_MAX_ROWS, integer=True, low=0,
                          meaning="rows; 0 = always Great Expectations"))


def suite_fingerprint(suite_name: str, expectations: Sequence[dict]) -> str:
    """What a source's batches are checked with: the suite name and its merged expectation dicts (type, kwargs,
    meta, severity, description), in order. A changed suite, contract or raw column set gives another one."""
    payload = json.dumps([suite_name, list(expectations)], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- translation


def _family(duck_type: str) -> str:
    t = duck_type.upper()
    if t in _TEXT:
        return "text"
    if t in _INTEGER:
        return "integer"
    if t in _DOUBLE:
        return "double"
    return "other"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class _Plan:
    """How one expectation is computed: SQL aggregates (named) and how GX turns them into a result."""

    kind: str  # column_map | not_null | pair | compound | row_count | column_exists
    aggregates: dict[str, str]
    mostly: float = 1.0
    min_value: Any = None
    max_value: Any = None
    strict_min: bool = False
    strict_max: bool = False
    exists: bool = False


_COMMON = {"mostly"}
_ALLOWED_KWARGS: dict[str, set[str]] = {
    "expect_column_values_to_not_be_null": {"column", *_COMMON},
    "expect_column_values_to_be_between": {"column", "min_value", "max_value", "strict_min", "strict_max", *_COMMON},
    "expect_column_values_to_match_regex": {"column", "regex", *_COMMON},
    "expect_column_values_to_not_match_regex": {"column", "regex", *_COMMON},
    "expect_column_values_to_be_in_set": {"column", "value_set", *_COMMON},
    "expect_column_values_to_not_be_in_set": {"column", "value_set", *_COMMON},
    "expect_column_values_to_be_unique": {"column", *_COMMON},
    "expect_compound_columns_to_be_unique": {"column_list", "ignore_row_if", *_COMMON},
    "expect_column_pair_values_a_to_be_greater_than_b": {"column_A", "column_B", "or_equal", "ignore_row_if",
                                                         *_COMMON},
    "expect_table_row_count_to_be_between": {"min_value", "max_value", "strict_min", "strict_max"},
    "expect_column_to_exist": {"column"},
}


def _mostly(t: str, kw: dict) -> float:
    value = kw.get("mostly", 1)
    if not _is_number(value) or not 0 <= value <= 1:
        raise SqlCheckUnsupported(f"{t}: mostly={value!r} is not a number between 0 and 1")
    return float(value)


def _column(t: str, kw: dict, columns: dict[str, str], key: str = "column") -> str:
    name = kw.get(key)
    if not isinstance(name, str) or name not in columns:  # exact name, as GX looks it up
        raise SqlCheckUnsupported(f"{t}: column {name!r} is not a column of the batch (GX reports the error)")
    return name


def _sum_of(predicate: str) -> str:
    """GX's unexpected count of a map condition: a SUM of CASE, NULL (reported as None) on an empty batch."""
    return f"sum(CASE WHEN {predicate} THEN 1 ELSE 0 END)"


def _plan(e: dict, columns: dict[str, str]) -> _Plan:  # noqa: C901, PLR0912 — one branch per type
    t, kw = e["type"], dict(e["kwargs"])
    allowed = _ALLOWED_KWARGS.get(t)
    if allowed is None:
        raise SqlCheckUnsupported(f"expectation type {t} is not translated to SQL")
    extra = sorted(set(kw) - allowed)
    if extra:
        raise SqlCheckUnsupported(f"{t}: kwarg(s) {', '.join(extra)} not translated to SQL")
    q = rowchecks._q

    if t == "expect_table_row_count_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if (lo is None and hi is None) or not all(v is None or _is_number(v) for v in (lo, hi)):
            raise SqlCheckUnsupported(f"{t}: bounds {lo!r}, {hi!r} are not numbers")
        return _Plan("row_count", {}, min_value=lo, max_value=hi, strict_min=bool(kw.get("strict_min")),
                     strict_max=bool(kw.get("strict_max")))
    if t == "expect_column_to_exist":
        if not isinstance(kw.get("column"), str):
            raise SqlCheckUnsupported(f"{t}: column {kw.get('column')!r} is not a name")
        return _Plan("column_exists", {}, exists=kw["column"] in columns)

    mostly = _mostly(t, kw)
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = _column(t, kw, columns, "column_A"), _column(t, kw, columns, "column_B")
        if not isinstance(kw.get("or_equal", False), bool | None):
            raise SqlCheckUnsupported(f"{t}: or_equal={kw.get('or_equal')!r} is not true/false")
        ignore = kw.get("ignore_row_if", "both_values_are_missing")
        domain = {"both_values_are_missing": f"NOT ({q(a)} IS NULL AND {q(b)} IS NULL)",
                  "either_value_is_missing": f"{q(a)} IS NOT NULL AND {q(b)} IS NOT NULL",
                  "neither": "TRUE"}.get(ignore)
        if domain is None:
            raise SqlCheckUnsupported(f"{t}: ignore_row_if={ignore!r} not translated")
        # GX: unexpected = NOT (a > b) [or NOT (a >= b OR both NULL)]; NULL (a side missing) is not counted
        predicate = rowchecks.TRANSLATIONS[t][1](kw)
        return _Plan("pair", {"filtered": f"count(*) FILTER (WHERE {domain})",
                              "unexpected": f"count(*) FILTER (WHERE ({domain}) AND ({predicate}))"}, mostly)
    if t == "expect_compound_columns_to_be_unique":
        cols = kw.get("column_list")
        if not isinstance(cols, list) or not cols:
            raise SqlCheckUnsupported(f"{t}: column_list {cols!r} is not a list of columns")
        names = [_column(t, {"column": c}, columns) for c in cols]
        ignore = kw.get("ignore_row_if", "all_values_are_missing")
        quoted = [q(c) for c in names]
        domain = {"all_values_are_missing": " OR ".join(f"{c} IS NOT NULL" for c in quoted),
                  "any_value_is_missing": " AND ".join(f"{c} IS NOT NULL" for c in quoted),
                  "never": "TRUE"}.get(ignore)
        if domain is None:
            raise SqlCheckUnsupported(f"{t}: ignore_row_if={ignore!r} not translated")
        # As GX on DuckDB (gx_duckdb.install_uniqueness_pushdown): rows of a repeated key with no NULL part
        all_set = " AND ".join(f"{c} IS NOT NULL" for c in quoted)
        duplicates = (f"(SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM _batch WHERE ({domain}) "
                      f"AND {all_set} GROUP BY {', '.join(quoted)} HAVING count(*) > 1))")
        return _Plan("compound", {"filtered": f"count(*) FILTER (WHERE {domain})",
                                  "unexpected": f"coalesce(any_value({duplicates}), 0)"}, mostly)

    column = _column(t, kw, columns)
    c, family = q(column), _family(columns[column])
    if t == "expect_column_values_to_not_be_null":
        return _Plan("not_null", {"unexpected": _sum_of(f"{c} IS NULL")}, mostly)
    nulls = f"count(*) FILTER (WHERE {c} IS NULL)"
    if t == "expect_column_values_to_be_unique":
        duplicates = (f"(SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM _batch WHERE {c} IS NOT NULL "
                      f"GROUP BY {c} HAVING count(*) > 1))")
        return _Plan("column_map", {"nulls": nulls, "unexpected": f"coalesce(any_value({duplicates}), 0)"}, mostly)
    if t in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
        if family != "text" or not isinstance(kw.get("regex"), str):
            raise SqlCheckUnsupported(f"{t} on {column} ({columns[column]}): regex only translated on text")
    elif t in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = kw.get("value_set")
        ok = isinstance(values, list) and values and (
            (family == "text" and all(isinstance(v, str) for v in values))
            or (family == "integer" and all(isinstance(v, int) and not isinstance(v, bool) for v in values)))
        if not ok:
            raise SqlCheckUnsupported(f"{t} on {column} ({columns[column]}): value_set not translated (empty, or "
                                      "not all text on a text column / integers on an integer column)")
    elif t == "expect_column_values_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        bounds = [v for v in (lo, hi) if v is not None]
        # an integer or DOUBLE column compares with a number the same whether it is a literal (here) or a bound
        # parameter (GX); REAL and DECIMAL columns would round differently, dates/text bounds are GX's business
        exact = family in ("integer", "double") and bounds and all(_is_number(v) and abs(v) < 2**53 for v in bounds)
        if not exact or (lo is not None and hi is not None and lo > hi):
            raise SqlCheckUnsupported(f"{t} on {column} ({columns[column]}): bounds {lo!r}, {hi!r} not translated "
                                      "(numbers on an integer or DOUBLE column only)")
        for k in ("strict_min", "strict_max"):
            if not isinstance(kw.get(k, False), bool | None):
                raise SqlCheckUnsupported(f"{t}: {k}={kw.get(k)!r} is not true/false")
    predicate = rowchecks.TRANSLATIONS[t][1](kw)  # TRUE for an unexpected value (NULLs never are)
    return _Plan("column_map", {"nulls": nulls, "unexpected": _sum_of(predicate)}, mostly)


# --------------------------------------------------------------------------- GX's result arithmetic


def _mostly_success(considered: int, unexpected: int, mostly: float) -> bool:
    return (float(considered) - float(unexpected)) / float(considered) >= mostly  # as GX's _mostly_success


def _map_result(total: int, nonnull: int | None, unexpected: int | None, mostly: float) -> tuple[bool, float | None]:
    """(success, unexpected_percent) of a map expectation, as GX's _validate + _format_map_output compute them.

    ``nonnull`` None: not_be_null (GX passes no non-null count; the ratio is over every row)."""
    if unexpected is None:  # GX's SUM over no rows
        return True, None
    if nonnull is None:
        success = True if total == 0 else (total - unexpected) / total >= mostly
        return success, (unexpected / total * 100 if total > 0 else None)
    success = True if total == 0 or nonnull == 0 else _mostly_success(nonnull, unexpected, mostly)
    percent = unexpected / nonnull * 100 if total > 0 and nonnull > 0 else None
    return success, percent


def _row_count_success(n: int, p: _Plan) -> bool:
    above = True if p.min_value is None else (n > p.min_value if p.strict_min else n >= p.min_value)
    below = True if p.max_value is None else (n < p.max_value if p.strict_max else n <= p.max_value)
    return bool(above and below)


# --------------------------------------------------------------------------- running


def _expectation_dicts(expectations: Sequence[dict]) -> list[dict]:
    """What rowchecks.expectation_dicts returns for the GX suite suites._suite_from_dicts builds from these."""
    out = []
    for e in expectations:
        kwargs = {k: v for k, v in dict(e["kwargs"]).items() if k != "batch_id"}
        meta = {**(e.get("meta") or {}), "severity": e["severity"]}  # as suites._suite_from_dicts sets it
        out.append({"type": e["type"], "kwargs": json.loads(json.dumps(kwargs, default=str)), "meta": meta,
                    "severity": _dict_severity({"type": e["type"], "meta": meta}),
                    "description": e.get("description") or describe(e["type"], kwargs)})
    return out


def validate_expectations_sql(con_or_db_path: duckdb.DuckDBPyConnection | Path | str, query: str, suite_name: str,
                              expectations: list[dict], run_name: str) -> SuiteOutcome:
    """As :func:`pipelines.quality.suites.validate_expectations`, computed by one DuckDB query.

    ``con_or_db_path``: an open DuckDB connection (used as is, nothing written) or a DuckDB file (opened
    read-only, closed on return). Raises :class:`SqlCheckUnsupported` when any expectation cannot be computed
    exactly as GX computes it; nothing is written anywhere (no result file: Data Docs show GX validations).
    """
    import duckdb

    dicts = _expectation_dicts(expectations)  # a typo in meta.severity fails here, as in GX's path
    signatures = [expectation_key(e) for e in dicts]
    if len(set(signatures)) != len(signatures):
        raise SqlCheckUnsupported(f"suite '{suite_name}' holds the same check twice (GX orders those its own way)")
    if isinstance(con_or_db_path, str | Path):
        path = Path(con_or_db_path)
        if not path.is_file():
            raise FileNotFoundError(f"DuckDB file {path} does not exist; nothing to validate.")
        con = duckdb.connect(str(path), read_only=True, config=dict(VALIDATION_DUCKDB_SETTINGS))
        try:
            return _run(con, query, suite_name, dicts, run_name)
        finally:
            con.close()
    return _run(con_or_db_path, query, suite_name, dicts, run_name)


def _run(con: duckdb.DuckDBPyConnection, query: str, suite_name: str, dicts: list[dict],
         run_name: str) -> SuiteOutcome:
    import duckdb

    try:
        columns = {name: str(ctype) for name, ctype, *_ in con.execute(f"DESCRIBE {query}").fetchall()}
    except duckdb.Error as exc:
        raise SqlCheckUnsupported(f"the batch query cannot be described by DuckDB ({type(exc).__name__})") from None
    plans = [_plan(e, columns) for e in dicts]
    select = ["count(*)"]
    slots: list[dict[str, int]] = []
    for p in plans:
        slots.append({})
        for name, sql in p.aggregates.items():
            slots[-1][name] = len(select)
            select.append(sql)
    sql = f"WITH _batch AS ({query}) SELECT {', '.join(select)} FROM _batch"
    try:
        row = con.execute(sql).fetchone()
    except duckdb.Error as exc:  # e.g. a regex RE2 rejects, a comparison of incomparable types
        raise SqlCheckUnsupported(f"DuckDB could not compute the suite ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0][:200]})") from None
    total = int(row[0])
    outcomes = []
    for e, p, slot in zip(dicts, plans, slots, strict=True):
        value = {name: None if row[i] is None else int(row[i]) for name, i in slot.items()}
        element_count = unexpected = percent = observed = None
        if p.kind == "row_count":
            success, observed = _row_count_success(total, p), str(total)
        elif p.kind == "column_exists":
            success = p.exists
        else:
            unexpected = value["unexpected"]
            element_count = total
            nonnull = {"not_null": None, "column_map": total - value.get("nulls", 0)}.get(p.kind, value.get("filtered"))
            success, percent = _map_result(total, nonnull, unexpected, p.mostly)
        kwargs = e["kwargs"]
        outcomes.append(ExpectationOutcome(
            expectation_type=e["type"], column=_column_of(kwargs), severity=e["severity"], success=success,
            element_count=element_count, unexpected_count=unexpected, unexpected_percent=percent,
            observed_value=observed, description=e["description"]))
    return SuiteOutcome(suite_name=suite_name, run_name=run_name, outcomes=outcomes, expectations=dicts)

