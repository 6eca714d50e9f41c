"""The SQL console's sandbox: one analyst's SELECT on the tenant's serving snapshot, and nothing else.

Layers, each enough alone for the worst cases, all of them always on:

1. **The statement** (`check_sql`), by DuckDB's own parser: exactly one statement (`duckdb.extract_statements`),
   of type SELECT (WITH, VALUES, FROM-first, SUMMARIZE/DESCRIBE/SHOW parse as SELECT; PRAGMA, CALL, SET,
   COPY, ATTACH, INSTALL, LOAD, EXPORT, CREATE, INSERT, EXPLAIN… do not). Its syntax tree
   (`json_serialize_sql`) is walked: table functions only from a short allow-list (range, generate_series,
   unnest, duckdb_tables/columns/views/schemas — no read_csv, glob, query, duckdb_databases…), no
   `getenv`/`current_setting`-like scalar, no table named like a file path, no catalogue but the snapshot's.
   Invisible characters (format/control: zero-width, bidi overrides, NUL) are refused, not ignored.
2. **The engine**: an in-memory DuckDB that ATTACHes the snapshot READ_ONLY, makes it the default
   catalogue, then sets `enable_external_access = false` (no file, no network, no ATTACH/COPY/
   INSTALL/LOAD), `autoload/autoinstall_known_extensions = false`, `allow_community_extensions = false`,
   `memory_limit`, `threads`, `temp_directory = ''` (no spill file), and finally `lock_configuration = true`
   — all BEFORE any user's SQL runs, so no SET can undo them. It is opened once per snapshot version and
   each query runs on its own cursor (`sandbox_cursor`).
3. **Bounds**: a timer calls `con.interrupt()` after the time limit; rows are fetched streaming and cut at
   the row limit (a cross-join bomb stops at limit + 1 rows); at most `TONGHOP_CONSOLE_SLOTS` queries at once.
4. **A process of its own**: the statement runs in a worker process (pipelines/access/console_worker.py,
   no secret in its environment) that the server kills when it overruns the time limit by a few seconds or
   its resident memory passes `Limits.process_bytes()` — DuckDB's memory_limit does not cover every
   allocation (one `repeat('x', 2000000000)` is a 2 GB string) and an interrupt is seen between chunks only.

Every attempt — run, refused or failed — is appended to the audit log (pipelines/access/audit.py) with the
user, tenant, SQL (redacted), rows, duration and the reason.
"""

from __future__ import annotations

import json
import os
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from pipelines.access.audit import AuditLog
from pipelines.sqltext import quote_literal

if TYPE_CHECKING:
    import pandas as pd

SNAPSHOT_ALIAS = "serving"
MAX_SQL_CHARS = 20_000
ALLOWED_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "duckdb_tables", "duckdb_columns",
                                     "duckdb_views", "duckdb_schemas"})
DENIED_FUNCTIONS = frozenset({"getenv", "current_setting", "duckdb_settings", "duckdb_secrets",
                              "duckdb_databases", "duckdb_extensions", "read_text", "read_blob", "read_csv",
                              "read_csv_auto", "read_parquet", "read_json", "read_json_auto", "glob", "query",
                              "query_table", "sniff_csv", "parquet_scan", "parquet_metadata", "parquet_schema"})
FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".json", ".jsonl", ".ndjson", ".txt", ".duckdb", ".db", ".sqlite",
                 ".gz", ".zst", ".xlsx", ".arrow")

