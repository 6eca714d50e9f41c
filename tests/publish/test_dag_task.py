"""The DAG's `open_data` task through real Airflow (`airflow tasks test`): it publishes, then is SKIPPED when
no open dataset changed, then publishes again after a change — reading only the snapshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import project_path
from tests.publish.conftest import open_folder


def _task_test(airflow_home: Path, dag_id: str):
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__DAGS_FOLDER": str(project_path("dags")),
           "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO", "AIRFLOW_HOME": str(airflow_home),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    airflow = shutil.which("airflow", path=env["PATH"])

    def run(day: str) -> str:
        proc = subprocess.run([airflow, "tasks", "test", dag_id, "open_data", day], env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        return proc.stdout + proc.stderr

    return run


@pytest.mark.airflow
def test_open_data_task_publishes_then_skips(airflow_home, province):
    run = _task_test(airflow_home, f"tonghop_{province.tenant_id}")
    first = run("2026-12-01")
    assert "new_state=success" in first and "opendata: ok — 5 written" in first
    second = run("2026-12-02")
    assert "new_state=skipped" in second and "nothing open changed since the last publication" in second
    with duckdb.connect(str(open_folder(province).parent / "serving.duckdb")) as con:
        con.execute("UPDATE marts.ho_so_tuan SET n_tiep_nhan = n_tiep_nhan + 1 WHERE rowid = 0")
    third = run("2026-12-03")
    assert "new_state=success" in third and "opendata: ok — 1 written" in third
