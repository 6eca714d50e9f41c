"""Ask a source cheaply whether anything changed, before reading it (cost follows change, issue 16.1).

A **probe** is what can be learnt about a source without reading its rows: for a file source (csv, excel,
parquet, json, sqlite) the `stat` of every file it reads — path, size, modification time in nanoseconds,
inode and status-change time (ctime) — plus, for SQLite, its `-wal` and `-journal` files (a write in WAL mode may leave the main file
untouched until a checkpoint). The probe also covers the source's whole configuration, so a changed option
(types, mapping, query…) reads the source again.

`pipelines.load` records the probe taken *before* each read with the batch that read produced
(`meta.source_probes`). The next run skips the source without opening it when the probe is the same and the
recorded batch was promoted (or the read found nothing new over a promoted batch): it records the source
`unchanged`, carrying the promoted batch's fingerprint and watermark, exactly as a read that found nothing
would have.

What guarantees no row is lost:
- the probe is taken before the read: a file changed while it was being read has another probe next run;
- a probe is not trusted when a file's modification time is within `RACY_SECONDS` of the moment it was
  taken (a write in the same clock tick could keep the time and the size: "racy" timestamps, as in git);
- a batch that was blocked, abandoned or is still `loaded` never lets its probe skip anything;
- sources with no cheap check (PostgreSQL/MySQL, APIs, CKAN) are read as before: their own watermark query
  (`updated_since`, `WHERE updated > watermark`) is the cheap check there;
- a file rewritten with its size and modification time restored (`cp -p`, `rsync -t`, an unzip) still has a
  new ctime, which no copy tool can set back, so it is read at once (the file fingerprint cache is keyed on
  inode and ctime too). What a `stat` cannot see — a filesystem that keeps no ctime (some network mounts), or
  such a rewrite within the clock tick of the previous write — is caught by the periodic full read: every
  `VERIFY_EVERY`-th run of a source, and whenever its last full read is older than `VERIFY_HOURS`, the probe
  is ignored and the source is read and hashed in full (the fingerprint cache bypassed), so such a change is
  loaded then — late by at most that interval, never lost.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import SourceError
from pipelines.settings import env_number

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths

PROBE_TABLE = "meta.source_probes"
FILE_KINDS = frozenset({"csv", "excel", "parquet", "json", "sqlite"})
RACY_SECONDS = 2.0
VERIFY_EVERY_ENV, VERIFY_HOURS_ENV = "TONGHOP_PROBE_VERIFY_EVERY", "TONGHOP_PROBE_VERIFY_HOURS"
VERIFY_EVERY = 7      # consecutive skips of a source before it is read in full again
VERIFY_HOURS = 24.0   # age of a source's last full read after which it is read in full again


def verify_every() -> int:
    return max(1, int(env_number(VERIFY_EVERY_ENV, VERIFY_EVERY, integer=True, low=0,
                                 meaning="skips of a source before it is read in full again")))


def verify_hours() -> float:
    return env_number(VERIFY_HOURS_ENV, VERIFY_HOURS, low=0,
                      meaning="age in hours of a source's last full read after which it is read in full again")


@dataclass(frozen=True)
class Skip:
    """A source found unchanged by its probe: what the `unchanged` record carries."""

    fingerprint: str | None
    watermark: str | None
    batch_id: str | None
    n_skips: int


def ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (source VARCHAR PRIMARY KEY, probe VARCHAR, "
                "fingerprint VARCHAR, watermark VARCHAR, batch_id VARCHAR, n_skips INTEGER, "
                "verified_at TIMESTAMPTZ, probed_at TIMESTAMPTZ)")


def take(source: SourceConfig, paths: TenantPaths, tenant_id: str | None = None) -> str | None:
    """The source's probe, or None when it has no cheap check (or the check cannot be trusted right now)."""
    if source.kind not in FILE_KINDS or (source.kind == "sqlite" and source.connection is not None):
        return None
    from pipelines.sources.base import resolve_files

    try:
        files = resolve_files(source, paths, tenant_id)
    except SourceError:
        return None  # the read names the problem
    if source.kind == "sqlite":
        files = files + [p for p in (Path(f"{files[0]}-wal"), Path(f"{files[0]}-journal")) if p.exists()]
    parts: list[list[object]] = []
    started = time.time()
    for path in files:
        try:
            st = path.stat()
        except OSError:
            return None
        if started - st.st_mtime < RACY_SECONDS:
            return None  # modified a moment ago: a second write in the same tick could keep size and time
        parts.append([str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns])
    config = source.model_dump(mode="json")
    text = json.dumps([source.kind, config, parts], sort_keys=True, default=str)
    return "stat:" + hashlib.sha256(text.encode()).hexdigest()


