"""What a validated batch promotes: quarantine its failing rows, score it, and prove nothing was dropped.

Called by `pipelines.steps.validate` inside its write transaction, once per loaded batch, after GX has
validated the batch. Writes `meta.quarantine`, `meta.quality_scores` and the promotion counts of
`meta.loads` (n_rows_read = n_rows_promoted + n_rows_quarantined for every promoted batch).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pipelines.quality import rowchecks

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig, TenantConfig
    from pipelines.quality.suites import SuiteOutcome

log = logging.getLogger("tonghop.quality")


class PromotionMismatch(RuntimeError):
    """Rows read ≠ rows promoted + rows quarantined: a bug, never a data problem; the step must fail."""


@dataclass
class BatchQuality:
    source: str
    batch_id: str
    n_rows_read: int
    n_rows_promoted: int
    n_rows_quarantined: int
    quarantined_per_check: dict[int, int] = field(default_factory=dict)  # suite position -> rows held back
    failing_per_check: dict[int, int] = field(default_factory=dict)      # suite position -> failing rows (SQL)
    scores: dict[str, tuple[float, int, int]] = field(default_factory=dict)


def _prepare_pseudonymize(con: duckdb.DuckDBPyConnection) -> None:
    """Personal columns in a primary key: the quarantine keeps their keyed pseudonym, as staging does."""
    import os

    from pipelines.errors import ConfigError
    from pipelines.settings import WAREHOUSE_SQL_DIR
    from pipelines.warehouse import PII_KEY_ENV

    key = os.environ.get(PII_KEY_ENV)
    if not key:
        raise ConfigError(f"environment variable {PII_KEY_ENV} is not set: a primary key holds personal data and "
                          "quarantined keys are pseudonymised with it — set it (the same secret on every run)")
    con.execute("SET VARIABLE tonghop_pii_key = ?", [key])
    con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8"))


def record_batch(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, source: SourceConfig, run_id: str,
                 batch_id: str, outcome: SuiteOutcome | None, computed_at: datetime) -> BatchQuality:
    """Quarantine, scores and promotion counts of one batch (in the caller's transaction)."""
    expectations = outcome.expectations if outcome is not None else []
    checks = rowchecks.row_checks(expectations)
    personal_key = [c for c in source.primary_key if c in source.personal_columns]
    if personal_key:
        _prepare_pseudonymize(con)
    not_null = [c.columns[0] for c in checks if c.expectation_type == "expect_column_values_to_not_be_null"]
    required = list(dict.fromkeys([*source.primary_key, *not_null]))
    rowchecks.flag_batch(con, source.name, batch_id, checks, source.primary_key, source.personal_columns,
                         required)
    failing = rowchecks.check_counts(con, checks)
    quarantined = rowchecks.quarantine_rows(con, run_id, source.name, batch_id, checks, computed_at)
    # A source without a single check (no contract, no suite) gets no check-based score: "not checked".
    scores = rowchecks.quality_scores(con, checks, len(required)) if outcome is not None else {}
    details: dict[str, str] = {}
    fresh = _timeliness(con, tenant, source, batch_id)
    if fresh is not None:
        scores["timeliness"], details["timeliness"] = fresh[:3], json.dumps(fresh[3], sort_keys=True)
    con.execute("DROP TABLE IF EXISTS " + rowchecks.FLAGS)

    # Rows the loader already held back (schema drift with `on_drift: quarantine`, kept in
    # raw."_rejected_<source>") never reached raw: they count as quarantined too, so that
    # n_rows_read = n_rows_promoted + n_rows_quarantined holds for every batch.
    n_read, n_rejected_at_load = con.execute(
        "SELECT n_rows_read, n_rows_rejected FROM meta.loads WHERE batch_id = ? AND source = ?",
        [batch_id, source.name]).fetchone()
    n_quarantined = n_rejected_at_load + con.execute(
        "SELECT coalesce(sum(n_rows), 0) FROM meta.quarantine WHERE batch_id = ? AND source = ?",
        [batch_id, source.name]).fetchone()[0]
    blocked = outcome is not None and not outcome.success
    # Counted through the very filter `transform` applies, not derived from the other two numbers.
    n_promoted = 0 if blocked else con.execute(
        f'SELECT count(*) FROM raw."{source.name}" WHERE _batch_id = ? AND '
        + rowchecks.exclusion_sql(source.name, source.primary_key, source.personal_columns), [batch_id]).fetchone()[0]
    if not blocked and n_read != n_promoted + n_quarantined:
        raise PromotionMismatch(f"source '{source.name}' batch {batch_id}: {n_read} rows read but {n_promoted} "
                                f"promoted + {n_quarantined} quarantined")
    con.execute("UPDATE meta.loads SET n_rows_promoted = ?, n_rows_quarantined = ? WHERE batch_id = ? AND source = ?",
                [n_promoted, n_quarantined, batch_id, source.name])
    # A retry of the batch keeps its first scoring time, so the trend mart comes out identical.
    first = con.execute("SELECT min(computed_at) FROM meta.quality_scores WHERE batch_id = ? AND source = ?",
                        [batch_id, source.name]).fetchone()[0]
    computed_at = first or computed_at
    con.execute("DELETE FROM meta.quality_scores WHERE batch_id = ? AND source = ?", [batch_id, source.name])
    for dimension, (score, n_checked, n_failed) in scores.items():
        con.execute("INSERT INTO meta.quality_scores (run_id, batch_id, source, dimension, score, n_checked, "
                    "n_failed, computed_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_id, batch_id, source.name, dimension, score, n_checked, n_failed, computed_at,
                     details.get(dimension)])
    if n_quarantined:
        log.warning("source '%s': %s row(s) quarantined (meta.quarantine), %s promoted", source.name,
                    f"{n_quarantined:,}", f"{n_promoted:,}")
    return BatchQuality(source.name, batch_id, n_read, n_promoted, n_quarantined, quarantined, failing, scores)


