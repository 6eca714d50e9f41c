"""Crash-trial harness shared by `tests/reliability/` (a few trials in CI) and `benchmarks/bench_crash.py` (≥ 30).

A *lab* is built once: the demo province's sources (v1, and v2 = v1 with a newer one-stop-shop database),
a baseline home after one full run over v1, and the reference state of an uninterrupted run over v2 on top of
the baseline, with each step's duration in that run (from its `runs.jsonl` records). Over v1 the reference
is the baseline itself (a re-run over unchanged input changes no table); the benchmark measures it by a run.
Reference and recovery runs run in this process (`run_inproc`); what must be killed or must overlap runs as
`tonghop run` (`pipelines.cli.main`) in a process of its own, forked from a fork server that has the heavy modules
imported already (`PRELOAD`), so a trial does not pay 20 s of imports; the Airflow task is a plain subprocess.

Each trial copies the baseline home and breaks a run:

- **kill** — `tonghop run` in a subprocess; the harness watches its run records for the *target step's*
  `step_start`, waits a seeded random delay within that step's typical duration, stops the process group
  (SIGSTOP), reads which step is running from the records (exact: the process cannot write while stopped),
  then SIGKILLs it. The step actually hit is recorded (it can differ from the target when the step ended early).
- **exception** — `TONGHOP_FAULT_AFTER=<step>` makes the step raise after its work (in process).
- **overlap** — two `tonghop run` started at the same instant (one must exit 2 naming the other), and
  optionally an Airflow task step (`run_task_step`) in a third process (it waits for the CLI run's lock).
- **retry** — every Airflow task of a DAG run run twice with the same run id (in process).

After the break, `check_after_break` checks exactly these invariants:

a. the warehouse opens;
b. no partial batch is visible in `staging`/`marts`: every table there holds either the old (baseline) rows or
   the new (reference) rows, never a mix — tables are compared one by one, since a kill during `train`
   legitimately leaves the new transform tables next to the previous run's model-output marts (see
   `pipelines.runcontrol`, "The transform/train window"); and the batches they are built from are whole: each
   batch of `meta.loads` holds exactly its `n_rows_loaded` rows in `raw` (none once abandoned) and no raw row
   belongs to a batch `meta.loads` does not know (`batch_problems`);
c. the snapshot is entirely the old one (same file hash as the baseline's) or entirely the new one (the broken
   run's `meta.snapshot` run id, every table equal to the reference);

then the next good run (in process) must end OK with exactly the rows of an uninterrupted run, table by table,
in the warehouse and the snapshot (d), and leave no temp snapshot file. Tables are compared by row count and
an order-independent hash of the rows; columns that legitimately differ between two runs over the same input
are left out of the hash: run and batch ids and timestamps (`VOLATILE`), and the timeliness score, which
moves with the wall clock (`VOLATILE_VALUES`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipelines.settings import PROJECT_ROOT

TENANT = "ninh-binh"
STEPS = ("extract_load", "validate", "transform", "train", "publish")
TONGHOP = str(PROJECT_ROOT / ".venv" / "bin" / "tonghop")
LAB_ROWS = 1_000  # dossiers in the lab's demo sources: enough for every model's floor, cheap to run
# Run/batch ids and times: differ between two runs over the same input, by design.
VOLATILE = re.compile(r"^_?(run_id|batch_id)$|_at$|^model_version$")
# The timeliness score compares the newest record with the wall-clock time of the load: it moves with the
# clock, not with the data (the other dimensions of the same table are compared).
VOLATILE_VALUES = {("marts", "chat_luong_du_lieu", "score"): "CASE WHEN dimension = 'timeliness' THEN NULL "
                                                              "ELSE score END"}
LAYERS = ("staging", "marts")
# Imported once by the fork server, so that a killed run starts as fast as a warm one (no 20 s of imports of
# Great Expectations, scikit-learn, pandas… in every trial); each run then starts in a fresh forked process.
PRELOAD = ["pandas", "polars", "pyarrow", "duckdb", "great_expectations", "sklearn.ensemble", "sklearn.calibration",
           "sklearn.metrics", "skops.io", "scipy.optimize", "pipelines.cli", "pipelines.runner", "pipelines.steps",
           "pipelines.load", "pipelines.quality.suites", "pipelines.quality.promotion", "pipelines.contracts",
           "pipelines.dictionary", "pipelines.tenant_models", "models", "models.inflow_forecast",
           "models.overdue_risk", "models.staffing", "models.anomalies"]
_FORKSERVER = None
BUSY = re.compile(r"run \S+ of tenant 'ninh-binh' is in progress since \S+ \(pid \d+ on \S+\)")


def content_state(path: Path, schemas: tuple[str, ...] = LAYERS) -> dict[str, tuple[int, int]]:
    """Every table of `schemas` as (row count, order-independent hash of its non-volatile columns)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = "
                             f"'BASE TABLE' AND table_schema IN ({', '.join(repr(s) for s in schemas)}) "
                             "ORDER BY 1, 2").fetchall()
        out = {}
        for s, t in tables:
            cols = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns WHERE "
                                              "table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                                              [s, t]).fetchall() if not VOLATILE.search(c)]
            sel = ", ".join(VOLATILE_VALUES.get((s, t, c), f'"{c}"') for c in cols) or "1"
            out[f"{s}.{t}"] = tuple(int(v) for v in con.execute(
                f'SELECT count(*), coalesce(sum(hash(x)), 0) FROM (SELECT {sel} FROM {s}."{t}") x').fetchone())
        return out
    finally:
        con.close()


