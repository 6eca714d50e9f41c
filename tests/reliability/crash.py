"""Crash-trial harness shared by `tests/reliability/` (a few trials in CI) and `benchmarks/bench_crash.py` (≥ 30).

A *lab* is built once: the demo province's sources (v1, and v2 = v1 with a newer one-stop-shop database),
a baseline home after one full run over v1, and the reference state of an uninterrupted run over v2 on top of
the baseline (over v1 the reference is the baseline itself: a re-run over unchanged input changes no table).
Each trial copies the baseline home, runs `tonghop run` in a subprocess and breaks it — SIGKILL after a
seeded random delay inside a chosen step's measured window, an injected exception (`TONGHOP_FAULT_AFTER`),
or a second run started at the same moment — then checks the warehouse and snapshot, runs again
uninterrupted and compares every `staging`/`marts` table with the reference, table by table (row count and
an order-independent hash of the rows). Columns that legitimately differ between two runs over the same
input are left out of the hash: run and batch ids and timestamps (`VOLATILE`), and the timeliness score,
which moves with the wall clock (`VOLATILE_VALUES`).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pipelines.settings import PROJECT_ROOT

TENANT = "ninh-binh"
STEPS = ("extract_load", "validate", "transform", "train", "publish")
TONGHOP = str(PROJECT_ROOT / ".venv" / "bin" / "tonghop")
# Run/batch ids and times: differ between two runs over the same input, by design.
VOLATILE = re.compile(r"^_?(run_id|batch_id)$|_at$|^model_version$")
# The timeliness score compares the newest record with the wall-clock time of the load: it moves with the
# clock, not with the data (the other dimensions of the same table are compared).
VOLATILE_VALUES = {("marts", "chat_luong_du_lieu", "score"): "CASE WHEN dimension = 'timeliness' THEN NULL "
                                                              "ELSE score END"}
LAYERS = ("staging", "marts")


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


def snapshot_run_id(path: Path) -> str | None:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0]
    finally:
        con.close()


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


def running_step(home: Path, run_id: str) -> str | None:
    """The step a run was in according to its records: `None` between steps or after the end."""
    step = None
    for r in records(home):
        if r.get("run_id") != run_id:
            continue
        if r.get("event") == "step_start":
            step = r["step"]
        elif r.get("event") is None and "step" in r or r.get("event") == "run_end":
            step = None
    return step


def compare(state: dict, ref: dict) -> dict[str, int]:
    """Tables differing from the reference, rows missing and rows extra (by count), tables absent."""
    lost = sum(max(0, ref[t][0] - state.get(t, (0, 0))[0]) for t in ref)
    extra = sum(max(0, state[t][0] - ref.get(t, (0, 0))[0]) for t in state)
    differing = sorted(t for t in set(ref) | set(state) if state.get(t) != ref.get(t))
    return {"lost": lost, "duplicated": extra, "differing": differing}


@dataclass
class Lab:
    root: Path
    env: dict[str, str]
    base_home: Path = field(init=False)
    v2_sqlite: Path = field(init=False)
    ref: dict[str, dict] = field(default_factory=dict)        # scenario -> staging/marts state
    windows: dict[str, dict] = field(default_factory=dict)    # scenario -> step -> (start s, end s)
    base_snapshot: bytes = b""

    def build(self, sources_v1: Path) -> Lab:
        from pipelines.demo import generate

        self.base_home = self.root / "base"
        (self.base_home / TENANT / "sources").mkdir(parents=True)
        for f in sources_v1.iterdir():
            shutil.copy(f, self.base_home / TENANT / "sources" / f.name)
        v2 = self.root / "sources_v2"
        generate(v2, rows=4_500, seed=38, as_of=date(2025, 12, 1))
        self.v2_sqlite = v2 / "mot_cua.sqlite"
        proc, _ = self.timed_run(self.base_home, "base")
        assert proc.returncode == 0, proc.stderr[-2000:]
        self.base_snapshot = (self.base_home / TENANT / "serving.duckdb").read_bytes()
        self.ref["same"] = content_state(self.base_home / TENANT / "warehouse.duckdb")
        # Timings of a run over unchanged input, and the reference + timings of one over the changed source.
        for scenario in ("same", "changed"):
            home = self.trial_home(f"ref_{scenario}", changed=scenario == "changed")
            proc, self.windows[scenario] = self.timed_run(home, f"ref_{scenario}")
            assert proc.returncode == 0, proc.stderr[-2000:]
            if scenario == "changed":
                self.ref["changed"] = content_state(home / TENANT / "warehouse.duckdb")
            shutil.rmtree(home)
        return self

    def trial_home(self, name: str, changed: bool) -> Path:
        home = self.root / "trials" / name
        shutil.rmtree(home, ignore_errors=True)
        shutil.copytree(self.base_home, home)
        if changed:
            shutil.copy(self.v2_sqlite, home / TENANT / "sources" / "mot_cua.sqlite")
        return home

    def launch(self, home: Path, run_id: str, **extra_env: str) -> subprocess.Popen:
        env = {**self.env, "TONGHOP_HOME": str(home), **extra_env}
        return subprocess.Popen([TONGHOP, "run", "--tenant", TENANT, "--run-id", run_id], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def timed_run(self, home: Path, run_id: str) -> tuple[subprocess.CompletedProcess, dict]:
        """Run to the end, polling the run records: when each step started and ended (s after launch)."""
        started = time.monotonic()
        proc = self.launch(home, run_id)
        seen: dict[str, list[float]] = {}
        n_done = 0
        while proc.poll() is None:
            recs = [r for r in records(home) if r.get("run_id") == run_id]
            for r in recs[n_done:]:
                t = time.monotonic() - started
                if r.get("event") == "step_start":
                    seen[r["step"]] = [t, t]
                elif r.get("event") is None and r.get("step") in seen:
                    seen[r["step"]][1] = t
            n_done = len(recs)
            time.sleep(0.05)
        out, err = proc.communicate()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), \
            {s: tuple(v) for s, v in seen.items()}

    # --- trials -----------------------------------------------------------------------------------------

    def check_after_break(self, home: Path, scenario: str, broken_run: str) -> dict:
        """After the break: the warehouse opens, staging/marts are all old or all new, the snapshot likewise."""
        wh, snap = home / TENANT / "warehouse.duckdb", home / TENANT / "serving.duckdb"
        out = {"corrupt": 0, "partial": 0}
        try:
            state = content_state(wh)
        except Exception as exc:  # noqa: BLE001 — the measurement: a warehouse that does not open is corrupt
            return {"corrupt": 1, "partial": 0, "error": f"warehouse: {exc}"}
        if state not in (self.ref["same"], self.ref[scenario]):
            out["partial"] = 1
            out["partial_tables"] = compare(state, self.ref[scenario])["differing"]
        try:
            if snap.read_bytes() != self.base_snapshot:
                # Not the old file: then a whole new one, published by the broken run, with its content.
                if snapshot_run_id(snap) != broken_run or content_state(snap) != self.ref[scenario]:
                    out["corrupt"] = 1
                    out["error"] = "snapshot neither the old one nor the new one"
        except Exception as exc:  # noqa: BLE001
            out["corrupt"], out["error"] = 1, f"snapshot: {exc}"
        return out

    def recover_and_compare(self, home: Path, scenario: str, trial: str) -> dict:
        proc = self.launch(home, f"{trial}_next")
        out, err = proc.communicate()
        result = {"next_exit": proc.returncode, "tracebacks": err.count("Traceback") + out.count("Traceback"),
                  "next_summary": out}
        tmp_left = list((home / TENANT).glob(".serving.duckdb.*.tmp*"))
        state = content_state(home / TENANT / "warehouse.duckdb")
        cmp = compare(state, self.ref[scenario])
        snap_cmp = compare(content_state(home / TENANT / "serving.duckdb"), self.ref[scenario])
        result.update(lost=cmp["lost"] + snap_cmp["lost"], duplicated=cmp["duplicated"] + snap_cmp["duplicated"],
                      differing=cmp["differing"] + [f"snapshot:{t}" for t in snap_cmp["differing"]],
                      tmp_left=len(tmp_left))
        return result

    def kill_trial(self, name: str, step: str, rng: random.Random, changed: bool) -> dict:
        scenario = "changed" if changed else "same"
        lo, hi = self.windows[scenario][step]
        delay = rng.uniform(lo, hi)
        home = self.trial_home(name, changed)
        proc = self.launch(home, name)
        deadline = time.monotonic() + delay
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        hit = None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            hit = running_step(home, name) or "between_steps"
        else:
            hit = "completed"
        proc.communicate()
        result = {"trial": name, "kind": "kill", "scenario": scenario, "target": step, "delay": round(delay, 2),
                  "hit": hit, **self.check_after_break(home, scenario, name)}
        result.update(self.recover_and_compare(home, scenario, name))
        died = [r for r in records(home) if r.get("run_id") == name and r.get("status") == "died"]
        result["orphan_reported"] = bool(died) and f"earlier run {name}" in result["next_summary"]
        shutil.rmtree(home)
        return result

    def fault_trial(self, name: str, step: str) -> dict:
        home = self.trial_home(name, changed=True)
        proc = self.launch(home, name, TONGHOP_FAULT_AFTER=step)
        out, err = proc.communicate()
        result = {"trial": name, "kind": "exception", "scenario": "changed", "target": step, "hit": step,
                  "exit": proc.returncode, "said_failed": "FAILED" in out and f"failed at step '{step}'" in out,
                  "first_tracebacks": err.count("Traceback"), **self.check_after_break(home, "changed", name)}
        result.update(self.recover_and_compare(home, "changed", name))
        result["tracebacks"] += result.pop("first_tracebacks")
        shutil.rmtree(home)
        return result

    def overlap_trial(self, name: str) -> dict:
        home = self.trial_home(name, changed=True)
        procs = [self.launch(home, f"{name}_{i}", TONGHOP_LOCK_WAIT="0") for i in range(2)]
        outs = [p.communicate() for p in procs]
        codes = sorted(p.returncode for p in procs)
        busy = [e for (_, e), p in zip(outs, procs, strict=True) if p.returncode == 2]
        result = {"trial": name, "kind": "overlap", "scenario": "changed", "exits": codes,
                  "tracebacks": sum(o.count("Traceback") + e.count("Traceback") for o, e in outs),
                  "busy_message_ok": all(re.search(r"run \S+ of tenant 'ninh-binh' is in progress since \S+ "
                                                   r"\(pid \d+", e) for e in busy),
                  "exactly_one_ran": codes == [0, 2]}
        state = content_state(home / TENANT / "warehouse.duckdb")
        cmp = compare(state, self.ref["changed"])
        result.update(lost=cmp["lost"], duplicated=cmp["duplicated"], differing=cmp["differing"], corrupt=0)
        shutil.rmtree(home)
        return result
