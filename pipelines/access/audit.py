"""The audit log: every sign-in attempt and every console query, append-only, outside any snapshot.

One SQLite file, `$TONGHOP_HOME/access/audit.sqlite` (mode 0600, folder 0700: only the server's account reads
or writes it; the console's DuckDB has no file access at all, so an analyst's SQL cannot reach it). Triggers
refuse UPDATE and DELETE, and each row carries the SHA-256 of the previous row's hash and its own content, so
an edit made behind SQLite's back (another tool, a restored copy) is found by `verify()`.

Rows: kind ('signin' | 'console'), at (UTC ISO-8601), user, tenant, status, reason, sql (redacted), rows,
duration_ms, detail. Statuses: signin → ok | failed | locked | refused (no grant); console → ok | truncated |
refused | timeout | error.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from pipelines.settings import tonghop_home

COLUMNS = ("id", "at", "kind", "user", "tenant", "status", "reason", "sql", "rows", "duration_ms", "detail",
           "prev_hash", "hash")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, kind TEXT NOT NULL, user TEXT, tenant TEXT, status TEXT NOT NULL, reason TEXT,
    sql TEXT, rows INTEGER, duration_ms REAL, detail TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_user ON events (kind, user, at);
CREATE INDEX IF NOT EXISTS events_at ON events (kind, at);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
GENESIS = "0" * 64


def utcnow() -> datetime:
    """The clock of the access package (tests move it forward with monkeypatch)."""
    return datetime.now(UTC)


def access_dir() -> Path:
    """`$TONGHOP_HOME/access`, created 0700."""
    path = tonghop_home() / "access"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def secure_connect(path: Path) -> sqlite3.Connection:
    """A SQLite connection to `path`, the file created 0600 first when missing (never world-readable)."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)
    con = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA busy_timeout = 10000")
    con.execute("PRAGMA synchronous = NORMAL")
    return con


def _row_hash(prev: str, values: dict) -> str:
    body = json.dumps([prev] + [values.get(c) for c in COLUMNS[1:-2]], ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class _Shared:
    """One SQLite connection of this process to an audit file, used under a lock by every thread: opening
    and closing per event cost ~20 ms (the last close checkpoints the WAL)."""

    def __init__(self, con: sqlite3.Connection):
        self.con, self.lock = con, threading.RLock()

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        return self.con

    def __exit__(self, *exc) -> None:
        self.lock.release()


_SHARED: dict[str, _Shared] = {}
_SHARED_LOCK = threading.Lock()


class AuditLog:
    def __init__(self, path: Path | None = None):
        self.path = path or access_dir() / "audit.sqlite"
        with _SHARED_LOCK:
            shared = _SHARED.get(str(self.path))
            if shared is None or not self.path.exists():
                con = secure_connect(self.path)
                con.row_factory = sqlite3.Row
                con.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
                con.executescript(_SCHEMA)
                # check_same_thread off: Streamlit runs sessions on several threads; the lock serialises them
                shared = _SHARED[str(self.path)] = _Shared(con)
        self._shared = shared

    def _con(self) -> _Shared:
        return self._shared

    def append(self, kind: str, status: str, *, user: str | None = None, tenant: str | None = None,
               reason: str | None = None, sql: str | None = None, rows: int | None = None,
               duration_ms: float | None = None, detail: dict | None = None, at: datetime | None = None) -> int:
        """Append one event; returns its id. `sql`, `reason` and `detail` are redacted here (never trusted)."""
        from pipelines.redact import redact, redact_obj

        values = {"at": (at or utcnow()).astimezone(UTC).isoformat(timespec="milliseconds"), "kind": kind,
                  "user": user, "tenant": tenant, "status": status, "reason": redact(reason), "sql": redact(sql),
                  "rows": rows, "duration_ms": None if duration_ms is None else round(float(duration_ms), 3),
                  "detail": None if detail is None else json.dumps(redact_obj(detail), ensure_ascii=False)}
        with self._con() as con:
            try:
                con.execute("BEGIN IMMEDIATE")  # the previous hash and this row in one writer's turn
                prev = con.execute("SELECT hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
                values["prev_hash"] = prev[0] if prev else GENESIS
                values["hash"] = _row_hash(values["prev_hash"], values)
                cols = COLUMNS[1:]
                cur = con.execute(f"INSERT INTO events ({', '.join(cols)}) VALUES "
                                  f"({', '.join('?' for _ in cols)})", [values[c] for c in cols])
                con.execute("COMMIT")
                return int(cur.lastrowid)
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise

    def recent(self, kind: str | None = None, *, tenant: str | None = None, user: str | None = None,
               status: str | None = None, limit: int = 200) -> list[dict]:
        """The newest events first (for the operations page), filtered by kind/tenant/user/status."""
        where, params = [], []
        for column, value in (("kind", kind), ("tenant", tenant), ("user", user), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM events" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self._con() as con:
            rows = con.execute(sql + " ORDER BY id DESC LIMIT ?", [*params, int(limit)]).fetchall()
        return [dict(r) for r in rows]

    def failures_since(self, since: datetime, user: str | None = None) -> list[datetime]:
        """Times of failed sign-ins since `since` (of one user after their last success, or of everyone)."""
        with self._con() as con:
            if user is None:
                rows = con.execute("SELECT at FROM events WHERE kind = 'signin' AND status = 'failed' AND at >= ? "
                                   "ORDER BY at", [since.astimezone(UTC).isoformat(timespec="milliseconds")])
            else:
                last_ok = con.execute("SELECT max(id) FROM events WHERE kind = 'signin' AND status = 'ok' "
                                      "AND user = ?", [user]).fetchone()[0] or 0
                rows = con.execute("SELECT at FROM events WHERE kind = 'signin' AND status = 'failed' AND user = ? "
                                   "AND at >= ? AND id > ? ORDER BY at",
                                   [user, since.astimezone(UTC).isoformat(timespec="milliseconds"), last_ok])
            return [datetime.fromisoformat(r[0]) for r in rows.fetchall()]

    def verify(self) -> tuple[bool, int | None]:
        """(True, None) when every row's hash chains from the one before; else (False, first bad id)."""
        with self._con() as con:
            prev = GENESIS
            for row in con.execute("SELECT * FROM events ORDER BY id"):
                values = dict(row)
                if values["prev_hash"] != prev or _row_hash(prev, values) != values["hash"]:
                    return False, values["id"]
                prev = values["hash"]
            return True, None


def console_log(tenant: str | None = None, limit: int = 200) -> list[dict]:
    """Console queries, newest first (who, tenant, when, SQL redacted, rows, duration, refused and why):
    what the operations page shows engineers."""
    return AuditLog().recent("console", tenant=tenant, limit=limit)


def signin_log(limit: int = 200) -> list[dict]:
    """Sign-in attempts, newest first (ok, failed, locked, refused)."""
    return AuditLog().recent("signin", limit=limit)
