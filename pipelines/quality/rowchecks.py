"""Row-level expectations as SQL predicates: quarantine the failing rows and score the batch, inside DuckDB.

Great Expectations stays the engine users write expectations for, and the one whose results are kept
(`meta.validations`, Data Docs). GX reports *how many* rows fail; to hold exactly those rows back, each
row-level expectation config (it is data: a type and kwargs) is translated here into a SQL predicate that
is TRUE for a failing row, with GX's semantics (nulls are only the not-null check's business; a column
pair with a missing side is not unexpected; `unique` flags every row of a repeated value). Tests check
that the predicate counts equal GX's `unexpected_count` on the same batch.

One pass over the batch (`flag_batch`) writes a temp table with, per row, its primary key and the indices
of the checks it fails; quarantine, per-check counts and the quality scores are aggregates over it.
Which checks quarantine, and each score's formula: expectations/README.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pipelines.sqltext import quote_ident as _q
from pipelines.sqltext import quote_literal

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DIMENSIONS",
    "RowCheck",
    "exclusion_sql",
    "flag_batch",
    "quality_scores",
    "quarantine_rows",
    "row_checks",
    "row_key_sql",
    "timeliness",
]

DIMENSIONS = ("completeness", "uniqueness", "validity", "consistency", "timeliness")
FLAGS = "_dq_flags"  # the temp table flag_batch writes


def _lit(value: Any) -> str:
    """A SQL literal for a JSON value of an expectation's kwargs."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return quote_literal(value)


def _in_list(values: Sequence[Any]) -> str:
    return ", ".join(_lit(v) for v in values) or "NULL"


# --------------------------------------------------------------------------- translation


def _not_null(kw: dict) -> str:
    return f"{_q(kw['column'])} IS NULL"


def _in_set(kw: dict) -> str:
    c = _q(kw["column"])
    return f"{c} IS NOT NULL AND {c} NOT IN ({_in_list(kw.get('value_set') or [])})"


def _not_in_set(kw: dict) -> str:
    c = _q(kw["column"])
    return f"{c} IS NOT NULL AND {c} IN ({_in_list(kw.get('value_set') or [])})"


def _regex(kw: dict) -> str:
    c = _q(kw["column"])  # regexp_matches = partial match, as GX on DuckDB (gx_duckdb.install_regex_support)
    return f"{c} IS NOT NULL AND NOT regexp_matches({c}, {_lit(kw['regex'])})"


def _not_regex(kw: dict) -> str:
    c = _q(kw["column"])
    return f"{c} IS NOT NULL AND regexp_matches({c}, {_lit(kw['regex'])})"


def _between(kw: dict) -> str:
    c, out = _q(kw["column"]), []
    if kw.get("min_value") is not None:
        out.append(f"{c} {'<=' if kw.get('strict_min') else '<'} {_lit(kw['min_value'])}")
    if kw.get("max_value") is not None:
        out.append(f"{c} {'>=' if kw.get('strict_max') else '>'} {_lit(kw['max_value'])}")
    return f"{c} IS NOT NULL AND ({' OR '.join(out) or 'FALSE'})"


def _a_greater_than_b(kw: dict) -> str:
    a, b = _q(kw["column_A"]), _q(kw["column_B"])
    op = ">=" if kw.get("or_equal") else ">"
    # NOT (a > b) is NULL when a side is missing: GX's SQL path does not count that row, neither do we.
    return f"NOT ({a} {op} {b})"


def _unique(kw: dict) -> str:
    c = _q(kw["column"])
    return f"{c} IS NOT NULL AND count(*) OVER (PARTITION BY {c}) > 1"


def _compound_unique(kw: dict) -> str:
    cols = [_q(c) for c in kw["column_list"]]
    not_all_missing = " OR ".join(f"{c} IS NOT NULL" for c in cols)
    return f"({not_all_missing}) AND count(*) OVER (PARTITION BY {', '.join(cols)}) > 1"


# type -> (default dimension, predicate builder)
TRANSLATIONS: dict[str, tuple[str, Callable[[dict], str]]] = {
    "expect_column_values_to_not_be_null": ("completeness", _not_null),
    "expect_column_values_to_be_unique": ("uniqueness", _unique),
    "expect_compound_columns_to_be_unique": ("uniqueness", _compound_unique),
    "expect_column_values_to_be_in_set": ("validity", _in_set),
    "expect_column_values_to_not_be_in_set": ("validity", _not_in_set),
    "expect_column_values_to_match_regex": ("validity", _regex),
    "expect_column_values_to_not_match_regex": ("validity", _not_regex),
    "expect_column_values_to_be_between": ("validity", _between),
    "expect_column_pair_values_a_to_be_greater_than_b": ("consistency", _a_greater_than_b),
}


