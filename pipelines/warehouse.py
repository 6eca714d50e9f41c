"""The tenant warehouse: one DuckDB file, layers as schemas, SQL transforms from `warehouse/*.sql`.

Only pipeline steps open `warehouse.duckdb`, one at a time (an Airflow pool of one slot per tenant).
Readers never touch it: `publish_snapshot` writes `serving.duckdb` next to it, atomically.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.settings import WAREHOUSE_SQL_DIR

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import TenantConfig

# Layers copied into the serving snapshot. `raw` stays behind: it is the only layer holding personal data.
SERVING_SCHEMAS = ("staging", "marts", "meta")
# Pipeline bookkeeping that readers have no use for and that names server paths: never published.
UNPUBLISHED_TABLES = {("meta", "file_fingerprints"), ("meta", "build_state"), ("meta", "source_probes")}
PII_KEY_ENV = "TONGHOP_PII_KEY"


@contextmanager
def connect(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to a warehouse file, with the meta schema in place, closed on exit."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        # At a terminal, DuckDB's own progress bar shows how far a long load or transform has got.
        con.execute(f"SET enable_progress_bar = {str(sys.stderr.isatty()).lower()}")
        for setting, value in duckdb_limits().items():  # a tenant's run stays within its memory budget
            con.execute(f"SET {setting} = '{value}'")
        con.execute((WAREHOUSE_SQL_DIR / "meta" / "schema.sql").read_text(encoding="utf-8"))
        yield con
    finally:
        con.close()


MEMORY_ENV, THREADS_ENV = "TONGHOP_DUCKDB_MEMORY", "TONGHOP_DUCKDB_THREADS"
DEFAULT_MEMORY = "2GB"  # DuckDB's share of a tenant's 4 GB: beyond it, joins and windows spill to <warehouse>.tmp/
_SIZE = re.compile(r"[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def duckdb_limits() -> dict[str, str]:
    """DuckDB's memory limit and threads for pipeline steps: `TONGHOP_DUCKDB_MEMORY` (default 2GB; DuckDB's
    own default is 80 % of the machine's RAM) and `TONGHOP_DUCKDB_THREADS` (default: one per core)."""
    from pipelines.errors import ConfigError

    memory = os.environ.get(MEMORY_ENV, DEFAULT_MEMORY).strip()
    if not _SIZE.fullmatch(memory):
        raise ConfigError(f"{MEMORY_ENV}={memory!r} is not a size — set it like 2GB or 1500MB")
    out = {"memory_limit": memory}
    threads = os.environ.get(THREADS_ENV, "").strip()
    if threads:
        if not threads.isdigit() or int(threads) < 1:
            raise ConfigError(f"{THREADS_ENV}={threads!r} is not a number of threads — set it like 2")
        out["threads"] = threads
    return out


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a step's data and its meta rows commit together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def now() -> datetime:
    return datetime.now(UTC)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table]).fetchall()[0][0])