def batch_problems(path: Path) -> list[str]:
    """Batches not whole in `raw`: every batch of `meta.loads` holds exactly its `n_rows_loaded` rows (none once
    `abandoned`), and no raw row belongs to a batch `meta.loads` does not know (a torn load)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        sources = [s for (s,) in con.execute("SELECT DISTINCT source FROM meta.loads ORDER BY 1").fetchall()]
        raw = {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = 'raw'").fetchall()}
        bad = []
        for src in sources:
            counts = dict(con.execute(f'SELECT _batch_id, count(*) FROM raw."{src}" GROUP BY 1').fetchall()) \
                if src in raw else {}
            loads = con.execute("SELECT batch_id, status, coalesce(n_rows_loaded, 0) FROM meta.loads "
                                "WHERE source = ?", [src]).fetchall()
            for batch, status, n in loads:
                want = 0 if status == "abandoned" else n
                if counts.pop(batch, 0) != want:
                    bad.append(f"raw.{src}: batch {batch} ({status}) not whole")
            bad += [f"raw.{src}: {n} row(s) of batch {b} unknown to meta.loads" for b, n in counts.items()]
        return bad
    finally:
        con.close()


def snapshot_run_id(path: Path) -> str | None:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0]
    finally:
        con.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def records(home: Path) -> list[dict]:
    log = home / TENANT / "runs.jsonl"
    out = []
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def running_step(recs: list[dict], run_id: str) -> str | None:
    """The step a run is in according to its records: `None` before the first, between steps or after the end."""
    step = None
    for r in recs:
        if r.get("run_id") != run_id:
            continue
        if r.get("event") == "step_start":
            step = r["step"]
        elif (r.get("event") is None and "step" in r) or r.get("event") == "run_end":
            step = None
    return step


def steps_started(recs: list[dict], run_id: str) -> list[str]:
    return [r["step"] for r in recs if r.get("run_id") == run_id and r.get("event") == "step_start"]


def step_seconds(recs: list[dict], run_id: str) -> dict[str, float]:
    """Each step's duration in a finished run, from its step lines."""
    return {r["step"]: float(r["seconds"]) for r in recs if r.get("run_id") == run_id and r.get("event") is None
            and r.get("status") == "success"}


