"""The `opendata` publisher: each open dataset of the tenant's plan as CSV (UTF-8 with BOM), Parquet and JSON,
a Frictionless `datapackage.json` each, a DCAT-AP 3 catalogue (JSON-LD, Turtle), a report and the plan's
progress — under `<tenant data folder>/open_data/`. docs/open-data.md describes the layout and the rules.

Reads only the serving snapshot (read-only). A dataset is written only when its content (an order-independent
hash of its rows and its schema) changed since it was last published: it then gets the next version, new
files and checksums; an unchanged one keeps its version, modified date and files byte for byte. A dataset the
gate (`gate.py`) refuses is not written: its previous version stays online, except when it was refused for
personal data — then the previous files are withdrawn too. A dataset taken out of the plan is withdrawn.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import TonghopError
from pipelines.publish.base import PublishContext, PublishResult, write_if_changed
from pipelines.sqltext import quote_ident as _q
from pipelines.sqltext import quote_literal

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import OpenDataset, TenantConfig

log = logging.getLogger("tonghop.publish.opendata")
TARGET = "opendata"
FOLDER = "open_data"
FORMATS = ("csv", "parquet", "json")
STATE_FILE = "state.json"
REPORT_FILE = "publish_report.json"
PROGRESS_FILE = "progress.json"
FIRST_VERSION = "1.0.0"
_COPY_OPTIONS = {"csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet, COMPRESSION zstd",
                 "json": "FORMAT json, ARRAY true"}
BOM = "\ufeff"


class PublishError(TonghopError):
    """Open data cannot be published at all (no snapshot yet, output folder unusable)."""


@dataclass
class Prepared:
    ds: OpenDataset
    relation: str | None  # SELECT of the published columns; None when the table is not in the snapshot
    columns: dict[str, str]
    content_hash: str | None = None
    row_count: int = 0


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def next_version(version: str | None) -> str:
    if not version:
        return FIRST_VERSION
    major, minor, *_ = (version.split(".") + ["0", "0"])[:3]
    return f"{int(major)}.{int(minor) + 1}.0"


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One publication of a tenant's open data at a time (CLI and Airflow task)."""
    with open(folder / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def content_hash(con: duckdb.DuckDBPyConnection, relation: str, columns: dict[str, str]) -> tuple[str, int]:
    """Order-independent hash of the rows (DuckDB's row hash, summed) and the schema; and the row count."""
    n, total = con.execute(f"SELECT count(*), coalesce(sum(hash(x)::HUGEINT), 0) FROM ({relation}) x").fetchone()
    schema = json.dumps(list(columns.items()))
    return hashlib.sha256(f"{schema}|{n}|{total}".encode()).hexdigest(), int(n)


def copy_formats(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], folder: Path,
                 name: str, order: tuple[str, ...] = FORMATS) -> Iterator[tuple[str, Path]]:
    """The three files with DuckDB `COPY … TO`, each yielded once written. The CSV's BOM rides in its header:
    the first column is aliased '\\ufeff<name>', so DuckDB writes BOM + header + rows in one pass (names
    need no quoting)."""
    for fmt in order:
        path = folder / f"{name}.{fmt}"
        select = relation
        if fmt == "csv":
            first, rest = columns[0], columns[1:]
            select = (f"SELECT {_q(first)} AS {_q(BOM + first)}{''.join(', ' + _q(c) for c in rest)} "
                      f"FROM ({relation})")
        # a quote in the data folder's path stays a path
        con.execute(f"COPY ({select}) TO {quote_literal(path)} ({_COPY_OPTIONS[fmt]})")
        yield fmt, path


def _prepare(con: duckdb.DuckDBPyConnection, ds: OpenDataset, tables: set[str]) -> Prepared:
    if ds.table not in tables:
        return Prepared(ds, None, {})
    schema, table = ds.table.split(".")
    columns = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [schema, table]).fetchall())
    columns = {c: t for c, t in columns.items() if c not in ds.drop_columns}
    relation = f"SELECT {', '.join(_q(c) for c in columns)} FROM {schema}.{_q(table)}"
    p = Prepared(ds, relation, columns)
    p.content_hash, p.row_count = content_hash(con, relation, columns)
    return p


def _files_intact(folder: Path, entry: dict[str, Any]) -> bool:
    return all((folder / d["path"]).is_file() and (folder / d["path"]).stat().st_size == d["byte_size"]
               for d in entry.get("distributions", []))


