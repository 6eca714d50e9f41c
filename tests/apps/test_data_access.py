"""apps/data.py keeps one read-only database per snapshot and reopens it when the pipeline renames a new
snapshot into place (os.replace, as pipelines/warehouse.py publishes): the next query sees the new data, and
the open snapshot never blocks the rename."""

from __future__ import annotations

import os
import threading
import time

import duckdb

from apps import data
from pipelines.settings import TenantPaths


def _write(path, value: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT ? AS v", [value])


def _tenant(monkeypatch) -> None:
    """The tenant a signed-in session chose (these tests exercise the connection handling, not access)."""
    from apps import auth

    monkeypatch.setattr(auth, "current_tenant", lambda: "ninh-binh")


def test_query_reopens_after_a_new_snapshot_is_renamed_into_place(_isolated_home, monkeypatch):
    _tenant(monkeypatch)
    paths = TenantPaths.for_tenant("ninh-binh")
    paths.root.mkdir(parents=True, exist_ok=True)
    _write(paths.snapshot, 1)
    assert data.query("SELECT v FROM t")["v"].tolist() == [1]
    assert data.query("SELECT v FROM t")["v"].tolist() == [1]  # same open database, a new cursor
    tmp = paths.root / "next.duckdb"
    _write(tmp, 2)
    time.sleep(0.01)  # a distinct mtime (ns resolution; some filesystems are coarser)
    os.replace(tmp, paths.snapshot)  # as the publish step does, while the app holds the old one open
    os.utime(paths.snapshot)
    assert data.query("SELECT v FROM t")["v"].tolist() == [2]


def test_concurrent_sessions_query_the_same_snapshot(_isolated_home, monkeypatch):
    _tenant(monkeypatch)
    paths = TenantPaths.for_tenant("ninh-binh")
    paths.root.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(paths.snapshot)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS v FROM range(100000)")
    results, errors = [], []

    def session():
        try:
            for _ in range(20):
                results.append(int(data.query("SELECT sum(v) AS s FROM t")["s"].iloc[0]))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=session) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert results == [sum(range(100000))] * 80
