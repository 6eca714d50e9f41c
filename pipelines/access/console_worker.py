"""The SQL console's worker processes: where user SQL actually runs, so the server can always take it back.

DuckDB's `memory_limit` bounds its buffer manager, not every allocation (a `repeat('x', 2000000000)` builds a
2 GB string in one function call) and `interrupt()` is only seen between chunks: a single statement could
hold gigabytes and run well past its time limit inside the server process. So statements run in a separate
Python process (`python -m pipelines.access.console_worker`, started with the secret-looking environment
variables removed), one statement at a time, and the server:

- gives it `limits.seconds` + `GRACE_S` to answer (the worker's own interrupt timer answers first in the
  normal case), then kills it;
- polls its resident memory every 50 ms and kills it above `limits.process_bytes()`.

A killed worker is replaced at the next query; idle workers are reused (each keeps its sandbox per snapshot
version warm). Messages are length-prefixed pickles on the worker's stdin/stdout (both ends are this code); rows come back as
plain tuples and the DataFrame is built by the server, so a worker imports DuckDB but not pandas.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

GRACE_S = 3.0
POLL_S = 0.05
START_TIMEOUT_S = 120.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class WorkerGone(Exception):
    """The worker was killed (time or memory) or died."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why  # timeout | memory | died


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=5)
    stream.write(struct.pack(">Q", len(data)))
    stream.write(data)
    stream.flush()


def _read_exact(stream, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("worker channel closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(stream):
    (n,) = struct.unpack(">Q", _read_exact(stream, 8))
    return pickle.loads(_read_exact(stream, n))  # noqa: S301 — written by our own worker process


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _worker_env() -> dict[str, str]:
    from pipelines.redact import _SECRET_NAME

    return {k: v for k, v in os.environ.items() if not _SECRET_NAME.search(k)}


class Worker:
    def __init__(self):
        root = Path(__file__).resolve().parent.parent.parent
        self.proc = subprocess.Popen([sys.executable, "-m", "pipelines.access.console_worker"], cwd=root,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_worker_env())
        self._ready = False

    def _wait_ready(self) -> None:
        if self._ready:
            return
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        if not ready or _receive(self.proc.stdout) != "ready":
            self.kill()
            raise WorkerGone("died")
        self._ready = True

    def run(self, snapshot: Path, query: str, limits):
        """(ConsoleResult, rows, description) of `query`, or WorkerGone after killing the worker."""
        self._wait_ready()
        try:
            _send(self.proc.stdin, (str(snapshot), query, limits))
        except (BrokenPipeError, OSError):
            self.kill()
            raise WorkerGone("died") from None
        deadline = time.monotonic() + limits.seconds + GRACE_S
        cap = limits.process_bytes()
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], POLL_S)
            if ready:
                try:
                    return _receive(self.proc.stdout)
                except (EOFError, pickle.UnpicklingError, struct.error):
                    self.kill()
                    raise WorkerGone("died") from None
            if self.proc.poll() is not None:
                raise WorkerGone("died")
            if _rss(self.proc.pid) > cap:
                self.kill()
                raise WorkerGone("memory")
            if time.monotonic() > deadline:
                self.kill()
                raise WorkerGone("timeout")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


_IDLE: list[Worker] = []
_IDLE_LOCK = threading.Lock()


def _take() -> Worker:
    with _IDLE_LOCK:
        while _IDLE:
            worker = _IDLE.pop()
            if worker.proc.poll() is None:
                return worker
    return Worker()


def prewarm(wait: bool = False) -> None:
    """Start one idle worker now unless one is there (the console page calls it at load, the server after a
    kill), so a query does not wait for Python and DuckDB to start. `wait`: until it is ready."""
    with _IDLE_LOCK:
        alive = [w for w in _IDLE if w.proc.poll() is None]
        if not alive:
            alive = [Worker()]
            _IDLE.append(alive[0])
    if wait:
        alive[0]._wait_ready()


def execute(snapshot: Path, query: str, limits):
    """Run a checked statement in a worker: its ConsoleResult, or WorkerGone (the worker is then gone and a
    replacement is already starting)."""
    worker = _take()
    try:
        result = worker.run(snapshot, query, limits)
    except WorkerGone:
        prewarm()
        raise
    with _IDLE_LOCK:
        _IDLE.append(worker)
    return result


def shutdown() -> None:
    with _IDLE_LOCK:
        while _IDLE:
            _IDLE.pop().kill()


import atexit  # noqa: E402

atexit.register(shutdown)


def main() -> int:
    """The worker's loop: (snapshot, query, limits) in, (ConsoleResult, rows, description) out, until stdin
    closes."""
    channel_in, channel_out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by a library can corrupt the channel
    from pipelines.access import console

    _send(channel_out, "ready")
    while True:
        try:
            snapshot, query, limits = _receive(channel_in)
        except EOFError:
            return 0
        cursor = console.sandbox_cursor(Path(snapshot), limits)
        try:
            answer = console._fetch(cursor, query, limits)
        finally:
            cursor.close()
        _send(channel_out, answer)


if __name__ == "__main__":
    sys.exit(main())
