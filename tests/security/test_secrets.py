"""Secrets are never printed or stored: known secrets are injected (database passwords in every DSN form, an
API token, the pseudonymisation key, an inline password in a tenant file) and every output is searched for
them — `tonghop` stdout/stderr, runs.jsonl, every meta table of the warehouse, every table of the published
snapshot, and a real `airflow dags test` run's stdout/stderr, task logs and metadata database (rendered
fields, XCom, task instance notes all live there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.conftest import DEMO_LGSP_TOKEN, DEMO_TENANT, project_path
from tests.test_dags import AIRFLOW_ENV

PII_KEY = "pii-key-5ecret-" + "7f3a9c" * 6
# env var → (connection string, the secret parts that must never appear). Hosts are unreachable (port 1) or
# the string is malformed, so every one of them ends up in a driver's error message.
DSNS = {
    "NB_DSN_URL": ("postgresql://nb_user:S3cr@t:Pa55!word@127.0.0.1:1/motcua", ["S3cr@t:Pa55!word"]),
    "NB_DSN_PCT": ("postgresql://nb_user:Pct%40Secr%3At9x@127.0.0.1:1/motcua", ["Pct%40Secr%3At9x", "Pct@Secr:t9x"]),
    "NB_DSN_KV1": ("host=127.0.0.1 port=1 user=nb password='kv single quoted s3cret' dbname=m",
                   ["kv single quoted s3cret"]),
    "NB_DSN_KV2": ('host=127.0.0.1 port=1 user=nb password="kv double quoted s3cret" dbname=m',
                   ["kv double quoted s3cret"]),
    "NB_DSN_JDBC": ("jdbc:postgresql://127.0.0.1:1/m;user=nb;password=jdbc s3cret pw;ssl=false",
                    ["jdbc s3cret pw"]),
    "NB_DSN_ODBC": ("Driver={PostgreSQL};Server=127.0.0.1;Port=1;Uid=nb;Pwd={odbc;s3cret}}pw};",
                    ["odbc;s3cret}}pw", "odbc;s3cret}pw"]),
    # a variable whose name does not say "secret": masked because the source names it in connection.env
    "NB_MOTCUA_CONN": ("postgresql://nb_user:plainName5ecret@127.0.0.1:1/motcua", ["plainName5ecret"]),
}
INLINE = "InlinePassw0rd-in-yaml"
SECRETS = sorted({s for _, parts in DSNS.values() for s in parts} | {PII_KEY, DEMO_LGSP_TOKEN, INLINE})


def _tenant_dir(tmp_path: Path) -> Path:
    data = yaml.safe_load(project_path("tenants", f"{DEMO_TENANT}.yaml").read_text(encoding="utf-8"))
    for i, env in enumerate(DSNS):
        data["sources"].append({"name": f"csdl_{i}", "kind": "postgres", "connection": {"env": env},
                                "options": {"table": "public.ho_so"}, "primary_key": ["ma"],
                                "on_error": "skip_source"})
    tenants = tmp_path / "tenants"
    tenants.mkdir()
    (tenants / f"{DEMO_TENANT}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    bad = dict(data, tenant_id="ha-nam")
    bad["sources"] = [*data["sources"][:1], {**data["sources"][0], "name": "inline",
                                              "location": f"postgresql://u:{INLINE}@h/db"}]
    (tmp_path / "ha-nam.yaml").write_text(yaml.safe_dump(bad, allow_unicode=True), encoding="utf-8")
    return tenants


def _found(text: str | bytes, where: str, hits: list[str]) -> None:
    for secret in SECRETS:
        if (secret.encode() if isinstance(text, bytes) else secret) in text:
            hits.append(f"{secret!r} in {where}")


def _tables(db: Path, schemas: tuple[str, ...] | None) -> dict[str, str]:
    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
        for schema, table in tables:
            if schemas is None or schema in schemas:
                out[f"{db.name}:{schema}.{table}"] = repr(con.execute(f'SELECT * FROM {schema}."{table}"').fetchall())
    return out


@pytest.mark.airflow
def test_injected_secrets_are_found_nowhere(tmp_path, airflow_home, demo_tenant, _isolated_home, monkeypatch):
    tenants = _tenant_dir(tmp_path)
    env = {**os.environ, "TONGHOP_TENANTS_DIR": str(tenants), "TONGHOP_PII_KEY": PII_KEY,
           **{k: v for k, (v, _) in DSNS.items()},
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    hits: list[str] = []
    outputs: dict[str, str] = {}

    # 1. the CLI: a run whose seven database sources fail with their DSNs in the drivers' messages
    cli = [sys.executable, "-m", "pipelines.cli"]
    run = subprocess.run([*cli, "run", "--tenant", DEMO_TENANT], env=env, capture_output=True, text=True, timeout=900)
    outputs["tonghop run"] = run.stdout + run.stderr
    assert run.returncode == 0, outputs["tonghop run"][-3000:]
    check = subprocess.run([*cli, "validate-config", str(tmp_path / "ha-nam.yaml"), str(tenants / "ninh-binh.yaml")],
                           env=env, capture_output=True, text=True, timeout=120)
    outputs["tonghop validate-config"] = check.stdout + check.stderr
    assert check.returncode == 2 and "connection: {env: VAR}" in check.stderr, outputs["tonghop validate-config"]

    # 2. a real Airflow run of the same tenant: stdout/stderr, task logs, metadata DB (rendered fields, XCom)
    home = airflow_home
    aenv = {**env, **AIRFLOW_ENV, "AIRFLOW_HOME": str(home)}
    airflow = shutil.which("airflow", path=aenv["PATH"])
    subprocess.run([airflow, "pools", "set", "warehouse_ninh_binh", "1", "test"], env=aenv, check=True,
                   capture_output=True, timeout=120)
    dag = subprocess.run([airflow, "dags", "test", f"tonghop_{DEMO_TENANT}"], env=aenv, capture_output=True,
                         text=True, timeout=900)
    outputs["airflow dags test"] = dag.stdout + dag.stderr
    assert dag.returncode == 0, outputs["airflow dags test"][-3000:]

    for where, text in outputs.items():
        _found(text, where, hits)
    paths = _isolated_home / DEMO_TENANT
    run_log = paths / "runs.jsonl"
    _found(run_log.read_text(encoding="utf-8"), "runs.jsonl", hits)
    stored = {**_tables(paths / "warehouse.duckdb", ("meta",)), **_tables(paths / "serving.duckdb", None)}
    for where, text in stored.items():
        _found(text, where, hits)
    n_files = 0
    for f in home.rglob("*"):
        if f.is_file():
            n_files += 1
            _found(f.read_bytes(), str(f.relative_to(home)), hits)

    print(f"hits: {hits}")
    # The secrets really went through the error paths (a test that cannot fail proves nothing): every database
    # source was skipped with its driver's message, which was recorded (run log, meta tables, CLI output) masked.
    everything = "\n".join([run_log.read_text(encoding="utf-8"), *stored.values(), *outputs.values()])
    assert all(f"csdl_{i}" in everything for i in range(len(DSNS)))
    assert "***" in everything
    # `airflow dags test` runs the tasks in process: their logs are its output; rendered fields are in its DB
    assert "csdl_0" in outputs["airflow dags test"] and "tonghop.load" in outputs["airflow dags test"]
    import sqlite3

    with sqlite3.connect(home / "airflow.db") as db:
        assert db.execute("SELECT count(*) FROM rendered_task_instance_fields").fetchone()[0] >= 5
    print(f"secrets injected: {len(SECRETS)}; outputs searched: {len(outputs)} command outputs, runs.jsonl, "
          f"{len(stored)} tables, {n_files} Airflow files; found: {len(hits)}")
    assert hits == [], hits