def compare(state: dict, ref: dict) -> dict:
    """Tables differing from the reference, rows missing and rows extra (by count)."""
    lost = sum(max(0, ref[t][0] - state.get(t, (0, 0))[0]) for t in ref)
    extra = sum(max(0, state[t][0] - ref.get(t, (0, 0))[0]) for t in state)
    differing = sorted(t for t in set(ref) | set(state) if state.get(t) != ref.get(t))
    return {"lost": lost, "duplicated": extra, "differing": differing}


def forkserver():  # noqa: ANN201 — a multiprocessing context
    """The fork server every trial's `tonghop run` is forked from (started on first use, modules preloaded)."""
    import multiprocessing

    global _FORKSERVER
    if _FORKSERVER is None:
        _FORKSERVER = multiprocessing.get_context("forkserver")
        _FORKSERVER.set_forkserver_preload(PRELOAD)
    return _FORKSERVER


def cli_process(argv: list[str], env: dict[str, str], out: str, err: str) -> None:
    """`tonghop <argv>` in a forked process: its own session (killed as a group), stdout/stderr to files."""
    os.setsid()
    os.environ.update(env)
    for fd, path in ((1, out), (2, err)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(f, fd)
        os.close(f)
    from pipelines.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 — printed as the console script would, then counted by the trial
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def environ(env: dict[str, str]) -> Iterator[None]:
    """`os.environ` updated for an in-process run, restored afterwards."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class _Forked:
    """A forked run with `subprocess.Popen`'s `pid`, `poll()`, `wait()` and `returncode` (-9: SIGKILLed)."""

    process: object

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self) -> int:
        self.process.join()
        return self.process.exitcode