def columns_of(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
    return dict(rows)


# --- SQL models -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SqlModel:
    """One `<layer>/<name>.sql` file: a SELECT that becomes table `<layer>.<name>`, its `.yml` doc beside it.

    A core model lives in `warehouse/`; a tenant model in `tenants/<tenant>/warehouse/` (`tenant` set).
    """

    layer: str
    name: str
    path: Path
    tenant: str | None = None

    @property
    def sql(self) -> str:
        return _read_sql(self.path, self.path.stat().st_mtime_ns)

    @property
    def doc_path(self) -> Path:
        return self.path.with_suffix(".yml")

    @property
    def sources(self) -> set[str]:
        """The views it reads: `contract_<name>` (shared contracts, what core models read) or `src_<source>`;
        a tenant without one of them skips the model."""
        return set(_views_read(self.sql))

    @property
    def refs(self) -> set[str]:
        """The `staging.x` / `marts.x` tables it reads (comments left out)."""
        return set(_tables_read(self.sql))

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"


@lru_cache(maxsize=4096)
def _read_sql(path: Path, _mtime_ns: int) -> str:
    """A model's SQL, read once per file version (the checks read each model's sources and refs)."""
    return path.read_text(encoding="utf-8")


@lru_cache(maxsize=4096)
def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


@lru_cache(maxsize=4096)
def _views_read(sql: str) -> frozenset[str]:
    return frozenset(re.findall(r"\b((?:contract|src)_[a-z][a-z0-9_]*)\b", _without_comments(sql)))


@lru_cache(maxsize=4096)
def _tables_read(sql: str) -> frozenset[str]:
    return frozenset(f"{s}.{t}" for s, t in re.findall(r"\b(staging|marts)\.([a-z][a-z0-9_]*)\b",
                                                        _without_comments(sql)))


MODEL_LAYERS = ("staging", "marts")


def sql_models(root: Path = WAREHOUSE_SQL_DIR, layers: tuple[str, ...] = MODEL_LAYERS,
               tenant: TenantConfig | None = None) -> list[SqlModel]:
    """SQL models in dependency order: the core ones of `root` and, given a tenant, its own ones from
    `tenants/<tenant>/warehouse/` (checked first: any problem raises one ConfigError, nothing is built).

    Each model comes after every model it references; among those ready, staging before marts and core
    before tenant, then by name — so the order is the same on every run.
    """
    models = [SqlModel(layer, p.stem, p) for layer in layers for p in sorted((root / layer).glob("*.sql"))]
    if tenant is not None:
        from pipelines.tenant_models import checked_tenant_models

        models += checked_tenant_models(tenant, core=models)
    return topological(models)


def topological(models: list[SqlModel]) -> list[SqlModel]:
    """`models` ordered after what they reference (references outside `models` are not edges)."""
    by_name = {m.qualified: m for m in models}
    deps = {m.qualified: (m.refs - {m.qualified}) & by_name.keys() for m in models}
    layer_rank = {layer: i for i, layer in enumerate(MODEL_LAYERS)}

    def key(name: str) -> tuple:
        m = by_name[name]
        return layer_rank.get(m.layer, len(layer_rank)), m.tenant is not None, m.name

    ordered: list[SqlModel] = []
    done: set[str] = set()
    pending = set(by_name)
    while pending:
        ready = sorted((n for n in pending if deps[n] <= done), key=key)
        if not ready:
            from pipelines.errors import ConfigError

            cycle = find_cycle({n: deps[n] & pending for n in pending})
            where = by_name[cycle[0]].path.parent.parent
            raise ConfigError(f"{where}: models reference each other in a cycle {' → '.join(cycle)} — "
                              "break it: one of them must not read the other")
        for n in ready[:1]:  # one at a time: what it unblocks may rank before the other ready ones
            ordered.append(by_name[n])
            done.add(n)
            pending.discard(n)
    return ordered


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` (node → nodes it depends on) as [a, b, …, a]; [] if there is none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        path.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                return path[path.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        state[n] = 2
        path.pop()
        return []

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return []


# --- Serving snapshot -----------------------------------------------------------------------------------

def publish_snapshot(con: duckdb.DuckDBPyConnection, snapshot: Path, run_id: str,
                     tenant: TenantConfig | None = None, versions: dict[str, str] | None = None,
                     build_key: str | None = None) -> dict[str, int]:
    """Publish the serving layers as `snapshot` (see `refresh_snapshot`); returns rows per table."""
    return refresh_snapshot(con, snapshot, run_id, tenant, versions, build_key).counts


@dataclass
class SnapshotRefresh:
    counts: dict[str, int]
    rewritten: list[str]
    kept: list[str]
    method: str            # new file | copy + replace (reflink | copy_file_range | copy)
    patched: list[str] = field(default_factory=list)   # brought up to date by the build's recorded changes


def refresh_snapshot(con: duckdb.DuckDBPyConnection, snapshot: Path, run_id: str,
                     tenant: TenantConfig | None = None, versions: dict[str, str] | None = None,
                     build_key: str | None = None) -> SnapshotRefresh:
    """Write the serving layers into a temp file, then rename it over the old snapshot in one step.

    The temp file starts as a copy of the snapshot now serving (a reflink where the file system shares
    blocks, else an in-kernel `copy_file_range`), and only the tables whose *version* differs from the one
    recorded in its `meta.snapshot_tables` are replaced: `versions` gives the versions `transform` recorded
    (`meta.build_state`), every other table (meta, model outputs) is versioned by a hash of its rows here.
    A table `transform` maintained from the change is not rewritten but *patched*: the rows of the keys (or
    groups) it replaced since the version the snapshot holds are deleted from the copy and inserted again from
    the warehouse, and its last as_of UPDATE replayed (`pipelines.incremental.delta_chain`); the records are
    dropped once the new snapshot is in place. Without a previous snapshot (or one without versions) every table
    is written into a new file.

    Readers holding the old file keep reading it (the rename swaps the directory entry, not the inode);
    new readers open the new file. A crash before the rename leaves the old snapshot serving; its temp
    files (`.<snapshot>.<pid>.tmp` and `.wal`) are removed by the next publish once their process is gone.
    The data dictionary is written again inside the snapshot, so it covers exactly the tables published
    (model outputs of the train step and `meta.snapshot` included); `tenant` adds its own models' docs.
    """
    from pipelines.dictionary import CONTRACTS_TABLE, TABLE, insert_rows, write_dictionary_table
    from pipelines.incremental import apply_delta_chain, content_version, delta_chain, forget_deltas
    from pipelines.runcontrol import remove_dead_temp_files

    tmp = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.tmp")
    remove_dead_temp_files(snapshot)
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    tables = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' "
        f"AND table_schema IN ({', '.join(repr(s) for s in SERVING_SCHEMAS)}) ORDER BY 1, 2").fetchall()
    rewritten_always = {tuple(t.split(".")) for t in (TABLE, CONTRACTS_TABLE)}  # written below, in the snapshot
    tables = [t for t in tables if t not in UNPUBLISHED_TABLES and t not in rewritten_always]
    versions = versions or {}
    wanted = {f"{s}.{t}": versions.get(f"{s}.{t}") or content_version(con, f'{s}."{t}"') for s, t in tables}
    previous = _snapshot_versions(snapshot)
    method = "new file"
    if previous is not None:
        method = "copy + replace (" + copy_file(snapshot, tmp) + ")"
    else:
        previous = {}
    counts: dict[str, int] = {}
    rewritten, kept, patched = [], [], []
    con.execute(f"ATTACH '{tmp}' AS snap")
    try:
        present = {f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'snap' "
            "AND table_type = 'BASE TABLE'").fetchall()}
        for schema in SERVING_SCHEMAS:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS snap.{schema}")
        for gone in sorted(present - set(wanted) - {"meta.snapshot", "meta.snapshot_tables", TABLE,
                                                     CONTRACTS_TABLE}):
            s, t = gone.split(".", 1)
            con.execute(f'DROP TABLE snap.{s}."{t}"')
        written_by: dict[str, str] = {}
        for schema, table in tables:
            q = f"{schema}.{table}"
            old = previous.get(q)
            if old is not None and old[0] == wanted[q] and q in present:
                counts[q], written_by[q] = old[1], old[2]
                kept.append(q)
                continue
            chain = delta_chain(con, q, old[0], wanted[q]) if old is not None and q in present else None
            if chain:
                apply_delta_chain(con, f'{schema}."{table}"', f'snap.{schema}."{table}"', chain)
                patched.append(q)
            else:
                con.execute(f'CREATE OR REPLACE TABLE snap.{schema}."{table}" AS SELECT * FROM {schema}."{table}"')
                rewritten.append(q)
            counts[q] = con.execute(f'SELECT count(*) FROM snap.{schema}."{table}"').fetchone()[0]
            written_by[q] = run_id
        con.execute("CREATE OR REPLACE TABLE snap.meta.snapshot AS SELECT ? AS run_id, "
                    "?::TIMESTAMPTZ AS published_at, ?::VARCHAR AS build_key", [run_id, now(), build_key])
        con.execute("CREATE OR REPLACE TABLE snap.meta.snapshot_tables (table_name VARCHAR, version VARCHAR, "
                    "n_rows BIGINT, written_by VARCHAR)")
        insert_rows(con, "snap.meta.snapshot_tables", [(q, wanted[q], counts[q], written_by[q]) for q in sorted(wanted)])
        write_dictionary_table(con, tenant, catalog="snap")
        for table in (TABLE, CONTRACTS_TABLE):
            counts[table] = con.execute(f"SELECT count(*) FROM snap.{table}").fetchone()[0]
    except BaseException:
        con.execute("DETACH snap")
        tmp.unlink(missing_ok=True)
        raise
    con.execute("DETACH snap")  # checkpoints: the file is complete, with no WAL beside it
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, snapshot)
    forget_deltas(con)  # the snapshot holds the warehouse's versions now: the next changes start from them
    return SnapshotRefresh(counts, rewritten, kept, method, patched)


def _snapshot_versions(snapshot: Path) -> dict[str, tuple[str, int, str]] | None:
    """The versions recorded in the snapshot now serving (table → version, rows, written by); None when it has
    none (no snapshot yet, or one published before versions were recorded, or unreadable)."""
    import duckdb

    if not snapshot.exists():
        return None
    try:
        with duckdb.connect(str(snapshot), read_only=True) as snap:
            rows = snap.execute("SELECT table_name, version, n_rows, written_by FROM meta.snapshot_tables").fetchall()
    except duckdb.Error:
        return None
    return {q: (v, n, w) for q, v, n, w in rows}


def snapshot_build_key(snapshot: Path) -> tuple[str | None, int]:
    """The build key the snapshot now serving was published with, and its number of tables."""
    import duckdb

    if not snapshot.exists():
        return None, 0
    try:
        with duckdb.connect(str(snapshot), read_only=True) as snap:
            key = snap.execute("SELECT build_key FROM meta.snapshot").fetchone()[0]
            n = snap.execute("SELECT count(*) FROM meta.snapshot_tables").fetchone()[0]
    except (duckdb.Error, TypeError):
        return None, 0
    return key, n + 2  # + the data dictionary and contracts tables, written at every publish


FICLONE = 0x40049409  # ioctl: share the source's blocks (btrfs, XFS with reflink, bcachefs…)


def copy_file(src: Path, dst: Path) -> str:
    """Copy `src` to `dst` as cheaply as the file system allows; returns how: reflink, copy_file_range or copy."""
    import fcntl
    import shutil

    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return "reflink"
        except OSError:
            pass
        size, offset = os.fstat(fin.fileno()).st_size, 0
        try:
            while offset < size:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), size - offset, offset, offset)
                if n == 0:
                    break
                offset += n
            if offset == size:
                return "copy_file_range"
        except OSError:
            pass
        fin.seek(0)
        fout.seek(0)
        fout.truncate()
        shutil.copyfileobj(fin, fout, 16 << 20)
    return "copy"
