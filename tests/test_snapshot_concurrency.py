"""Readers never block the writer: a reader process queries the serving snapshot in a loop while the
pipeline runs and republishes it. Zero lock errors on either side; every query sees one whole snapshot."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from datetime import date

import duckdb
import pytest

from pipelines.demo import generate
from pipelines.runner import run
from pipelines.settings import TenantPaths

pytestmark = pytest.mark.integration

READER = textwrap.dedent("""
    import duckdb, json, sys, time
    path, stop_file, out = sys.argv[1], sys.argv[2], sys.argv[3]
    seen, errors = [], []
    deadline = time.monotonic() + 300
    import os
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        try:
            con = duckdb.connect(path, read_only=True)
            try:
                # One connection = one file: run id, a mart and a staging count must all agree.
                run_id = con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0]
                kpi = con.execute("SELECT n_ho_so FROM marts.kpi_tong_quan").fetchone()[0]
                staged = con.execute("SELECT count(*) FROM staging.ho_so").fetchone()[0]
                seen.append([run_id, kpi, staged])
            finally:
                con.close()
        except Exception as exc:
            errors.append(repr(exc))
    json.dump({"seen": seen, "errors": errors}, open(out, "w"))
""")


def test_reader_loop_during_pipeline_runs(demo_tenant, tmp_path):
    paths = TenantPaths.for_tenant(demo_tenant.tenant_id)
    assert run(demo_tenant, run_id="old").ok
    expected = {"old": _n_ho_so(paths)}

    # A month later the one-stop-shop database holds other dossiers: those updated after the last watermark
    # (November's returns and new arrivals) are fetched, so the two snapshots differ in content.
    fresh = tmp_path / "fresh"
    generate(fresh, rows=4_500, seed=38, as_of=date(2025, 12, 1))
    shutil.copy(fresh / "mot_cua.sqlite", paths.sources / "mot_cua.sqlite")

    stop, out = tmp_path / "stop", tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(paths.snapshot), str(stop), str(out)])
    try:
        report = run(demo_tenant, run_id="new")
        expected["new"] = _n_ho_so(paths)
        # Keep reading a little after the switch so the reader sees the new snapshot too.
        for _ in range(50):
            if reader.poll() is not None:
                break
            subprocess.run([sys.executable, "-c", "import time; time.sleep(0.05)"], check=True)
        stop.touch()
        assert reader.wait(timeout=120) == 0
    finally:
        stop.touch()
        reader.kill() if reader.poll() is None else None
    assert report.ok, report.summary()  # the writer never hit a lock held by the reader
    result = json.loads(out.read_text())
    assert result["errors"] == []
    assert expected["old"] != expected["new"]
    seen_runs = {r for r, _, _ in result["seen"]}
    assert seen_runs == {"old", "new"}, seen_runs
    for run_id, kpi, staged in result["seen"]:
        assert kpi == staged == expected[run_id], (run_id, kpi, staged)


def _n_ho_so(paths: TenantPaths) -> int:
    con = duckdb.connect(str(paths.snapshot), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM staging.ho_so").fetchone()[0]
    finally:
        con.close()
