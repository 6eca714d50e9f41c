"""Run control — the one place that says what "a run" is, for `tonghop run` and Airflow tasks alike.

**Writer lock.** `<tenant data folder>/warehouse.lock`, an exclusive `fcntl.flock`. The kernel releases it
when the holder exits or is killed, so a dead run can never keep it. The CLI runner holds it for the whole
run (all steps); an Airflow task process holds it for its one step (Airflow's one-slot pool orders the tasks,
the lock keeps out everybody else). Whoever holds it writes its description (run id, pid, host, since) into
the lock file, so that a second run can say who it waits for: it waits up to `wait` seconds, then fails with
"run R of tenant T is in progress since <time> (pid P on H)" — exit code 2, never a traceback. DuckDB's own
lock errors (an analyst holding `warehouse.duckdb` open) become the same kind of one-line message
(`busy_error`). The lock file is advisory and local: one machine per tenant data folder.

**Run records.** `<tenant data folder>/runs.jsonl`, append-only JSON lines, outside the warehouse so that a
run which fails or dies can be recorded without touching the warehouse it must leave as it was (a torn last
line left by a killed writer is skipped when read). Events, in order:

- `run_start`  run_id, tenant_id, via (cli|airflow), pid, host, started_at, steps
- `step_start` run_id, step, pid, host, at
- a step line  run_id, tenant_id, step, status (success|failed), seconds, at, metrics | error  (as before)
- `run_end`    run_id, status (ok|failed|died), at; a `died` record names the step it died in and who found it

A run's state is its last event. Only the lock holder appends, so the file has one writer at a time.

**Orphans.** Whoever takes the lock looks at the records: a run (other than its own) whose last event shows
work in progress — a `step_start`, or for a CLI run anything but `run_end` — cannot be alive, because every
writer holds the lock while it works. That run is recorded `died` (with the step it was in) and said so in
the log and the run summary. Its batches still `loaded` in `meta.loads` — and those of a run that ended
`failed` after its load committed (a later step raised) — are *abandoned*: status
`abandoned`, their rows removed from `raw`, and — since watermarks advance only with promoted batches
(`pipelines.load.stored_watermark`) and only promoted fingerprints count as "already loaded" — this run
fetches those rows again. Chosen over promoting the orphan through validation because the next run then
ends with exactly what an uninterrupted run gives (one batch per input, quality scores not counted twice,
no stale copy of a source that has moved on), and every source kind here can be read again. A retry of the
same run id (an Airflow retry, `tonghop run --run-id <id>`) resumes its own run: its batches are kept and
replaced batch by batch. Batches still `loaded` whose run is not known dead (an Airflow run between two
tasks) are validated by the next `validate`, whichever run it belongs to: every committed batch ends
promoted, blocked (quarantined) or abandoned and fetched again.

**What a crash may leave (the transform/train window).** Each step commits on its own, so a run that dies
stops between two consistent states, never inside one: `extract_load` commits each source's batch
(raw rows + its `meta.loads` line) in one transaction; `validate` promotes every batch in one transaction;
`transform` rebuilds all of `staging`/`marts` in one transaction; each model of `train` replaces its
output marts in its own transaction; `publish` writes a temp file and renames it over the snapshot. One
window is visible in the *warehouse*: after `transform` committed and before `train` finished, the new
`staging`/`marts` stand next to the previous run's model-output marts (forecasts, risks, staffing,
anomalies), model by model. Nobody reads that mix — apps and analysts read the snapshot, which `publish`
writes only after `train` — and the next run rebuilds all of it. What the crash trials
(`tests/reliability/crash.py`) require after a kill at any instant: (a) the warehouse opens; (b) no partial
batch is visible in `staging`/`marts` (every `_batch_id` there is promoted; every table holds all of
the old or all of the new rows); (c) the snapshot file is the old one, byte for byte, or the whole new
one; (d) the next good run ends with exactly the rows of an uninterrupted run, table by table.

**Leftovers.** Temporary snapshot files (`.serving.duckdb.<pid>.tmp` and its `.wal`) of dead processes are
removed by whoever takes the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import TonghopError

if TYPE_CHECKING:
    import duckdb

    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.runcontrol")
LOCK_NAME = "warehouse.lock"
DEFAULT_WAIT_S = 0.0          # CLI: fail at once unless --wait / TONGHOP_LOCK_WAIT says otherwise
AIRFLOW_WAIT_S = 600.0        # an Airflow task waits for a CLI run to finish before failing (then retries)
WAIT_ENV = "TONGHOP_LOCK_WAIT"


class WarehouseBusy(TonghopError):
    """Another run (or another program) holds the tenant's warehouse: nothing was touched."""

    exit_code = 2


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