@dataclass
class Lab:
    root: Path
    env: dict[str, str]          # the demo portals' port and token, the PII key, … (no TONGHOP_HOME)
    rows: int = LAB_ROWS
    base_home: Path = field(init=False)
    v2_sqlite: Path = field(init=False)
    base_state: dict = field(default_factory=dict)            # staging/marts after the baseline run
    ref: dict[str, dict] = field(default_factory=dict)        # scenario -> staging/marts state of a good run
    seconds: dict[str, dict] = field(default_factory=dict)    # scenario -> step -> duration in a good run (s)
    base_snapshot: str = ""                                   # sha256 of the baseline's snapshot file

    def build(self, sources_v1: Path | None = None, measure_same: bool = False) -> Lab:
        from pipelines.demo import generate

        if sources_v1 is None:
            sources_v1 = self.root / "sources_v1"
            generate(sources_v1, rows=self.rows, seed=37)
        self.base_home = self.root / "base"
        (self.base_home / TENANT / "sources").mkdir(parents=True)
        for f in sources_v1.iterdir():
            shutil.copy(f, self.base_home / TENANT / "sources" / f.name)
        v2 = self.root / "sources_v2"
        generate(v2, rows=self.rows * 3 // 2, seed=38, as_of=date(2025, 12, 1))
        self.v2_sqlite = v2 / "mot_cua.sqlite"
        base = self.run_inproc(self.base_home, "base")
        assert base["ok"], base["summary"]
        self.base_snapshot = digest(self.base_home / TENANT / "serving.duckdb")
        self.base_state = content_state(self.base_home / TENANT / "warehouse.duckdb")
        self.ref["same"] = self.base_state
        for scenario in ("changed", "same") if measure_same else ("changed",):
            home = self.trial_home(f"ref_{scenario}", changed=scenario == "changed")
            good = self.run_inproc(home, f"ref_{scenario}")
            assert good["ok"], good["summary"]
            self.seconds[scenario] = step_seconds(records(home), f"ref_{scenario}")
            self.ref[scenario] = content_state(home / TENANT / "warehouse.duckdb")
            shutil.rmtree(home)
        self.seconds.setdefault("same", self.seconds["changed"])
        return self

    def trial_home(self, name: str, changed: bool) -> Path:
        home = self.root / "trials" / name
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(self.base_home, home)
        if changed:
            shutil.copy(self.v2_sqlite, home / TENANT / "sources" / "mot_cua.sqlite")
        return home

    # --- running ----------------------------------------------------------------------------------------

    def run_inproc(self, home: Path, run_id: str, **extra_env: str) -> dict:
        """`tonghop run` in this process: ok, summary, and the traceback count (an escaping exception is one)."""
        from pipelines.runner import run

        with environ({**self.env, "TONGHOP_HOME": str(home), **extra_env}):
            try:
                report = run(TENANT, run_id=run_id, wait=0)
            except Exception:  # noqa: BLE001 — the measurement: an exception escaping the runner is a traceback
                return {"ok": False, "summary": traceback.format_exc(), "tracebacks": 1}
        return {"ok": report.ok, "summary": report.summary(), "tracebacks": 0}

    def launch(self, home: Path, run_id: str, argv: list[str] | None = None, **extra_env: str):  # noqa: ANN201
        """`tonghop run` forked from the fork server (or `argv`, a subprocess) in its own process group,
        stdout/stderr to files beside the trial home. Returns an object with `pid`, `poll()` and `wait()`."""
        env = {**self.env, "TONGHOP_HOME": str(home), **extra_env}
        out, err = (str(home.parent / f"{run_id}.{k}") for k in ("out", "err"))
        if argv is None:
            proc = forkserver().Process(target=cli_process, args=(["run", "--tenant", TENANT, "--run-id", run_id],
                                                                  env, out, err), daemon=False)
            # multiprocessing re-runs `__main__` from its file in the child; after a Streamlit AppTest in the
            # same pytest session `__main__` is an app page (its script runner swaps it in), which then runs
            # in the child and fails it. The child needs no main module: hide it while starting.
            main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                proc.start()
            finally:
                sys.modules["__main__"] = main
            return _Forked(proc)
        with open(out, "w") as fo, open(err, "w") as fe:
            return subprocess.Popen(argv, env={**os.environ, **env}, stdout=fo, stderr=fe, text=True,
                                    start_new_session=True)

    @staticmethod
    def output(home: Path, run_id: str) -> tuple[str, str]:
        files = [home.parent / f"{run_id}.{k}" for k in ("out", "err")]
        return tuple(f.read_text(encoding="utf-8", errors="replace") if f.exists() else "" for f in files)

    # --- checks -----------------------------------------------------------------------------------------

    def check_after_break(self, home: Path, scenario: str, broken_run: str) -> dict:
        """Invariants (a)–(c) of the module docstring, right after the break, before anything else runs."""
        wh, snap = home / TENANT / "warehouse.duckdb", home / TENANT / "serving.duckdb"
        out: dict = {"corrupt": 0, "partial": 0}
        try:
            state = content_state(wh)
            torn = batch_problems(wh)
        except Exception as exc:  # noqa: BLE001 — the measurement: a warehouse that does not open is corrupt
            return {"corrupt": 1, "partial": 0, "error": f"warehouse: {exc}"}
        old, new = self.base_state, self.ref[scenario]
        mixed = sorted(t for t in set(old) | set(new) | set(state) if state.get(t) not in (old.get(t), new.get(t)))
        if mixed or torn:
            out["partial"] = 1
            out["partial_tables"] = mixed + torn
        try:
            if digest(snap) != self.base_snapshot:
                # Not the old file: then a whole new one, published by the broken run, with its content.
                if snapshot_run_id(snap) != broken_run or content_state(snap) != new:
                    out["corrupt"] = 1
                    out["error"] = "snapshot neither the old one nor the new one"
                else:
                    out["snapshot"] = "new"
            else:
                out["snapshot"] = "old"
        except Exception as exc:  # noqa: BLE001
            out["corrupt"], out["error"] = 1, f"snapshot: {exc}"
        return out

    def recover_and_compare(self, home: Path, scenario: str, trial: str) -> dict:
        """(d): the next good run (in process) ends OK with exactly the reference rows, table by table."""
        nxt = self.run_inproc(home, f"{trial}_next")
        result = {"next_ok": nxt["ok"], "tracebacks": nxt["tracebacks"], "next_summary": nxt["summary"]}
        tmp_left = list((home / TENANT).glob(".serving.duckdb.*.tmp*"))
        cmp = compare(content_state(home / TENANT / "warehouse.duckdb"), self.ref[scenario])
        snap_cmp = compare(content_state(home / TENANT / "serving.duckdb"), self.ref[scenario])
        result.update(lost=cmp["lost"] + snap_cmp["lost"], duplicated=cmp["duplicated"] + snap_cmp["duplicated"],
                      differing=cmp["differing"] + [f"snapshot:{t}" for t in snap_cmp["differing"]],
                      tmp_left=len(tmp_left))
        return result

    # --- trials -----------------------------------------------------------------------------------------

    def kill_trial(self, name: str, step: str, rng: random.Random, changed: bool,
                   within: tuple[float, float] = (0.02, 0.9)) -> dict:
        """SIGKILL `tonghop run` a seeded random delay after `step` started (a fraction `within` of its time)."""
        scenario = "changed" if changed else "same"
        delay = rng.uniform(*within) * self.seconds[scenario].get(step, 0.5)
        home = self.trial_home(name, changed)
        proc = self.launch(home, name)
        # Wait for the target step to start (or for the run to get past it / end).
        while proc.poll() is None:
            started = steps_started(records(home), name)
            if step in started or (started and STEPS.index(started[-1]) > STEPS.index(step)):
                break
            time.sleep(0.01)
        deadline = time.monotonic() + delay
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGSTOP)  # frozen: its records cannot move while we read them
            recs = records(home)
            hit = running_step(recs, name) or ("before_start" if not steps_started(recs, name) else "between_steps")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        else:
            hit = "completed"  # ended (or failed to start) before the target step: its stderr says why
        result = {"trial": name, "kind": "kill", "scenario": scenario, "target": step, "delay": round(delay, 2),
                  "hit": hit, "killed_exit": proc.returncode, **self.check_after_break(home, scenario, name)}
        if hit == "completed":
            result["error"] = self.output(home, name)[1].strip().splitlines()[-1:]
        result.update(self.recover_and_compare(home, scenario, name))
        died = [r for r in records(home) if r.get("run_id") == name and r.get("status") == "died"]
        result["orphan_reported"] = bool(died) and f"earlier run {name}" in result["next_summary"]
        shutil.rmtree(home)
        return result

    def fault_trial(self, name: str, step: str) -> dict:
        """The step raises after its work (`TONGHOP_FAULT_AFTER`), in process; then the next run recovers."""
        from pipelines.steps import FAULT_ENV

        home = self.trial_home(name, changed=True)
        broken = self.run_inproc(home, name, **{FAULT_ENV: step})
        os.environ.pop(FAULT_ENV, None)
        result = {"trial": name, "kind": "exception", "scenario": "changed", "target": step, "hit": step,
                  "broken_ok": broken["ok"], "broken_summary": broken["summary"],
                  "said_failed": "FAILED" in broken["summary"] and f"failed at step '{step}'" in broken["summary"],
                  "first_tracebacks": broken["tracebacks"], **self.check_after_break(home, "changed", name)}
        result.update(self.recover_and_compare(home, "changed", name))
        result["tracebacks"] += result.pop("first_tracebacks")
        shutil.rmtree(home)
        return result

    def overlap_trial(self, name: str, airflow_step: str | None = None) -> dict:
        """Two `tonghop run` started at the same instant (no wait): one runs, the other exits 2 naming it.

        With `airflow_step`, an Airflow task of another DAG run (`run_task_step` in its own process, waiting
        for the lock as Airflow tasks do) is started as soon as one CLI run has started: it must wait for that
        run's end, then run its step (the run records show the two never overlapped).
        """
        home = self.trial_home(name, changed=True)
        procs = [self.launch(home, f"{name}_{i}", TONGHOP_LOCK_WAIT="0") for i in range(2)]
        task = None
        dag_run = f"scheduled__{name}"
        if airflow_step:
            while any(p.poll() is None for p in procs) and not any(
                    r.get("event") == "run_start" for r in records(home)):
                time.sleep(0.01)
            code = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr); "
                    "from pipelines.airflow_task import run_task_step; "
                    f"print(run_task_step({TENANT!r}, {airflow_step!r}, {dag_run!r}))")
            task = self.launch(home, dag_run, [sys.executable, "-c", code], TONGHOP_LOCK_WAIT="600")
        codes = [p.wait() for p in procs]
        outs = [self.output(home, f"{name}_{i}") for i in range(2)]
        busy = [e for (_, e), c in zip(outs, codes, strict=True) if c == 2]
        result = {"trial": name, "kind": "overlap", "scenario": "changed", "exits": sorted(codes),
                  "busy_message_ok": len(busy) == 1 and all(BUSY.search(e) for e in busy),
                  "exactly_one_ran": sorted(codes) == [0, 2]}
        if task is not None:
            result["with"] = f"airflow {airflow_step}"
            result["task_exit"] = task.wait()
            outs.append(self.output(home, dag_run))
            order = [(r.get("run_id"), r.get("event")) for r in records(home)]
            winner = f"{name}_{codes.index(0)}" if 0 in codes else None
            end = order.index((winner, "run_end")) if (winner, "run_end") in order else len(order)
            start = order.index((dag_run, "step_start")) if (dag_run, "step_start") in order else -1
            result["task_waited"] = "waiting up to" in outs[-1][1] and bool(BUSY.search(outs[-1][1]))
            result["exactly_one_ran"] &= result["task_exit"] == 0 and end < start
            result["busy_message_ok"] &= result["task_waited"]
        result["tracebacks"] = sum(o.count("Traceback") + e.count("Traceback") for o, e in outs)
        cmp = compare(content_state(home / TENANT / "warehouse.duckdb"), self.ref["changed"])
        result.update(lost=cmp["lost"], duplicated=cmp["duplicated"], differing=cmp["differing"], corrupt=0)
        shutil.rmtree(home)
        return result

    def retry_trial(self, name: str) -> dict:
        """Every task of one Airflow DAG run run twice with the same run id (a retry), in process."""
        from pipelines.airflow_task import run_task_step

        home = self.trial_home(name, changed=True)
        run_id = f"scheduled__{name}"
        same_metrics, tracebacks = True, 0
        with environ({**self.env, "TONGHOP_HOME": str(home)}):
            try:
                for step in STEPS:
                    first = run_task_step(TENANT, step, run_id)
                    again = run_task_step(TENANT, step, run_id)
                    same_metrics &= set(first) == set(again)
            except Exception:  # noqa: BLE001 — counted, reported with the trial
                tracebacks = 1
                summary = traceback.format_exc()
            else:
                summary = "ok"
        ends = [r.get("status") for r in records(home) if r.get("run_id") == run_id and r.get("event") == "run_end"]
        result = {"trial": name, "kind": "retry", "scenario": "changed", "tracebacks": tracebacks,
                  "summary": summary, "same_metrics": same_metrics, "run_end": ends[-1] if ends else None,
                  "corrupt": 0}
        cmp = compare(content_state(home / TENANT / "warehouse.duckdb"), self.ref["changed"])
        snap_cmp = compare(content_state(home / TENANT / "serving.duckdb"), self.ref["changed"])
        result.update(lost=cmp["lost"] + snap_cmp["lost"], duplicated=cmp["duplicated"] + snap_cmp["duplicated"],
                      differing=cmp["differing"] + [f"snapshot:{t}" for t in snap_cmp["differing"]])
        shutil.rmtree(home)
        return result