# Vietnamese first; `reason` codes are stored in the audit log, the sentences shown on the page.
REASONS = {
    "empty": ("Hãy nhập một câu lệnh SELECT.", "Type a SELECT statement."),
    "too_long": ("Câu lệnh dài quá {limit} ký tự.", "The statement is longer than {limit} characters."),
    "invisible_chars": ("Câu lệnh chứa ký tự ẩn hoặc ký tự điều khiển ({chars}); hãy gõ lại câu lệnh.",
                        "The statement contains invisible or control characters ({chars}); type it again."),
    "parse_error": ("Câu lệnh có lỗi cú pháp: {detail}", "Syntax error: {detail}"),
    "several_statements": ("Mỗi lần chỉ chạy một câu lệnh (tìm thấy {n}).",
                           "One statement at a time (found {n})."),
    "not_select": ("Chỉ được chạy câu lệnh đọc dữ liệu SELECT/WITH; câu lệnh {detail} không được phép.",
                   "Only SELECT/WITH statements may run; {detail} is not allowed."),
    "function_not_allowed": ("Hàm {detail} không được dùng trong bảng điều khiển SQL (đọc tệp, biến môi trường "
                             "hoặc cấu hình máy chủ).",
                             "The function {detail} is not allowed in the console (files, environment or "
                             "server settings)."),
    "file_access": ("Không được đọc tệp «{detail}»: bảng điều khiển chỉ đọc bản dữ liệu phục vụ của đơn vị.",
                    "Reading the file '{detail}' is not allowed: the console reads only the tenant's snapshot."),
    "catalog_not_allowed": ("Chỉ được đọc bản dữ liệu phục vụ của đơn vị, không đọc «{detail}».",
                            "Only the tenant's snapshot may be read, not '{detail}'."),
    "engine_refused": ("Máy truy vấn từ chối thao tác: {detail}", "The engine refused: {detail}"),
    "timeout": ("Câu lệnh chạy quá {limit} giây nên đã bị dừng. Hãy thu hẹp điều kiện lọc hoặc gộp nhóm.",
                "The statement ran longer than {limit} s and was stopped. Narrow the filters or aggregate."),
    "memory": ("Câu lệnh cần quá nhiều bộ nhớ (giới hạn {limit}). Hãy gộp nhóm hoặc lọc bớt.",
               "The statement needs too much memory (limit {limit}). Aggregate or filter more."),
    "busy": ("Máy chủ đang chạy nhiều truy vấn; hãy thử lại sau ít phút.",
             "The server is running too many queries; try again in a few minutes."),
    "no_snapshot": ("Đơn vị chưa có bản dữ liệu phục vụ; hãy chạy pipeline trước.",
                    "The tenant has no serving snapshot yet; run its pipeline first."),
    "error": ("Câu lệnh bị lỗi: {detail}", "The statement failed: {detail}"),
}


def _env_number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    rows: int = 10_000
    seconds: float = 30.0
    memory: str = "1GB"
    threads: int = 2

    process_memory: str | None = None  # the worker process's resident-memory cap (default 2 × memory + 512MB)

    @classmethod
    def from_env(cls) -> Limits:
        return cls(rows=int(_env_number("TONGHOP_CONSOLE_ROW_LIMIT", 10_000)),
                   seconds=_env_number("TONGHOP_CONSOLE_TIME_LIMIT", 30),
                   memory=os.environ.get("TONGHOP_CONSOLE_MEMORY") or "1GB",
                   threads=int(_env_number("TONGHOP_CONSOLE_THREADS", 2)),
                   process_memory=os.environ.get("TONGHOP_CONSOLE_PROCESS_MEMORY") or None)

    def process_bytes(self) -> int:
        if self.process_memory:
            return _bytes(self.process_memory)
        return 2 * _bytes(self.memory) + _bytes("512MB")


def _bytes(text: str) -> int:
    """'1GB' / '256MB' / '1.5GiB' → bytes (DuckDB's memory_limit spelling)."""
    import re

    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)i?B?\s*", text, re.I)
    if not m:
        raise ValueError(f"'{text}' is not a memory size — write e.g. 1GB or 512MB")
    return int(float(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper()))


_SLOTS = threading.BoundedSemaphore(int(_env_number("TONGHOP_CONSOLE_SLOTS", 2)))


class Refused(Exception):
    def __init__(self, code: str, detail: str = "", **fmt):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code, self.detail, self.fmt = code, detail, fmt