def _timeliness(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, source: SourceConfig,
                batch_id: str) -> tuple[float, int, int, dict] | None:
    """Newest incremental value vs. load time and the source's schedule; None without either.

    Returns (score, n_checked, n_failed, detail); `detail` explains the score (stored as JSON in
    `meta.quality_scores.detail`, shown by the app): `newest` (the data's last date, tenant-local ISO, null
    when no value reads as a time), `run` (the load, tenant-local ISO), `lag_days` (whole calendar days
    between them), `interval_hours` (the schedule's rhythm), `allowed_hours` (2 intervals), `late`.
    """
    cron = source.schedule or tenant.schedule
    if not source.incremental_column or not cron:
        return None
    newest, loaded_at = con.execute(
        f'SELECT max("{source.incremental_column}"), min(_loaded_at) FROM raw."{source.name}" '
        "WHERE _batch_id = ?", [batch_id]).fetchone()
    if loaded_at is None:
        return None
    zone = ZoneInfo(tenant.timezone)
    local_load = loaded_at.astimezone(zone)
    interval = rowchecks.schedule_interval(cron, local_load.replace(tzinfo=None))
    moment = _as_moment(newest, zone)
    score = rowchecks.timeliness(moment, loaded_at, interval)
    detail = {"newest": None if moment is None else moment.astimezone(zone).replace(tzinfo=None).isoformat(),
              "run": local_load.replace(tzinfo=None).isoformat(timespec="seconds"),
              "lag_days": None if moment is None else (local_load.date() - moment.astimezone(zone).date()).days,
              "interval_hours": round(interval.total_seconds() / 3600, 2),
              "allowed_hours": round(2 * interval.total_seconds() / 3600, 2), "late": bool(score[2])}
    return (*score, detail)


def _as_moment(value: Any, zone: ZoneInfo) -> datetime | None:
    """An incremental column's newest value as an aware time: a timestamp or date (local time), an epoch number
    (UTC; milliseconds when above 1e11, as APIs send them, else seconds) or ISO text; None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, zone)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=zone)
    return None


def mark_unchecked_loads(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Loads that landed nothing new (`unchanged`) promote and quarantine nothing (also those of an earlier
    run that did not get as far as validating)."""
    con.execute("UPDATE meta.loads SET n_rows_promoted = 0, n_rows_quarantined = 0 "
                "WHERE status = 'unchanged' AND (run_id = ? OR n_rows_promoted IS NULL)", [run_id])