# --- the lock -------------------------------------------------------------------------------------------

@dataclass
class WriterLock:
    """The tenant's writer lock, taken by `acquire` and released by `release` (or by the holder's death)."""

    paths: TenantPaths
    tenant_id: str
    run_id: str
    _fd: int | None = None

    @property
    def path(self) -> Path:
        return self.paths.root / LOCK_NAME

    def holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self, wait: float = DEFAULT_WAIT_S) -> WriterLock:
        self.paths.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(wait, 0.0)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise WarehouseBusy(self.busy_message(waited=wait)) from None
                if not announced:
                    log.info("[%s] waiting up to %.0f s: %s", self.tenant_id, wait, self.busy_message())
                    announced = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"run_id": self.run_id, "tenant_id": self.tenant_id, "pid": os.getpid(),
                                  "host": socket.gethostname(), "since": _now()}).encode(), 0)
        self._fd = fd
        return self

    def busy_message(self, waited: float | None = None) -> str:
        h = self.holder()
        who = (f"run {h.get('run_id', '?')} of tenant '{self.tenant_id}' is in progress since "
               f"{h.get('since', '?')} (pid {h.get('pid', '?')} on {h.get('host', '?')})")
        if waited is None:
            return who
        after = f" (waited {waited:g} s)" if waited else ""
        return (f"{who}{after}: nothing was done — let it finish and run again, or wait for it with "
                f"--wait SECONDS (or {WAIT_ENV})")

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


_DUCKDB_LOCK = re.compile(r"Could not set lock on file|Conflicting lock", re.IGNORECASE)


def busy_error(exc: BaseException, paths: TenantPaths, tenant_id: str) -> WarehouseBusy | None:
    """DuckDB's "Could not set lock on file" (another program has the warehouse open) as a readable error."""
    text = str(exc)
    if not _DUCKDB_LOCK.search(text):
        return None
    pid = re.search(r"PID (\d+)", text)
    holder = f"process {pid.group(1)}" if pid else "another process"
    return WarehouseBusy(f"the warehouse of tenant '{tenant_id}' ({paths.warehouse}) is open in {holder}, "
                         "outside any pipeline run: close that program's connection (analysts and apps read "
                         f"{paths.snapshot.name} instead), then run again")


# --- run records ----------------------------------------------------------------------------------------

def append_record(paths: TenantPaths, record: dict[str, Any]) -> None:
    """One JSON line, redacted (`pipelines.redact`), written and synced before the caller goes on."""
    from pipelines.redact import redact_obj

    line = json.dumps(redact_obj(json.loads(json.dumps(record, default=str))), ensure_ascii=False) + "\n"
    with paths.run_log.open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_records(paths: TenantPaths) -> list[dict[str, Any]]:
    if not paths.run_log.exists():
        return []
    out = []
    for line in paths.run_log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line torn by a killed writer
        if isinstance(rec, dict) and rec.get("run_id"):
            out.append(rec)
    return out


@dataclass
class RunState:
    run_id: str
    via: str | None = None
    pid: int | None = None
    host: str | None = None
    started_at: str | None = None
    last: dict[str, Any] = field(default_factory=dict)
    step: str | None = None  # the step started and not finished, if any

    @property
    def in_progress(self) -> bool:
        event = self.last.get("event")
        if event == "run_end":
            return False
        if event in ("run_start", "step_start"):
            return True
        # A finished step: a CLI run holds the lock between steps, an Airflow run does not.
        return self.via == "cli"