def due(con: duckdb.DuckDBPyConnection, source: SourceConfig, probe: str | None, now: datetime) -> bool:
    """Whether the source's probe matches but its periodic full read (bytes hashed again) is due."""
    if probe is None:
        return False
    ensure_table(con)
    row = con.execute(f"SELECT n_skips, verified_at FROM {PROBE_TABLE} WHERE source = ? AND probe = ?",
                      [source.name, probe]).fetchone()
    return row is not None and _due(row[0], row[1], now)


def _due(n_skips: int, verified_at: datetime | None, now: datetime) -> bool:
    return n_skips + 1 >= verify_every() or verified_at is None or now - verified_at > timedelta(hours=verify_hours())


def unchanged(con: duckdb.DuckDBPyConnection, source: SourceConfig, probe: str | None, run_id: str,
              now: datetime) -> Skip | None:
    """The promoted state the source is still in, when its probe says nothing changed and no full read is due."""
    if probe is None:
        return None
    ensure_table(con)
    row = con.execute(f"SELECT fingerprint, watermark, batch_id, n_skips, verified_at FROM {PROBE_TABLE} "
                      "WHERE source = ? AND probe = ?", [source.name, probe]).fetchone()
    if row is None:
        return None
    fingerprint, watermark, batch_id, n_skips, verified_at = row
    if _due(n_skips, verified_at, now):
        return None  # a full read is due: the change a stat cannot see is caught there
    # The state the probe was recorded with must be promoted: its own batch passed, or (a read that found
    # nothing new) the newest passed batch has that fingerprint; for an incremental source, the watermark
    # it carries is the one of its last promoted batch (only those move an incremental read on).
    if batch_id is not None and batch_id != run_id:
        if not con.execute("SELECT count(*) FROM meta.loads WHERE source = ? AND batch_id = ? AND status = 'passed'",
                           [source.name, batch_id]).fetchone()[0]:
            return None
    elif not source.incremental_column:
        from pipelines.load import latest_promoted_fingerprint

        if fingerprint != latest_promoted_fingerprint(con, source, run_id):
            return None  # an older promoted input, since superseded: staging is not in that state
    if source.incremental_column:
        from pipelines.load import stored_watermark

        if watermark is None or stored_watermark(con, source, run_id) != watermark:
            return None
    return Skip(fingerprint, watermark, batch_id, n_skips)


def record(con: duckdb.DuckDBPyConnection, source: SourceConfig, probe: str | None, status: str,
           fingerprint: str | None, watermark: str | None, batch_id: str, now: datetime,
           skipped: Skip | None = None) -> None:
    """After a source was handled: remember its probe with the state it stands for (in the load's transaction).

    `status` is the load's: `loaded` (valid once that batch is promoted), `unchanged` (a promoted state), or
    skipped by the probe (`skipped` given: one more skip counted)."""
    ensure_table(con)
    if probe is None:
        con.execute(f"DELETE FROM {PROBE_TABLE} WHERE source = ?", [source.name])
        return
    if skipped is not None:
        con.execute(f"UPDATE {PROBE_TABLE} SET n_skips = n_skips + 1, probed_at = ? WHERE source = ?",
                    [now, source.name])
        return
    con.execute(f"INSERT OR REPLACE INTO {PROBE_TABLE} VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
                [source.name, probe, fingerprint, watermark, batch_id if status == "loaded" else None, now, now])
