"""DAG parse time for 100 tenant files: our factory (safe YAML + schema + location checks) vs a bare one.

    .venv/bin/python benchmarks/bench_dag_parse.py [--tenants 100] [--repeat 3]

Generates N realistic tenant files in a temp folder (half like the demo province: 8 sources on shared
contracts with mappings, models, a catalogue, a `<<:` merge; half like the ministry: contracts, mappings and
its own tenant SQL models), then parses, through Airflow's own `DagBag` in this process (after a warm-up
parse, median of --repeat):
  (a) bare: a DAG file that loads each tenant file with `yaml.CSafeLoader` and builds a 5-task DAG, no checks;
  (b) ours: `dags/` (one factory, `dags/tonghop.py`) reading the same folder (`TONGHOP_TENANTS_DIR`): one
      pipeline DAG (5 tasks) per tenant and a retraining DAG (2 tasks) per tenant with models, each tenant file read and checked
      once per parse;
  (c) ours with no check shared in the process (`pipelines.config._CHECKED` disabled): what Airflow's DAG
      processor pays, as it parses each DAG file in its own process;
and times `tonghop validate-config` over the N files (in process). Prints ms and the seconds ours adds over
bare (target < 1 s for 100 files). `run()` returns the figures for `make bench` (benchmarks/run_all.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from report import command_line, row  # noqa: E402

BARE_DAG = '''
import os
from pathlib import Path

import yaml
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from pendulum import datetime

for path in sorted(Path(os.environ["TONGHOP_TENANTS_DIR"]).glob("*.yaml")):
    cfg = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
    with DAG(dag_id=f"bare_{cfg['tenant_id']}", schedule=cfg.get("schedule"), start_date=datetime(2025, 1, 1),
             catchup=False, tags=["bare"]) as dag:
        previous = None
        for step in ("extract_load", "validate", "transform", "train", "publish"):
            current = EmptyOperator(task_id=step)
            if previous is not None:
                previous >> current
            previous = current
    globals()[dag.dag_id] = dag
'''


MINISTRY = "bo-khoa-hoc-cong-nghe"


def make_tenants(folder: Path, n: int) -> list[Path]:
    """Half provinces like `tenants/ninh-binh.yaml` (8 sources on shared contracts with mappings, models, a
    catalogue), half ministries like `tenants/bo-khoa-hoc-cong-nghe.yaml` (contracts, mappings and its own
    tenant models in `tenants/<tenant>/warehouse/`)."""
    import shutil

    province = (REPO / "tenants" / "ninh-binh.yaml").read_text(encoding="utf-8")
    ministry = (REPO / "tenants" / f"{MINISTRY}.yaml").read_text(encoding="utf-8")
    files = []
    for i in range(n):
        if i % 2:
            tenant = f"bo-{i:03d}"
            text = ministry.replace(f"tenant_id: {MINISTRY}", f"tenant_id: {tenant}").replace(
                '"30 1 * * *"', f'"{i % 60} 1 * * *"')
            shutil.copytree(REPO / "tenants" / MINISTRY, folder / tenant)  # its tenant models
        else:
            tenant = f"tinh-{i:03d}"
            text = province.replace("tenant_id: ninh-binh", f"tenant_id: {tenant}").replace(
                'admin_code: "37"', f'admin_code: "{10 + i % 90}"').replace('"0 2 * * *"', f'"{i % 60} 2 * * *"')
        path = folder / f"{tenant}.yaml"
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files


class _NoCache(dict):
    """Stands in for `pipelines.config._CHECKED`: every read of a tenant file checks it again, as when each
    DAG file is parsed in its own process (Airflow's DAG processor)."""

    def __setitem__(self, key, value) -> None:
        pass


def _parse(dag_folder: Path, cache: bool = True) -> tuple[float, int, int]:
    from airflow.dag_processing.dagbag import DagBag

    import pipelines.config

    # never a result left from an earlier parse: only reads within one fill may share a check
    pipelines.config._CHECKED = {} if cache else _NoCache()
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(dag_folder), safe_mode=False)
    seconds = time.perf_counter() - started
    if bag.import_errors:
        raise SystemExit(f"import errors: {bag.import_errors}")
    return seconds, len(bag.dags), sum(len(d.tasks) for d in bag.dags.values())