@dataclass(frozen=True)
class RowCheck:
    """A row-level expectation of a suite, as a SQL predicate TRUE for a failing row."""

    index: int  # position in the suite (= position of its ExpectationOutcome)
    expectation_type: str
    description: str
    severity: str  # block | warn
    dimension: str
    predicate: str
    columns: tuple[str, ...]

    @property
    def quarantines(self) -> bool:
        """`warn` row-level checks hold their failing rows back; `block` ones stop the whole batch."""
        return self.severity == "warn"


def row_checks(expectations: Sequence[dict]) -> list[RowCheck]:
    """The row-level checks among a suite's expectations (dicts: type, kwargs, meta, severity, description)."""
    checks = []
    for i, e in enumerate(expectations):
        if e["type"] not in TRANSLATIONS:
            continue
        default_dimension, build = TRANSLATIONS[e["type"]]
        kwargs = e["kwargs"]
        dimension = str((e.get("meta") or {}).get("dimension", default_dimension))
        if dimension not in DIMENSIONS:
            raise ValueError(f"{e['type']} on {kwargs}: meta.dimension must be one of {DIMENSIONS}, got {dimension!r}")
        columns = tuple(kwargs.get("column_list") or [kwargs[k] for k in ("column", "column_A", "column_B")
                                                         if kwargs.get(k) is not None])
        checks.append(RowCheck(i, e["type"], e["description"], e["severity"], dimension, build(kwargs), columns))
    return checks


# --------------------------------------------------------------------------- row identity


def row_key_sql(primary_key: Sequence[str], personal_columns: Sequence[str] = (), table: str | None = None) -> str:
    """The row's key as JSON text, e.g. `["H01"]`; personal key columns pseudonymised (needs the macro)."""
    parts = []
    for col in primary_key:
        ref = f"{_q(table)}.{_q(col)}" if table else _q(col)
        parts.append(f"pseudonymize({ref})" if col in personal_columns else f"CAST({ref} AS VARCHAR)")
    return f"CAST(to_json(list_value({', '.join(parts)})) AS VARCHAR)"


def exclusion_sql(source: str, primary_key: Sequence[str], personal_columns: Sequence[str] = ()) -> str:
    """A WHERE condition on `raw."<source>"` keeping the rows that are not quarantined in their batch."""
    key = row_key_sql(primary_key, personal_columns, table=source)
    return (f"NOT EXISTS (SELECT 1 FROM meta.quarantine q WHERE q.source = {_lit(source)} "
            f"AND q.batch_id = {_q(source)}._batch_id AND q.row_key = {key})")


# --------------------------------------------------------------------------- one pass over the batch


def flag_batch(con: duckdb.DuckDBPyConnection, source: str, batch_id: str, checks: Sequence[RowCheck],
               primary_key: Sequence[str], personal_columns: Sequence[str] = (),
               required_columns: Sequence[str] = ()) -> None:
    """Write temp table `_dq_flags`: one row per batch row with its key, failed check indices and nulls."""
    failed = ", ".join(f"CASE WHEN coalesce(({c.predicate}), FALSE) THEN {c.index} END" for c in checks)
    failed_list = f"list_filter([{failed}], lambda i: i IS NOT NULL)" if checks else "[]::INTEGER[]"
    nulls = " + ".join(f"({_q(c)} IS NULL)::INTEGER" for c in required_columns) or "0"
    keys = ", ".join(_q(c) for c in primary_key)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {FLAGS} AS
        SELECT {row_key_sql(primary_key, personal_columns)} AS row_key,
               {failed_list}::INTEGER[] AS failed,
               {nulls} AS n_null_required,
               count(*) OVER (PARTITION BY {keys}) > 1 AS is_duplicate_key
        FROM raw.{_q(source)} WHERE _batch_id = ?""", [batch_id])


def check_counts(con: duckdb.DuckDBPyConnection, checks: Sequence[RowCheck]) -> dict[int, int]:
    """Rows failing each check (by suite position): comparable with GX's unexpected_count."""
    if not checks:
        return {}
    cols = ", ".join(f"count(*) FILTER (WHERE list_contains(failed, {c.index}))" for c in checks)
    row = con.execute(f"SELECT {cols} FROM {FLAGS}").fetchone()
    return {c.index: int(n) for c, n in zip(checks, row, strict=True)}