def run_states(paths: TenantPaths) -> dict[str, RunState]:
    states: dict[str, RunState] = {}
    for rec in read_records(paths):
        st = states.setdefault(rec["run_id"], RunState(rec["run_id"]))
        event = rec.get("event")
        if event == "run_start":
            st.via, st.pid, st.host, st.started_at = rec.get("via"), rec.get("pid"), rec.get("host"), rec.get("started_at")
            st.step = None
        elif event == "step_start":
            st.step, st.pid = rec.get("step"), rec.get("pid", st.pid)
            st.via = st.via or rec.get("via")
        elif event is None and "step" in rec:
            st.step = None
        st.last = rec
    return states


# --- orphans --------------------------------------------------------------------------------------------

@dataclass
class Orphan:
    run_id: str
    step: str | None
    pid: int | None
    started_at: str | None
    batches: list[tuple[str, str]] = field(default_factory=list)  # (source, batch_id) abandoned
    status: str = "died"  # died (found in progress, holder gone) | failed (ended failing, batches left loaded)

    def sentence(self, tenant_id: str) -> str:
        where = (f"during step '{self.step}'" if self.step else "between steps") if self.status == "died" \
            else f"at step '{self.step}'"
        what = (f"its {len(self.batches)} batch(es) left 'loaded' ({', '.join(s for s, _ in self.batches)}) were "
                "abandoned and their rows are fetched again by this run" if self.batches
                else "it left no unpromoted batch")
        return (f"run {self.run_id} of tenant '{tenant_id}' {self.status} {where} (pid {self.pid}, started "
                f"{self.started_at}): {what}")


def abandon_batches(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, str]]:
    """The dead run's batches still `loaded`: marked `abandoned`, their raw rows removed (fetched again)."""
    from pipelines.warehouse import table_exists, transaction

    rows = con.execute("SELECT source, batch_id FROM meta.loads WHERE run_id = ? AND status = 'loaded' "
                       "ORDER BY source", [run_id]).fetchall()
    if not rows:
        return []
    with transaction(con):
        for source, batch_id in rows:
            for table in (source, f"_rejected_{source}"):
                if table_exists(con, "raw", table):
                    con.execute(f'DELETE FROM raw."{table}" WHERE _batch_id = ?', [batch_id])
            con.execute("UPDATE meta.loads SET status = 'abandoned', n_rows_promoted = 0 "
                        "WHERE batch_id = ? AND source = ?", [batch_id, source])
    return [(s, b) for s, b in rows]


def resolve_orphans(paths: TenantPaths, tenant_id: str, current_run_id: str) -> list[Orphan]:
    """Record dead runs as `died`; abandon the unpromoted batches of runs that died or failed; clean temp files.

    Call only while holding the lock. The current run id is never an orphan: a retry resumes its run.
    """
    from pipelines.warehouse import connect

    clean_leftovers(paths)
    states = [st for st in run_states(paths).values() if st.run_id != current_run_id]
    dead = {st.run_id for st in states if st.in_progress}
    failed = {st.run_id for st in states if st.last.get("event") == "run_end"
              and st.last.get("status") in ("failed", "died")}
    if not dead and not failed:
        return []
    orphans = []
    con_cm = connect(paths.warehouse) if paths.warehouse.exists() else contextlib.nullcontext(None)
    with con_cm as con:
        loaded = {r for (r,) in con.execute("SELECT DISTINCT run_id FROM meta.loads WHERE status = 'loaded'")
                  .fetchall()} if con is not None else set()
        for st in states:
            if st.run_id not in dead and not (st.run_id in failed and st.run_id in loaded):
                continue
            batches = abandon_batches(con, st.run_id) if st.run_id in loaded else []
            status = "died" if st.run_id in dead else str(st.last.get("status"))
            step = st.step if status == "died" else st.last.get("step")
            orphan = Orphan(st.run_id, step, st.pid, st.started_at, batches, status)
            if status == "died":
                append_record(paths, {"event": "run_end", "run_id": st.run_id, "tenant_id": tenant_id,
                                      "status": "died", "step": step, "pid": st.pid, "at": _now(),
                                      "found_by": current_run_id, "abandoned_batches": [list(b) for b in batches]})
            else:
                append_record(paths, {"event": "batches_abandoned", "run_id": st.run_id, "tenant_id": tenant_id,
                                      "at": _now(), "found_by": current_run_id,
                                      "abandoned_batches": [list(b) for b in batches]})
            log.warning("[%s] %s", tenant_id, orphan.sentence(tenant_id))
            orphans.append(orphan)
    return orphans


