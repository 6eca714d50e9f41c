"""`tonghop suggest-suite`: profile a loaded source and write a starting Great Expectations suite for review.

Reads the source's latest promoted batch in `raw` (its quarantined rows left out), from the warehouse opened
read-only, and proposes, per column: not null where it has no NULL, unique where every value is distinct
(text and integer columns), a value set for low-cardinality text, a min/max range with a margin for numbers
and dates, and a regex for ID-like text (every value of one to three shapes, e.g. `^[0-9]{12}$`). Personal
columns never get a value set or a range (their values would land in a file under version control). The
checks the source's contract already implies (pipelines.contracts.baseline_expectations) are left out: they
run anyway. Every suggestion is `warn` (its failing rows are quarantined) but the row count (`block`).

The output is a draft (`<source>.suggested.json` by default, in the tenant's suites folder): nothing runs it
until an engineer has reviewed it, renamed it `<suite>.json` and named it in the source's `expectation_suite:`.
How: expectations/README.md, "Suggesting a suite".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, TonghopError
from pipelines.sqltext import quote_ident as _q

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig, TenantConfig

VALUE_SET_MAX = 20          # at most this many distinct values for a value set ...
VALUE_SET_REPEAT = 5        # ... each seen, on average, at least this many times (else it is an ID, not a code)
REGEX_MAX_SHAPES = 3        # an ID-like column: its values take at most this many shapes
REGEX_MIN_DISTINCT = 20     # ... and it has at least this many distinct values
RANGE_MARGIN = 0.10         # a range widened by 10 % of its width on each side
DATE_MARGIN_DAYS = 365      # dates: at least a year beyond the newest value (new data keeps coming)


class NothingToProfile(TonghopError):
    """The source has no promoted batch yet."""


@dataclass
class Suggestion:
    suite: dict
    path: Path
    batch_id: str
    n_rows: int
    left_out: int                      # suggestions the contract baseline already covers
    by_type: dict[str, int] = field(default_factory=dict)


def _family(duck_type: str) -> str:
    t = duck_type.upper()
    if t in ("VARCHAR", "TEXT") or t.startswith("VARCHAR"):
        return "text"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
        return "int"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return "num"
    if t == "DATE":
        return "date"
    if t.startswith("TIMESTAMP"):
        return "time"
    return "other"


def _shape_regex(shape: str) -> str:
    """'AA-9999' -> '[A-Z]{2}-[0-9]{4}': runs of a character class, literal punctuation escaped."""
    import re

    out = []
    for m in re.finditer(r"9+|A+|a+|.", shape):
        run = m.group(0)
        cls = {"9": "[0-9]", "A": "[A-Z]", "a": "[a-z]"}.get(run[0])
        if cls is None:
            out.append(re.escape(run))
        else:
            out.append(cls if len(run) == 1 else f"{cls}{{{len(run)}}}")
    return "".join(out)


def _widen(lo: Any, hi: Any, family: str) -> tuple[Any, Any]:
    if family in ("date", "time"):
        span = (hi - lo) if hi > lo else timedelta(0)
        before = max(span * RANGE_MARGIN, timedelta(days=30))
        after = max(span * RANGE_MARGIN, timedelta(days=DATE_MARGIN_DAYS))
        lo, hi = lo - before, hi + after
        fmt = (lambda v: v.isoformat()) if family == "date" else (lambda v: v.isoformat(sep=" "))
        return fmt(lo), fmt(hi)
    span = float(hi - lo)
    margin = span * RANGE_MARGIN if span else max(abs(float(hi)) * RANGE_MARGIN, 1.0)
    new_lo, new_hi = float(lo) - margin, float(hi) + margin
    if float(lo) >= 0:
        new_lo = max(new_lo, 0.0)  # a count or an amount that was never negative stays non-negative
    if family == "int":
        return math.floor(new_lo), math.ceil(new_hi)
    return round(new_lo, 6), round(new_hi, 6)


def _latest_batch(con: duckdb.DuckDBPyConnection, source: str) -> tuple[str, int] | None:
    row = con.execute("SELECT batch_id, n_rows_promoted FROM meta.loads WHERE source = ? AND status = 'passed' "
                      "AND coalesce(n_rows_promoted, 0) > 0 ORDER BY loaded_at DESC LIMIT 1", [source]).fetchone()
    return None if row is None else (row[0], row[1])


def profile_expectations(con: duckdb.DuckDBPyConnection, source: SourceConfig, relation: str,
                         columns: dict[str, str]) -> tuple[list[dict], int]:
    """Suggested expectations (suite JSON form) for the rows of `relation` (SQL), and its row count."""
    n = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    warn = {"severity": "warn", "suggested": True}
    out = [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1},
            "meta": {"severity": "block", "suggested": True}, "description": "table must have at least 1 row"}]
    personal = set(source.personal_columns)
    for column, duck_type in columns.items():
        family = _family(duck_type)
        c = _q(column)
        n_null, n_distinct = con.execute(f"SELECT count(*) - count({c}), count(DISTINCT {c}) FROM {relation}"
                                         ).fetchone()
        n_values = n - n_null
        if n_values == 0:
            continue  # an empty column says nothing yet
        if n_null == 0:
            out.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": column}, "meta": warn,
                        "description": f"{column} must not be null (no NULL in {n:,} rows)"})
        if family in ("text", "int") and n_distinct == n_values and n_values > 1:
            out.append({"type": "expect_column_values_to_be_unique", "kwargs": {"column": column}, "meta": warn,
                        "description": f"{column} must be unique ({n_values:,} distinct values)"})
        if column in personal:
            family = "personal-" + family
        if family == "text" and n_distinct <= VALUE_SET_MAX and n_values >= VALUE_SET_REPEAT * n_distinct:
            values = [r[0] for r in con.execute(f"SELECT DISTINCT {c} FROM {relation} WHERE {c} IS NOT NULL "
                                                f"ORDER BY 1").fetchall()]
            out.append({"type": "expect_column_values_to_be_in_set", "kwargs": {"column": column, "value_set": values},
                        "meta": warn, "description": f"{column} must be one of the {len(values)} values seen"})
        elif family in ("text", "personal-text") and n_distinct >= min(REGEX_MIN_DISTINCT, n_values):
            shapes = con.execute(f"""
                SELECT regexp_replace(regexp_replace(regexp_replace(CAST({c} AS VARCHAR), '[0-9]', '9', 'g'),
                       '[A-Z]', 'A', 'g'), '[a-z]', 'a', 'g') AS shape, count(*)
                FROM {relation} WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT {REGEX_MAX_SHAPES + 1}
            """).fetchall()
            if len(shapes) <= REGEX_MAX_SHAPES and all(s.isascii() and len(s) <= 40 for s, _ in shapes):
                regex = "^(" + "|".join(_shape_regex(s) for s, _ in shapes) + ")$" if len(shapes) > 1 \
                    else f"^{_shape_regex(shapes[0][0])}$"
                out.append({"type": "expect_column_values_to_match_regex", "kwargs": {"column": column, "regex": regex},
                            "meta": warn, "description": f"{column} must look like {regex}"})
        if family in ("int", "num", "date", "time"):
            lo, hi = con.execute(f"SELECT min({c}), max({c}) FROM {relation}").fetchone()
            if isinstance(lo, datetime) and family == "date":
                lo, hi = lo.date(), hi.date()
            if isinstance(lo, int | float | date):
                new_lo, new_hi = _widen(lo, hi, family)
                out.append({"type": "expect_column_values_to_be_between",
                            "kwargs": {"column": column, "min_value": new_lo, "max_value": new_hi}, "meta": warn,
                            "description": f"{column} must be between {new_lo} and {new_hi} (seen {lo} … {hi}, "
                                           "widened)"})
    key = list(source.primary_key)
    if len(key) > 1 and all(k in columns for k in key):
        cols = ", ".join(_q(k) for k in key)
        n_keys = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {cols} FROM {relation})").fetchone()[0]
        if n_keys == n:
            out.append({"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": key}, "meta": warn,
                        "description": f"({', '.join(key)}) must be unique"})
    return out, n


def default_path(tenant_id: str, source: str) -> Path:
    from pipelines.quality.suites import tenant_suites_dir

    return tenant_suites_dir(tenant_id) / f"{source}.suggested.json"


def suggest_suite(tenant: TenantConfig, source_name: str, out: Path | None = None, *,
                  force: bool = False) -> Suggestion:
    """Profile the source's latest promoted batch and write the suggested suite (see the module docstring)."""
    import duckdb

    from pipelines.contracts import baseline_expectations, load_contracts
    from pipelines.quality.rowchecks import exclusion_sql
    from pipelines.quality.suites import expectation_key
    from pipelines.settings import WAREHOUSE_SQL_DIR, TenantPaths

    names = [s.name for s in tenant.sources]
    if source_name not in names:
        raise ConfigError(f"tenant '{tenant.tenant_id}' has no source '{source_name}' — its sources: "
                          f"{', '.join(names)}")
    source = tenant.source(source_name)
    path = Path(out) if out else default_path(tenant.tenant_id, source_name)
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists: suggest-suite never overwrites a suite — review that file, "
                          "or pass --force to replace it, or --out <another file>")
    paths = TenantPaths.for_tenant(tenant.tenant_id, tenant.data_dir)
    if not paths.warehouse.is_file():
        raise NothingToProfile(f"tenant '{tenant.tenant_id}' has no warehouse yet ({paths.warehouse}): run "
                               f"`tonghop run --tenant {tenant.tenant_id}` first")
    try:
        con = duckdb.connect(str(paths.warehouse), read_only=True)
    except duckdb.IOException as exc:
        from pipelines.runcontrol import _DUCKDB_LOCK, WarehouseBusy

        if not _DUCKDB_LOCK.search(str(exc)):
            raise
        import re

        pid = re.search(r"PID (\d+)", str(exc))
        raise WarehouseBusy(f"the warehouse of tenant '{tenant.tenant_id}' ({paths.warehouse}) is being written "
                            f"by {'process ' + pid.group(1) if pid else 'another process'} (a pipeline run?): "
                            "suggest-suite reads it when that run has finished — try again then") from None
    try:
        latest = _latest_batch(con, source_name) if con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'meta' AND table_name = 'loads'"
        ).fetchone()[0] else None
        if latest is None:
            raise NothingToProfile(f"source '{source_name}' of tenant '{tenant.tenant_id}' has no promoted batch "
                                   f"to profile: run `tonghop run --tenant {tenant.tenant_id}` (it must load and "
                                   "pass validation) first")
        batch_id, _ = latest
        columns = {c: t for c, t in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'raw' "
            "AND table_name = ? ORDER BY ordinal_position", [source_name]).fetchall() if not c.startswith("_")}
        keep = "TRUE"
        if not set(source.primary_key) & set(source.personal_columns):
            keep = exclusion_sql(source_name, source.primary_key, source.personal_columns)
        else:  # the quarantine holds pseudonymised keys: compare with the same keyed hash, when the key is set
            import os

            from pipelines.warehouse import PII_KEY_ENV

            if os.environ.get(PII_KEY_ENV):
                con.execute("SET VARIABLE tonghop_pii_key = ?", [os.environ[PII_KEY_ENV]])
                con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
                keep = exclusion_sql(source_name, source.primary_key, source.personal_columns)
        relation = (f"(SELECT * FROM raw.{_q(source_name)} AS {_q(source_name)} WHERE _batch_id = "
                    f"'{batch_id.replace(chr(39), chr(39) * 2)}' AND {keep}) AS profiled")
        suggested, n_rows = profile_expectations(con, source, relation, columns)
    finally:
        con.close()

    baseline = []
    if source.contract and source.contract in load_contracts():
        baseline = baseline_expectations(load_contracts()[source.contract], source, columns, columns=set(columns))
    covered = {expectation_key(e) for e in baseline}
    kept = [e for e in suggested if expectation_key(e) not in covered]
    suite = {"name": source_name,
             "meta": {"notes": f"Suggested by `tonghop suggest-suite` from batch {batch_id} of source '{source_name}' "
                               f"({n_rows:,} rows). A draft: review every expectation, remove what is accidental, "
                               f"then save as {source_name}.json and set `expectation_suite: {source_name}`."
                               + (f" The {len(suggested) - len(kept)} check(s) contract '{source.contract}' already "
                                  "implies are left out: they run anyway." if baseline else "")},
             "expectations": kept}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(suite, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    by_type: dict[str, int] = {}
    for e in kept:
        by_type[e["type"]] = by_type.get(e["type"], 0) + 1
    return Suggestion(suite, path, batch_id, n_rows, len(suggested) - len(kept), by_type)


def summary(s: Suggestion, tenant_id: str, source: str) -> str:
    lines = [f"profiled source '{source}' of tenant '{tenant_id}': batch {s.batch_id}, {s.n_rows:,} promoted rows",
             f"wrote {len(s.suite['expectations'])} suggested expectation(s) to {s.path}"]
    lines += [f"  {n:>3}  {t}" for t, n in sorted(s.by_type.items())]
    if s.left_out:
        lines.append(f"  ({s.left_out} more already implied by the source's contract: they run anyway)")
    lines.append("review it, then save it as <suite>.json in the same folder and set `expectation_suite: <suite>` "
                 "on the source (expectations/README.md, 'Suggesting a suite')")
    return "\n".join(lines)