def quarantine_rows(con: duckdb.DuckDBPyConnection, run_id: str, source: str, batch_id: str,
                    checks: Sequence[RowCheck], quarantined_at: datetime) -> dict[int, int]:
    """Insert the keys failing a quarantining check into `meta.quarantine`; rows held back per check.

    A key is held back with all its rows in the batch (a duplicated key's copies go together), so the
    row counts here are exactly what the `exclusion_sql` filter leaves out.
    """
    con.execute("DELETE FROM meta.quarantine WHERE batch_id = ? AND source = ?", [batch_id, source])
    chosen = [c for c in checks if c.quarantines]
    if not chosen:
        return {}
    indices = "[" + ", ".join(str(c.index) for c in chosen) + "]"
    descriptions = "[" + ", ".join(_lit(c.description) for c in chosen) + "]"
    positions = {c.index: p + 1 for p, c in enumerate(chosen)}  # 1-based, into `descriptions`
    position_of = "CASE i " + " ".join(f"WHEN {i} THEN {p}" for i, p in positions.items()) + " END"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _dq_quarantine AS
        SELECT row_key, count(*) AS n_rows,
               list_sort(list_distinct(flatten(list(list_filter(failed, lambda i: list_contains({indices}, i))))))
                   AS failed
        FROM {FLAGS} GROUP BY row_key
        HAVING len(list_distinct(flatten(list(list_filter(failed, lambda i: list_contains({indices}, i)))))) > 0""")
    con.execute(f"""
        INSERT INTO meta.quarantine
        SELECT ?, ?, ?, row_key, n_rows,
               list_transform(failed, lambda i: {descriptions}[{position_of}]), ?
        FROM _dq_quarantine""", [run_id, batch_id, source, quarantined_at])
    cols = ", ".join(f"coalesce(sum(n_rows) FILTER (WHERE list_contains(failed, {c.index})), 0)" for c in chosen)
    row = con.execute(f"SELECT {cols} FROM _dq_quarantine").fetchone()
    con.execute("DROP TABLE IF EXISTS _dq_quarantine")
    return {c.index: int(n) for c, n in zip(chosen, row, strict=True)}


# --------------------------------------------------------------------------- scores


def _score(n_checked: int, n_failed: int) -> float:
    return 1.0 if n_checked == 0 else 1.0 - n_failed / n_checked


def quality_scores(con: duckdb.DuckDBPyConnection, checks: Sequence[RowCheck],
                   n_required_columns: int) -> dict[str, tuple[float, int, int]]:
    """Scores from `_dq_flags`: dimension -> (score, n_checked, n_failed). Formulas: expectations/README.md."""
    def any_of(dimension: str) -> str:
        idx = [c.index for c in checks if c.dimension == dimension]
        return f"list_has_any(failed, {idx})" if idx else "FALSE"

    n_rows, n_null, n_dup, n_invalid, n_inconsistent = con.execute(f"""
        SELECT count(*), coalesce(sum(n_null_required), 0), count(*) FILTER (WHERE is_duplicate_key),
               count(*) FILTER (WHERE {any_of('validity')}), count(*) FILTER (WHERE {any_of('consistency')})
        FROM {FLAGS}""").fetchone()
    scores = {
        "completeness": (n_rows * n_required_columns, n_null),
        "uniqueness": (n_rows, n_dup),
        "validity": (n_rows, n_invalid),
        "consistency": (n_rows, n_inconsistent),
    }
    # A dimension no check looks at is not scored (the app says "not checked"), never a free 100 %.
    unchecked = {d for d in ("validity", "consistency") if not any(c.dimension == d for c in checks)}
    return {d: (_score(checked, failed), int(checked), int(failed)) for d, (checked, failed) in scores.items()
            if d not in unchecked}


def schedule_interval(cron: str, after: datetime) -> timedelta:
    """Time between two consecutive runs of a cron schedule (the source's expected delivery rhythm)."""
    from croniter import croniter

    it = croniter(cron, after)
    first = it.get_next(datetime)
    return it.get_next(datetime) - first


def timeliness(watermark: datetime | None, loaded_at: datetime, interval: timedelta) -> tuple[float, int, int]:
    """Freshness of a batch: 1 while its newest row is at most two schedule intervals older than the load
    (one missed delivery tolerated), then `allowed / lag`. Returns (score, n_checked=1, n_failed 0/1)."""
    if watermark is None:
        return 0.0, 1, 1
    if watermark.tzinfo is None:
        watermark = watermark.replace(tzinfo=UTC)
    allowed, lag = 2 * interval, loaded_at - watermark
    if lag <= allowed:
        return 1.0, 1, 0
    return allowed / lag, 1, 1


def expectation_dicts(suite: Any) -> list[dict]:
    """A GX suite's expectations as plain dicts (what `row_checks` reads), in suite order."""
    from pipelines.quality.suites import _severity, describe

    out = []
    for e in suite.expectations:
        config = e.configuration
        kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
        out.append({"type": config.type, "kwargs": json.loads(json.dumps(kwargs, default=str)),
                    "meta": dict(config.meta or {}), "severity": _severity(config),
                    "description": getattr(config, "description", None) or describe(config.type, kwargs)})
    return out