def run(n: int = 100, repeat: int = 3) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench_dag_parse_") as tmp:
        tmp_path = Path(tmp)
        tenants = tmp_path / "tenants"
        tenants.mkdir()
        files = make_tenants(tenants, n)
        bare = tmp_path / "bare_dags"
        bare.mkdir()
        (bare / "bare_factory.py").write_text(BARE_DAG, encoding="utf-8")
        os.environ.update(TONGHOP_TENANTS_DIR=str(tenants), AIRFLOW__CORE__LOAD_EXAMPLES="False",
                          AIRFLOW_HOME=str(tmp_path / "airflow"), TONGHOP_HOME=str(tmp_path / "home"))
        ours = REPO / "dags"
        _parse(bare), _parse(ours)  # warm-up: Airflow's and our modules imported once, as in a DAG processor
        bare_runs, our_runs, uncached_runs = [], [], []
        for _ in range(repeat):  # alternate, so drift on a shared machine hits both sides alike
            bare_runs.append(_parse(bare))
            our_runs.append(_parse(ours))
            uncached_runs.append(_parse(ours, cache=False))
        bare_s = statistics.median(r[0] for r in bare_runs)
        ours_s = statistics.median(r[0] for r in our_runs)
        uncached_s = statistics.median(r[0] for r in uncached_runs)
        _, bare_dags, bare_tasks = bare_runs[0]
        _, our_dags, our_tasks = our_runs[0]

        import pipelines.config
        from pipelines.cli import main

        validate = []
        for _ in range(repeat):
            pipelines.config._CHECKED = {}
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                code = main(["validate-config", *map(str, files)])
            validate.append(time.perf_counter() - started)
            assert code == 0, "the generated tenant files must validate"
        validate_s = statistics.median(validate)

    print(f"{n} tenant files: bare factory {bare_s * 1000:.0f} ms ({bare_dags} DAGs, {bare_tasks} tasks); "
          f"ours {ours_s * 1000:.0f} ms ({our_dags} DAGs, {our_tasks} tasks): +{ours_s - bare_s:.2f} s "
          f"(target < 1 s); ours with each DAG file checking the tenant files itself (one process per file) "
          f"{uncached_s * 1000:.0f} ms: +{uncached_s - bare_s:.2f} s; validate-config {validate_s * 1000:.0f} ms",
          flush=True)
    cmd = command_line() if __name__ == "__main__" else f".venv/bin/python benchmarks/bench_dag_parse.py --tenants {n}"
    return [
        row(f"DAG parse, {n} tenant files (DagBag)", f"bare CSafeLoader + 5-task DAG, {bare_dags} DAGs",
            round(bare_s, 3), round(ours_s, 3), "s", cmd, target="< 1 s added over bare",
            note=f"+{ours_s - bare_s:.2f} s; ours builds {our_dags} DAGs / {our_tasks} tasks, bare "
                 f"{bare_dags} / {bare_tasks}"),
        row(f"DAG parse, {n} tenant files, no shared check (a process per DAG file)",
            f"bare CSafeLoader + 5-task DAG, {bare_dags} DAGs", round(bare_s, 3), round(uncached_s, 3), "s", cmd,
            target="< 1 s added over bare", note=f"+{uncached_s - bare_s:.2f} s"),
        row(f"tonghop validate-config, {n} tenant files", f"bare DagBag parse of {n} files", round(bare_s, 3),
            round(validate_s, 3), "s", cmd, note="in process, every file fully checked"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run(args.tenants, args.repeat)