@dataclass
class ConsoleResult:
    status: str  # ok | truncated | refused | timeout | error
    reason: str | None = None  # a REASONS code
    detail: str = ""
    frame: pd.DataFrame | None = None
    rows: int = 0
    duration_ms: float = 0.0
    audit_id: int | None = None
    fmt: dict = field(default_factory=dict)

    def message(self, lang: str = "vi") -> str:
        if self.reason is None:
            return ""
        vi, en = REASONS[self.reason]
        return (en if lang == "en" else vi).format(detail=self.detail, **self.fmt)


# --- 1. the statement ----------------------------------------------------------------------------------------------

_PARSER = duckdb.connect(":memory:", config={"enable_external_access": False,
                                             "autoload_known_extensions": False,
                                             "autoinstall_known_extensions": False})
_PARSER_LOCK = threading.Lock()


def _invisible(sql: str) -> list[str]:
    return sorted({f"U+{ord(c):04X}" for c in sql
                   if (unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") and c not in "\t\n\r")})


def check_sql(sql: str) -> str:
    """The one SELECT statement in `sql`, or Refused(code, detail) saying why not."""
    text = (sql or "").strip()
    if not text:
        raise Refused("empty")
    if len(text) > MAX_SQL_CHARS:
        raise Refused("too_long", limit=f"{MAX_SQL_CHARS:,}".replace(",", "."))
    if bad := _invisible(text):
        raise Refused("invisible_chars", chars=", ".join(bad[:5]))
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise Refused("parse_error", _first_line(exc)) from None
    if len(statements) != 1:
        raise Refused("several_statements", n=len(statements))
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        raise Refused("not_select", statement.type.name)
    query = statement.query.strip()
    with _PARSER_LOCK:
        tree = json.loads(_PARSER.execute("SELECT json_serialize_sql(?)", [query]).fetchone()[0])
    if tree.get("error"):
        raise Refused("parse_error", str(tree.get("error_message", ""))[:200])
    _check_tree(tree)
    return query


def _check_tree(node) -> None:
    if isinstance(node, list):
        for child in node:
            _check_tree(child)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        name = str((node.get("function") or {}).get("function_name", "")).lower()
        if name not in ALLOWED_TABLE_FUNCTIONS:
            raise Refused("function_not_allowed", name)
    elif kind == "BASE_TABLE":
        table = str(node.get("table_name", ""))
        if "/" in table or "\\" in table or table.lower().endswith(FILE_SUFFIXES) or ":" in table:
            raise Refused("file_access", table[:120])
        catalog = str(node.get("catalog_name", "") or "")
        if catalog and catalog.lower() != SNAPSHOT_ALIAS:
            raise Refused("catalog_not_allowed", catalog[:60])
    if "function_name" in node and str(node["function_name"]).lower() in DENIED_FUNCTIONS:
        raise Refused("function_not_allowed", str(node["function_name"]).lower())
    for value in node.values():
        if isinstance(value, dict | list):
            _check_tree(value)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


# --- 2. the engine -------------------------------------------------------------------------------------------------

def sandbox(snapshot: Path, limits: Limits) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB with `snapshot` attached read-only as the default catalogue, then external
    access off, extensions off, memory/threads bounded and the configuration locked."""
    con = duckdb.connect(":memory:", config={"autoload_known_extensions": False,
                                             "autoinstall_known_extensions": False,
                                             "allow_community_extensions": False})
    try:
        con.execute(f"ATTACH {quote_literal(snapshot)} AS {SNAPSHOT_ALIAS} (READ_ONLY)")
        con.execute(f"USE {SNAPSHOT_ALIAS}")
        memory = limits.memory.replace("'", "")
        for statement in ("SET temp_directory = ''", f"SET memory_limit = '{memory}'",
                          f"SET threads = {int(limits.threads)}", "SET enable_external_access = false",
                          "SET lock_configuration = true"):
            con.execute(statement)
    except BaseException:
        con.close()
        raise
    return con


_SANDBOXES: dict[tuple, tuple[str, duckdb.DuckDBPyConnection]] = {}  # (path, limits) → (version, database)
_SANDBOXES_LOCK = threading.Lock()


def sandbox_cursor(snapshot: Path, limits: Limits) -> duckdb.DuckDBPyConnection:
    """A cursor on the locked sandbox of `snapshot`, its default catalogue the snapshot. The sandboxed
    database is opened once per snapshot version (path + mtime) and limits, as apps/data.py does for the
    pages: attaching costs a catalogue read and a cold buffer pool, a cursor nothing. A cursor is a
    connection of its own (temporary objects and settings die with it); the configuration is the
    database's, locked. A new snapshot renamed into place gets a new sandbox at the next query; the old
    one closes when its last cursor does."""
    version = f"{snapshot.stat().st_mtime_ns}:{snapshot.stat().st_size}"
    key = (str(snapshot), limits.memory, limits.threads)
    with _SANDBOXES_LOCK:
        found = _SANDBOXES.get(key)
        if found is None or found[0] != version:
            found = (version, sandbox(snapshot, limits))
            _SANDBOXES[key] = found
        cursor = found[1].cursor()
    cursor.execute(f"USE {SNAPSHOT_ALIAS}")
    return cursor


def snapshot_of(tenant: str) -> Path:
    """The tenant's serving snapshot (and only it): from its tenant file's data folder."""
    from pipelines.config import load_tenant
    from pipelines.settings import TenantPaths

    cfg = load_tenant(tenant)
    return TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).snapshot


def _frame(rows: list[tuple], description) -> pd.DataFrame:
    import pandas as pd

    names, seen = [], {}
    for name in description:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    frame = pd.DataFrame.from_records(rows, columns=names)
    from decimal import Decimal

    for name in names:  # DECIMAL sums come as Decimal objects: numbers, for the formats and spreadsheets
        col = frame[name]
        if col.dtype == object and len(col) and col.map(lambda v: v is None or isinstance(v, Decimal)).all():
            frame[name] = col.map(lambda v: None if v is None else float(v)).astype("float64")
    return frame


# --- 3. one query, bounded and audited -----------------------------------------------------------------------------

def run_query(sql: str, *, user: str, tenant: str, snapshot: Path | None = None, limits: Limits | None = None,
              audit: AuditLog | None = None) -> ConsoleResult:
    """Check, run and audit one console statement of `user` on `tenant`'s snapshot."""
    limits = limits or Limits.from_env()
    audit = audit or AuditLog()
    started = time.perf_counter()
    result = _run(sql, tenant, snapshot, limits)
    result.duration_ms = (time.perf_counter() - started) * 1000
    reason = None if result.reason is None else (f"{result.reason}: {result.detail}" if result.detail
                                                  else result.reason)
    result.audit_id = audit.append("console", result.status, user=user, tenant=tenant, reason=reason,
                                   sql=(sql or "")[:MAX_SQL_CHARS], rows=result.rows,
                                   duration_ms=result.duration_ms,
                                   detail={"row_limit": limits.rows, "time_limit_s": limits.seconds})
    return result


def _run(sql: str, tenant: str, snapshot: Path | None, limits: Limits) -> ConsoleResult:
    try:
        query = check_sql(sql)
    except Refused as refused:
        return ConsoleResult("refused", refused.code, refused.detail, fmt=refused.fmt)
    path = snapshot or snapshot_of(tenant)
    if not path.exists():
        return ConsoleResult("error", "no_snapshot")
    if not _SLOTS.acquire(timeout=min(limits.seconds, 10)):
        return ConsoleResult("refused", "busy")
    from pipelines.access import console_worker

    try:
        return with_frame(*console_worker.execute(path, query, limits))
    except console_worker.WorkerGone as gone:
        if gone.why == "timeout":
            return ConsoleResult("timeout", "timeout", "stopped by the server", fmt={"limit": f"{limits.seconds:g}"})
        if gone.why == "memory":
            return ConsoleResult("refused", "memory", "stopped by the server", fmt={"limit": limits.memory})
        return ConsoleResult("error", "error", "the query process died")
    finally:
        _SLOTS.release()


def _execute(con: duckdb.DuckDBPyConnection, query: str, limits: Limits) -> ConsoleResult:
    """Run `query` on a sandbox cursor, in this process (the worker's side); the frame built from the rows."""
    result, rows, description = _fetch(con, query, limits)
    return with_frame(result, rows, description)


def with_frame(result: ConsoleResult, rows: list[tuple] | None, description) -> ConsoleResult:
    if rows is not None:
        result.frame = _frame(rows, description)
    return result


def _fetch(con: duckdb.DuckDBPyConnection, query: str, limits: Limits):
    """(ConsoleResult without its frame, rows or None, cursor description): what the worker sends back
    (plain tuples: the worker never imports pandas, so it starts fast)."""
    done = threading.Event()

    def stop() -> None:
        if not done.is_set():
            con.interrupt()

    timer = threading.Timer(limits.seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        cursor = con.execute(query)
        rows = cursor.fetchmany(limits.rows + 1)
        description = [str(d[0]) for d in cursor.description]  # names only: DuckDB's types do not pickle
    except duckdb.InterruptException:
        return ConsoleResult("timeout", "timeout", fmt={"limit": f"{limits.seconds:g}"}), None, None
    except duckdb.OutOfMemoryException:
        return ConsoleResult("refused", "memory", fmt={"limit": limits.memory}), None, None
    except duckdb.PermissionException as exc:
        return ConsoleResult("refused", "engine_refused", _first_line(exc)), None, None
    except duckdb.Error as exc:
        if "interrupt" in str(exc).lower():
            return ConsoleResult("timeout", "timeout", fmt={"limit": f"{limits.seconds:g}"}), None, None
        if "locked" in str(exc).lower() or "read-only" in str(exc).lower():
            return ConsoleResult("refused", "engine_refused", _first_line(exc)), None, None
        return ConsoleResult("error", "error", _first_line(exc)), None, None
    finally:
        done.set()
        timer.cancel()
    truncated = len(rows) > limits.rows
    kept = rows[: limits.rows]
    return (ConsoleResult("truncated" if truncated else "ok", None, rows=len(kept), fmt={"limit": limits.rows}),
            kept, description)


def prewarm() -> None:
    """Start a console worker process in the background (no wait)."""
    from pipelines.access import console_worker

    console_worker.prewarm()


def read_dictionary(tenant: str, snapshot: Path | None = None) -> pd.DataFrame:
    """The tenant's data dictionary (meta.data_dictionary) through the same sandbox, for beside the editor:
    table, its description, column, type, column description. Empty when the snapshot has none."""
    import pandas as pd

    path = snapshot or snapshot_of(tenant)
    if not path.exists():
        return pd.DataFrame()
    con = sandbox_cursor(path, Limits.from_env())
    try:
        has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' "
                          "AND table_name = 'data_dictionary'").fetchone()[0]
        if not has:
            cols = con.execute("SELECT schema_name || '.' || table_name AS bang, NULL AS mo_ta_bang, column_name, "
                               "data_type, NULL AS mo_ta_cot FROM duckdb_columns() WHERE database_name = ? "
                               "ORDER BY 1, column_index", [SNAPSHOT_ALIAS])
            return cols.df()
        return con.execute("""SELECT table_schema || '.' || table_name AS bang, table_description_vi AS mo_ta_bang,
                                     column_name, data_type, column_description AS mo_ta_cot
                              FROM meta.data_dictionary ORDER BY table_schema, table_name, position""").df()
    finally:
        con.close()
