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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.settings import WAREHOUSE_SQL_DIR

if TYPE_CHECKING:
    import duckdb

# Layers copied into the serving snapshot. `raw` stays behind: it is the only layer holding personal data.
SERVING_SCHEMAS = ("staging", "marts", "meta")
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
        con.execute((WAREHOUSE_SQL_DIR / "meta" / "schema.sql").read_text(encoding="utf-8"))
        yield con
    finally:
        con.close()


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
        [schema, table]).fetchone()[0])


def columns_of(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
    return dict(rows)


# --- SQL models -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SqlModel:
    """One `warehouse/<layer>/<name>.sql` file: a SELECT that becomes table `<layer>.<name>`."""

    layer: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def sources(self) -> set[str]:
        """The views it reads: `contract_<name>` (shared contracts, what core models read) or `src_<source>`;
        a tenant without one of them skips the model."""
        return set(re.findall(r"\b((?:contract|src)_[a-z][a-z0-9_]*)\b", _without_comments(self.sql)))

    @property
    def refs(self) -> set[str]:
        return {f"{s}.{t}" for s, t in re.findall(r"\b(staging|marts)\.([a-z][a-z0-9_]*)\b", self.sql)}

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def sql_models(root: Path = WAREHOUSE_SQL_DIR, layers: tuple[str, ...] = ("staging", "marts")) -> list[SqlModel]:
    """SQL models in dependency order: layers in order, and within a layer after what they reference."""
    ordered: list[SqlModel] = []
    for layer in layers:
        pending = {p.stem: SqlModel(layer, p.stem, p) for p in sorted((root / layer).glob("*.sql"))}
        done: set[str] = {m.qualified for m in ordered}
        while pending:
            ready = [m for m in pending.values()
                     if all(r in done for r in m.refs - {m.qualified} if r.startswith(f"{layer}."))]
            if not ready:
                raise RuntimeError(f"circular references among {sorted(pending)} in warehouse/{layer}")
            for m in ready:
                ordered.append(m)
                done.add(m.qualified)
                del pending[m.name]
    return ordered


# --- Serving snapshot -----------------------------------------------------------------------------------

def publish_snapshot(con: duckdb.DuckDBPyConnection, snapshot: Path, run_id: str) -> dict[str, int]:
    """Copy the serving layers into a new file, then rename it over the old snapshot in one step.

    Readers holding the old file keep reading it (the rename swaps the directory entry, not the inode);
    new readers open the new file. A crash before the rename leaves the old snapshot serving; its temp
    files (`.<snapshot>.<pid>.tmp` and `.wal`) are removed by the next publish once their process is gone.
    """
    from pipelines.runcontrol import remove_dead_temp_files

    tmp = snapshot.with_name(f".{snapshot.name}.{os.getpid()}.tmp")
    remove_dead_temp_files(snapshot)
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    tables = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE' "
        f"AND table_schema IN ({', '.join(repr(s) for s in SERVING_SCHEMAS)}) ORDER BY 1, 2").fetchall()
    counts: dict[str, int] = {}
    con.execute(f"ATTACH '{tmp}' AS snap")
    try:
        for schema in SERVING_SCHEMAS:
            con.execute(f"CREATE SCHEMA snap.{schema}")
        for schema, table in tables:
            con.execute(f'CREATE TABLE snap.{schema}."{table}" AS SELECT * FROM {schema}."{table}"')
            counts[f"{schema}.{table}"] = con.execute(f'SELECT count(*) FROM snap.{schema}."{table}"').fetchone()[0]
        con.execute("CREATE TABLE snap.meta.snapshot AS SELECT ? AS run_id, ?::TIMESTAMPTZ AS published_at",
                    [run_id, now()])
    except BaseException:
        con.execute("DETACH snap")
        tmp.unlink(missing_ok=True)
        raise
    con.execute("DETACH snap")  # checkpoints: the file is complete, with no WAL beside it
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, snapshot)
    return counts
