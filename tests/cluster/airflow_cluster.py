"""A real Airflow deployment on one machine, for tests and the load benchmark: PostgreSQL metadata, the
LocalExecutor, and its three long-running components as separate processes — `airflow scheduler` (runs the
tasks in forked worker processes), `airflow api-server` (the UI/REST API and the execution API the task
runners call) and `airflow dag-processor` — each on free loopback ports, stopped (whole process group)
after. The same environment variables a provincial data centre sets (docs/deployment.md), with the two
that bite on a shared machine made explicit: the execution API URL follows the API port, and the log
servers get free ports instead of 8793/8794.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.settings import PROJECT_ROOT
from tests.fixtures.servers import free_port

COMPONENTS = ("scheduler", "api-server", "dag-processor")


def airflow_env(home: Path, metadata_dsn: str, api_port: int, *, parallelism: int = 2,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every component (and every `airflow` CLI call) of one deployment shares."""
    sqlalchemy = metadata_dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy,
        # The LocalExecutor counting its dispatched tasks as running: the scheduler queues no more than
        # `parallelism` tasks, so none waits on the workers' FIFO until its task token expires
        # (pipelines/airflow_executor.py; the cause of the 34-tenant load test's failures).
        "AIRFLOW__CORE__EXECUTOR": "pipelines.airflow_executor.TenantLocalExecutor",
        # Lifetime of a queued task's token too: sized to a long queue (docs/deployment.md), not 600 s.
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "7200",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Airflow's own default, stated: `make test` exports the Makefile's `False` (make airflow's choice), and
        # a deployment that keeps the default relies on `tonghop airflow sync-pools --unpause`, which is tested.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        # One secret for the scheduler (signs the task tokens) and the API server (checks them).
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # runs are triggered; no cron run may start meanwhile
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",  # parsed once at start: no re-parse mid-run
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "GX_ANALYTICS_ENABLED": "false",
        **(extra or {}),
    }


@dataclass
class LocalCluster:
    """Handles of a running deployment: its environment, API base URL and component processes."""

    home: Path
    env: dict[str, str]
    api_url: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """`airflow <args>` against this deployment; a failure raises with the command's output."""
        proc = subprocess.run([shutil.which("airflow", path=self.env["PATH"]), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        return proc

    def tonghop(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """`tonghop <args>` with this deployment's environment (e.g. `airflow sync-pools`); output returned."""
        proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=PROJECT_ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"tonghop {' '.join(args)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        return proc

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """A call to the public REST API (`/api/v2/...`); all-admins mode, so no sign-in."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.api_url}/api/v2/{path.lstrip('/')}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"airflow {name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 120) -> None:
        """Until the DAG processor has serialised every one of `dag_ids` into the metadata DB."""
        deadline, missing = time.monotonic() + timeout, set(dag_ids)
        while missing:
            self.check_alive()
            for dag_id in sorted(missing):
                try:
                    self.api("GET", f"dags/{dag_id}/details")
                    missing.discard(dag_id)
                except (urllib.error.URLError, OSError):
                    pass
            if missing and time.monotonic() > deadline:
                raise TimeoutError(f"DAGs not parsed after {timeout:.0f} s: {sorted(missing)}\n"
                                   f"{self.log_tail('dag-processor')}")
            if missing:
                time.sleep(1)

    def trigger(self, dag_id: str, run_id: str) -> None:
        self.api("POST", f"dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None})

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_for_runs(self, runs: list[tuple[str, str]], timeout: float) -> dict[tuple[str, str], dict]:
        """Until every (dag_id, run_id) has ended; returns each run's state and start/end (from Airflow)."""
        deadline, done = time.monotonic() + timeout, {}
        while len(done) < len(runs):
            self.check_alive()
            for dag_id, run_id in runs:
                if (dag_id, run_id) in done:
                    continue
                run = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")
                if run["state"] in ("success", "failed"):
                    done[(dag_id, run_id)] = run
            if len(done) < len(runs):
                if time.monotonic() > deadline:
                    pending = [r for r in runs if r not in done]
                    raise TimeoutError(f"{len(pending)} run(s) still going after {timeout:.0f} s: {pending[:5]}\n"
                                       f"{self.log_tail('scheduler')}")
                time.sleep(1)
        return done

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        tis = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None:
                raise RuntimeError(f"airflow api-server exited with {proc.returncode}:\n"
                                   f"{log.read_text(errors='replace')[-3000:]}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer in {timeout:.0f} s") from None
            time.sleep(0.5)


def create_database(admin_dsn: str, name: str) -> str:
    """A new database on the server of `admin_dsn`; returns its DSN."""
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_dsn.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def local_cluster(home: Path, metadata_dsn: str, *, parallelism: int = 2, extra_env: dict[str, str] | None = None):
    """Migrate the metadata DB, start the three components, wait for the API; stop every component's process
    group on exit."""
    home.mkdir(parents=True, exist_ok=True)
    api_port = free_port()
    env = airflow_env(home, metadata_dsn, api_port, parallelism=parallelism, extra=extra_env)
    cluster = LocalCluster(home, env, f"http://127.0.0.1:{api_port}")
    cluster.airflow("db", "migrate", timeout=600)
    airflow = shutil.which("airflow", path=env["PATH"])
    try:
        for name in COMPONENTS:
            log = (home / f"{name}.log").open("w")
            cluster.procs[name] = subprocess.Popen([airflow, name], env=env, stdout=log, stderr=subprocess.STDOUT,
                                                   start_new_session=True, cwd=home)
        _wait_http(f"{cluster.api_url}/api/v2/monitor/health", cluster.procs["api-server"], 180,
                   home / "api-server.log")
        yield cluster
    finally:
        for proc in cluster.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in cluster.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