_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(\.wal)?$")


def remove_dead_temp_files(snapshot: Path) -> list[Path]:
    """Temporary snapshot files (`.serving.duckdb.<pid>.tmp[.wal]`) whose writing process is gone."""
    removed = []
    for p in snapshot.parent.glob(f".{snapshot.name}.*.tmp*"):
        m = _TMP.match(p.name)
        if m and m.group("name") == snapshot.name and int(m.group("pid")) != os.getpid() \
                and not _alive(int(m.group("pid"))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def clean_leftovers(paths: TenantPaths) -> list[Path]:
    removed = remove_dead_temp_files(paths.snapshot)
    if removed:
        log.info("removed %d leftover snapshot temp file(s) of dead runs: %s", len(removed),
                 ", ".join(p.name for p in removed))
    return removed


# --- a controlled run -----------------------------------------------------------------------------------

@dataclass
class RunControl:
    """One run (CLI) or one step of a run (Airflow) inside the tenant's lock, with its records."""

    paths: TenantPaths
    tenant_id: str
    run_id: str
    via: str  # cli | airflow
    lock: WriterLock = field(init=False)
    orphans: list[Orphan] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = WriterLock(self.paths, self.tenant_id, self.run_id)

    def record(self, event: str | None, **fields: Any) -> None:
        rec = {"run_id": self.run_id, "tenant_id": self.tenant_id}
        if event:
            rec["event"] = event
        append_record(self.paths, {**rec, **fields})

    def start_run(self, steps: list[str]) -> None:
        self.record("run_start", via=self.via, pid=os.getpid(), host=socket.gethostname(), started_at=_now(),
                    steps=steps, resolved=[o.run_id for o in self.orphans])

    def start_step(self, step: str) -> None:
        self.record("step_start", step=step, via=self.via, pid=os.getpid(), host=socket.gethostname(), at=_now())

    def end_step(self, step: str, status: str, seconds: float, **extra: Any) -> None:
        self.record(None, step=step, status=status, seconds=round(seconds, 3), at=_now(), **extra)

    def end_run(self, status: str, **extra: Any) -> None:
        self.record("run_end", status=status, at=_now(), **extra)

    def has_started(self) -> bool:
        return self.run_id in run_states(self.paths)


@contextlib.contextmanager
def controlled(paths: TenantPaths, tenant_id: str, run_id: str, via: str,
               wait: float | None = None) -> Iterator[RunControl]:
    """Take the tenant's writer lock (waiting up to `wait` s), resolve dead runs, yield; release on exit."""
    if wait is None:
        env = os.environ.get(WAIT_ENV)
        try:
            wait = float(env) if env else (AIRFLOW_WAIT_S if via == "airflow" else DEFAULT_WAIT_S)
        except ValueError:
            raise TonghopError(f"{WAIT_ENV}={env!r} is not a number of seconds — set it to e.g. 60") from None
    rc = RunControl(paths, tenant_id, run_id, via)
    rc.lock.acquire(wait)
    try:
        try:
            rc.orphans = resolve_orphans(paths, tenant_id, run_id)
        except Exception as exc:
            busy = busy_error(exc, paths, tenant_id)
            if busy is not None:
                raise busy from None
            raise
        yield rc
    finally:
        rc.lock.release()