def plan_fingerprint(cfg: TenantConfig) -> str:
    """What the gate and the metadata depend on besides the data: the plan and the personal columns."""
    from pipelines.publish.gate import personal_column_names

    text = json.dumps([cfg.open_data.model_dump(mode="json") if cfg.open_data else None,
                       sorted(personal_column_names(cfg)), cfg.display_name, cfg.display_name_en], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def read_state(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"datasets": {}, "refused": {}}


def _descriptions(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    schema, name = table.split(".")
    try:
        return dict(con.execute("SELECT column_name, column_description FROM meta.data_dictionary "
                                "WHERE table_schema = ? AND table_name = ?", [schema, name]).fetchall())
    except Exception:  # noqa: BLE001 — a snapshot without a dictionary still publishes, undescribed
        return {}


def publish(ctx: PublishContext) -> PublishResult:
    """Publish the tenant's open data (see the module docstring); never raises for one dataset's problem."""
    import duckdb

    from pipelines.publish import dcat, gate
    from pipelines.publish.frictionless_pkg import datapackage
    from pipelines.publish.plan import compute_progress, feeding_sources

    cfg, plan = ctx.tenant, ctx.tenant.open_data
    if plan is None or not plan.datasets:
        return PublishResult(TARGET, "skipped", message=f"tenant '{cfg.tenant_id}' has no open_data plan")
    if not ctx.snapshot.exists():
        raise PublishError(f"no serving snapshot at {ctx.snapshot} yet — run the pipeline first "
                           f"(tonghop run --tenant {cfg.tenant_id}); open data reads only the published snapshot")
    folder = ctx.output_root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    result = PublishResult(TARGET, "ok")
    with _locked(folder):
        state = read_state(folder)
        fingerprint = plan_fingerprint(cfg)
        con = duckdb.connect(str(ctx.snapshot), read_only=True)
        try:
            tables = {f"{s}.{t}" for s, t in con.execute(
                "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}
            prepared = [_prepare(con, ds, tables) for ds in plan.datasets]
            if ctx.only_if_changed and state.get("plan_fingerprint") == fingerprint and all(
                    (p.content_hash is not None and p.content_hash == state["datasets"].get(p.ds.id, {}).get(
                        "content_hash") and _files_intact(folder, state["datasets"][p.ds.id]))
                    or (p.content_hash is not None and p.content_hash == state["refused"].get(p.ds.id))
                    for p in prepared):
                return PublishResult(TARGET, "skipped", unchanged=[p.ds.id for p in prepared],
                                     message="nothing open changed since the last publication")
            report, new_state = _publish_datasets(con, ctx, folder, prepared, state, result, gate, feeding_sources,
                                                  datapackage)
        finally:
            con.close()
        new_state["plan_fingerprint"] = fingerprint
        # withdraw what left the plan (only folders this publisher made)
        for old in set(state["datasets"]) - {d.id for d in plan.datasets}:
            shutil.rmtree(folder / old, ignore_errors=True)
        online = [new_state["datasets"][d.id] | {"id": d.id} for d in plan.datasets if d.id in new_state["datasets"]]
        for name, data in dcat.serialise(dcat.build_catalog(cfg, online)).items():
            write_if_changed(folder / name, data)
        progress = compute_progress(plan, new_state, result.refused)
        write_if_changed(folder / PROGRESS_FILE, _json_bytes(progress))
        write_if_changed(folder / REPORT_FILE, _json_bytes({
            "tenant": cfg.tenant_id, "run_id": ctx.run_id, "published_at": _now(), "snapshot_run_id": report[1],
            "licence": plan.licence, "datasets": report[0]}))
        write_if_changed(folder / STATE_FILE, _json_bytes(new_state))
    if result.refused:
        result.message = f"{len(result.refused)} dataset(s) refused by the gate: see {folder / REPORT_FILE}"
    return result


def _publish_datasets(con, ctx: PublishContext, folder: Path, prepared: list[Prepared], state: dict[str, Any],
                      result: PublishResult, gate, feeding_sources, datapackage) -> tuple[tuple[list, str | None],
                                                                                          dict[str, Any]]:
    cfg, plan = ctx.tenant, ctx.tenant.open_data
    new_state: dict[str, Any] = {"datasets": {}, "refused": {}}
    rows: list[dict[str, Any]] = []
    try:
        snapshot_run = con.execute("SELECT run_id FROM meta.snapshot").fetchone()[0]
    except Exception:  # noqa: BLE001 — an older snapshot without meta.snapshot
        snapshot_run = None
    for p in prepared:
        ds, previous = p.ds, state["datasets"].get(p.ds.id)
        if p.relation is None:
            refusals = [gate.Refusal("missing_table", f"dataset '{ds.id}': table '{ds.table}' is not in the serving "
                                     "snapshot — run the pipeline (the model may have been skipped for lack of "
                                     "its source) or fix open_data.datasets[].table")]
        else:
            refusals = gate.check(con, cfg, plan, ds, p.relation, p.columns, feeding_sources(cfg, ds.table))
        row: dict[str, Any] = {"id": ds.id, "table": ds.table, "row_count": p.row_count}
        if refusals:
            reasons = [r.reason for r in refusals]
            result.refused[ds.id] = reasons
            if p.content_hash:
                new_state["refused"][ds.id] = p.content_hash
            withdrawn = any(r.is_personal for r in refusals) and previous is not None
            if withdrawn:
                shutil.rmtree(folder / ds.id, ignore_errors=True)
            elif previous:
                new_state["datasets"][ds.id] = previous  # the last good version stays online
            for reason in reasons:
                log.warning("open data refused: %s", reason)
            rows.append(row | {"status": "refused", "reasons": reasons, "withdrawn": withdrawn,
                               "online_version": None if withdrawn or not previous else previous["version"]})
            continue
        if previous and previous.get("content_hash") == p.content_hash and _files_intact(folder, previous):
            entry, status = previous, "unchanged"
            result.unchanged.append(ds.id)
        else:
            now = _now()
            same = previous and previous.get("content_hash") == p.content_hash  # files damaged: same version
            entry = {"table": ds.table, "content_hash": p.content_hash, "row_count": p.row_count,
                     "version": previous["version"] if same else next_version(previous and previous["version"]),
                     "issued": previous["issued"] if previous else now,
                     "modified": previous["modified"] if same else now,
                     "distributions": _write_dataset(con, folder, ds.id, p)}
            status = "published"
            result.written.append(ds.id)
        dp = datapackage(cfg, ds, entry, p.columns, _descriptions(con, ds.table))
        write_if_changed(folder / ds.id / "datapackage.json", _json_bytes(dp))
        new_state["datasets"][ds.id] = entry
        rows.append(row | {"status": status, "reasons": [], "version": entry["version"], "issued": entry["issued"],
                           "modified": entry["modified"], "distributions": entry["distributions"]})
    return (rows, snapshot_run), new_state


def _write_dataset(con, folder: Path, dataset_id: str, p: Prepared) -> list[dict[str, Any]]:
    """Write into a temporary folder, then swap it for the dataset's folder (a reader sees old or new files)."""
    tmp = folder / f".{dataset_id}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        # each file's SHA-256 is computed in a thread while DuckDB writes the next format (hashlib releases
        # the GIL); the largest files (JSON, CSV) first, so the one hashed last is the small Parquet
        with ThreadPoolExecutor(max_workers=1) as pool:
            sums = {fmt: pool.submit(sha256_file, path) for fmt, path in
                    copy_formats(con, p.relation, list(p.columns), tmp, dataset_id, order=("json", "csv", "parquet"))}
            dists = [{"format": fmt, "path": f"{dataset_id}/{dataset_id}.{fmt}",
                      "byte_size": (tmp / f"{dataset_id}.{fmt}").stat().st_size, "sha256": sums[fmt].result()}
                     for fmt in FORMATS]
        target = folder / dataset_id
        old = folder / f".{dataset_id}.{os.getpid()}.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            # keep datapackage.json's mtime if it will not change: it is rewritten only when different
            os.replace(target, old)
            if (old / "datapackage.json").exists():
                os.replace(old / "datapackage.json", tmp / "datapackage.json")
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dists


def publish_open_data(tenant_id: str, run_id: str | None = None, only_if_changed: bool = False) -> PublishResult:
    """The entry the DAG's `open_data` task and `tonghop publish --target opendata` call."""
    from pipelines.config import load_tenant

    cfg = load_tenant(tenant_id)
    run_id = run_id or f"publish__{datetime.now(UTC):%Y%m%dT%H%M%S}"
    return publish(PublishContext.for_tenant(cfg, run_id, only_if_changed=only_if_changed))


def run_open_data_task(tenant_id: str, run_id: str) -> dict[str, Any]:
    """The DAG's `open_data` task: the open-data files (only if an open dataset's content or the plan changed),
    then the database catalogue, then the CKAN push when the plan names a portal (which also retries a push
    that failed earlier: `ckan.pending`). The open-data files failing fails the task with one line naming the
    tenant; a portal that cannot be reached does not — the local publication stands, the failure is logged
    and recorded as pending, and the next run pushes again. Returns plain values (XCom)."""
    from pipelines.config import load_tenant
    from pipelines.publish import publisher
    from pipelines.redact import install_log_redaction

    install_log_redaction()
    result = publish_open_data(tenant_id, run_id, only_if_changed=True)
    log.info("[%s] %s", tenant_id, result.summary())
    if result.status == "failed":
        raise PublishError(f"tenant '{tenant_id}': open data not published: {result.message}")
    out: dict[str, Any] = {"status": result.status, "message": result.message, "n_written": len(result.written),
                           "n_unchanged": len(result.unchanged), "n_refused": len(result.refused)}
    ctx = PublishContext.for_tenant(load_tenant(tenant_id), run_id, only_if_changed=True)
    for target in ("catalogue", "ckan"):
        other = publisher(target)(ctx)
        (log.error if other.status == "failed" else log.info)("[%s] %s", tenant_id, other.summary())
        out[f"{target}_status"] = other.status
    return out
