"""Commit a tenant's published tables to Apache Iceberg: one commit per table, then one publish record.

The source is what `publish_snapshot` wrote (`serving.duckdb`, opened read-only): the serving layers
`staging`, `marts`, `meta` — never `raw`, the only layer with personal data. Layout in the catalogue:

    <ns>.<schema>.<table>   e.g. ninh_binh.marts.ho_so_tuan — the table, overwritten whole by each publish
                            (one Iceberg commit: its DELETE and APPEND snapshots land together or not at all)
    <ns>._publishes         one row per table per publish: publish_seq, run_id, published_at, table_name,
                            snapshot_id, n_rows, fingerprint

A publish becomes visible when its `_publishes` rows commit; readers (pipelines.lakehouse.reader) pin the
snapshot ids of the latest publish (or of an older one: time travel), so they see every table of one publish
together whatever is being written meanwhile; a crash between the table commits leaves the last complete
publish serving. Every commit is a compare-and-swap on the catalogue row (pyiceberg's SQL catalogue): two
writers of one table never lose a commit silently — the loser gets CommitFailedException and retries on the
refreshed table. A table whose content did not change (same fingerprint) is not rewritten.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pipelines.errors import ConfigError
from pipelines.lakehouse.catalog import (
    MANIFEST_TABLE,
    LakehouseError,
    _one_line,
    location_uri,
    namespace,
    open_catalog,
)
from pipelines.sqltext import quote_ident

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table

    from pipelines.config import TenantConfig

log = logging.getLogger("tonghop.lakehouse")
COMMIT_ATTEMPTS = 8
COMMIT_THREADS = 4  # tables committed at once by one publish (each holds one table's Arrow in memory)
FINGERPRINT = "tonghop.fingerprint"
RUN_ID = "tonghop.run_id"
PUBLISH_SEQ = "tonghop.publish_seq"
SOURCE = "tonghop.source"  # the serving snapshot a full publish came from (its meta.snapshot row)

# DuckDB types Iceberg has no type for: cast on the way out (the data dictionary documents the published type).
_CASTS = (
    (r"^INTERVAL$|^ENUM\(|^TIME WITH TIME ZONE$|^BIT$|^JSON$|^UHUGEINT$|^VARIANT", "VARCHAR"),
    (r"^HUGEINT$", "DECIMAL(38, 0)"),
    (r"^UBIGINT$", "DECIMAL(20, 0)"),
    (r"^UINTEGER$", "BIGINT"),
    (r"^USMALLINT$", "INTEGER"),
    (r"^UTINYINT$", "SMALLINT"),
    (r"^TIMESTAMP_(NS|S|MS)$", "TIMESTAMP"),
)


@dataclass
class TableCommit:
    table: str
    snapshot_id: int
    n_rows: int
    fingerprint: str
    written: bool


@dataclass
class PublishResult:
    tenant_id: str
    publish_seq: int
    run_id: str
    tables: list[TableCommit] = field(default_factory=list)
    seconds: float = 0.0
    source: str = ""

    def metrics(self) -> dict[str, Any]:
        return {"publish_seq": self.publish_seq, "n_tables": len(self.tables),
                "n_tables_written": sum(t.written for t in self.tables),
                "n_rows_written": sum(t.n_rows for t in self.tables if t.written), "seconds": round(self.seconds, 2)}


def select_sql(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    """`SELECT …` of one table with the columns Iceberg cannot hold cast to a type it can."""
    import re

    cols = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
                       "AND table_name = ? ORDER BY ordinal_position", [schema, table]).fetchall()
    parts = []
    for name, dtype in cols:
        quoted = quote_ident(name)
        cast = next((to for pattern, to in _CASTS if re.search(pattern, dtype)), None)
        parts.append(f"CAST({quoted} AS {cast}) AS {quoted}" if cast else quoted)
    return f'SELECT {", ".join(parts) or "*"} FROM {quote_ident(schema)}.{quote_ident(table)}'


def fingerprint(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> tuple[str, int]:
    """(content hash, rows): the column names and types plus an order-free sum of row hashes."""
    cols = con.execute("SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) FROM "
                       "information_schema.columns WHERE table_schema = ? AND table_name = ?",
                       [schema, table]).fetchone()[0]
    n, total = con.execute("SELECT count(*), coalesce(sum(hash(t))::VARCHAR, '0') FROM "
                           f"{quote_ident(schema)}.{quote_ident(table)} t").fetchone()
    return hashlib.sha256(f"{cols}|{n}|{total}".encode()).hexdigest()[:32], n


def _with_retries(what: str, action):
    """Run `action()` again (fresh table state) when a concurrent writer committed first."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    for attempt in range(COMMIT_ATTEMPTS):
        try:
            return action()
        except (CommitFailedException, ValidationException):
            if attempt == COMMIT_ATTEMPTS - 1:
                raise LakehouseError(f"{what}: {COMMIT_ATTEMPTS} commits in a row lost to concurrent writers — "
                                     "another process keeps writing the same table; run again when it is done"
                                     ) from None
            time.sleep(random.uniform(0.02, 0.1) * (attempt + 1))
    raise AssertionError("unreachable")


def _ensure_namespace(catalog: SqlCatalog, ns: tuple[str, ...]) -> None:
    from pyiceberg.exceptions import NamespaceAlreadyExistsError

    try:
        catalog.create_namespace_if_not_exists(ns)
    except NamespaceAlreadyExistsError:  # created by a concurrent writer between the check and the insert
        pass


def _load_or_create(catalog: SqlCatalog, ident: tuple[str, ...], schema: pa.Schema, location: str,
                    properties: dict[str, str] | None = None) -> Table:
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    try:
        return catalog.load_table(ident)
    except NoSuchTableError:
        pass
    try:
        return catalog.create_table(ident, schema=schema, location=location, properties=properties or {})
    except TableAlreadyExistsError:
        return catalog.load_table(ident)


# pyiceberg retries a commit that lost the race by re-basing an append on the new head: right for data,
# wrong for the publish record, whose rows (the next publish_seq, the merged table list) are computed from the
# head it read. Its appends must fail instead, so that `commit_publish` computes them again.
NO_REBASE = {"commit.retry.num-retries": "0"}


def _same_schema(tbl: Table, schema: pa.Schema) -> bool:
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    current = schema_to_pyarrow(tbl.schema(), include_field_ids=False)
    return [(f.name, str(f.type).replace("large_", "")) for f in current] == \
        [(f.name, str(f.type).replace("large_", "")) for f in schema]


def _evolve(catalog: SqlCatalog, tbl: Table, ident: tuple[str, ...], schema: pa.Schema, location: str) -> Table:
    """Make the table's schema the new one: add/remove columns (history kept); a type Iceberg cannot promote
    (text → number…) drops the table and creates it again (its history restarts, said in the log)."""
    try:
        with tbl.update_schema(allow_incompatible_changes=True) as update:
            update.union_by_name(schema)
            for name in set(tbl.schema().column_names) - set(schema.names):
                if "." not in name:
                    update.delete_column(name)
        return catalog.load_table(ident)
    except Exception as exc:  # noqa: BLE001 — any refusal of the evolution: start the table again
        log.warning("table %s changed its columns in a way Iceberg cannot evolve (%s): created again, its "
                    "earlier snapshots are no longer readable", ".".join(ident), _one_line(exc))
        catalog.drop_table(ident)
        return _load_or_create(catalog, ident, schema, location)


def commit_table(catalog: SqlCatalog, ident: tuple[str, ...], location: str, data: pa.Table,
                 fp: str, run_id: str) -> TableCommit:
    """Overwrite one table with `data` in one commit, unless its current snapshot has the same fingerprint."""

    def attempt() -> TableCommit:
        tbl = _load_or_create(catalog, ident, data.schema, location)
        current = tbl.current_snapshot()
        if current is not None and current.summary.get(FINGERPRINT) == fp:
            return TableCommit(".".join(ident[1:]), current.snapshot_id, data.num_rows, fp, False)
        if not _same_schema(tbl, data.schema):
            tbl = _evolve(catalog, tbl, ident, data.schema, location)
        props = {FINGERPRINT: fp, RUN_ID: run_id}
        if current is None:  # a new table: nothing to replace
            tbl.append(data, snapshot_properties=props)
        else:
            tbl.overwrite(data, snapshot_properties=props)
        return TableCommit(".".join(ident[1:]), tbl.current_snapshot().snapshot_id, data.num_rows, fp, True)

    return _with_retries(f"committing {'.'.join(ident)}", attempt)


def _manifest_schema():
    import pyarrow as pa

    return pa.schema([("publish_seq", pa.int64()), ("run_id", pa.string()),
                      ("published_at", pa.timestamp("us", tz="UTC")), ("table_name", pa.string()),
                      ("snapshot_id", pa.int64()), ("n_rows", pa.int64()), ("fingerprint", pa.string())])


def commit_publish(catalog: SqlCatalog, ns: str, location: str, run_id: str, commits: list[TableCommit],
                   replace_all: bool, source: str = "") -> int:
    """Append this publish's rows to `<ns>._publishes` (one commit): every table of the tenant with the
    snapshot readers must use. A partial publish (`replace_all` False) keeps the other tables' entries of
    the latest publish — computed again on each retry, so two writers of different tables both land."""
    import pyarrow as pa

    from pipelines.lakehouse.reader import manifest_rows

    ident = (ns, MANIFEST_TABLE)

    def attempt() -> int:
        tbl = _load_or_create(catalog, ident, _manifest_schema(), f"{location}/{MANIFEST_TABLE}", NO_REBASE)
        if tbl.properties.get("commit.retry.num-retries") != "0":
            with tbl.transaction() as tx:
                tx.set_properties(NO_REBASE)
            tbl = catalog.load_table(ident)
        current = tbl.current_snapshot()
        seq = int(current.summary.get(PUBLISH_SEQ, "0")) + 1 if current else 1
        entries = {c.table: (c.snapshot_id, c.n_rows, c.fingerprint) for c in commits}
        if not replace_all and current is not None:
            for r in manifest_rows(tbl, current.snapshot_id):
                entries.setdefault(r["table_name"], (r["snapshot_id"], r["n_rows"], r["fingerprint"]))
        published_at = datetime.now(UTC)
        rows = [{"publish_seq": seq, "run_id": run_id, "published_at": published_at, "table_name": name,
                 "snapshot_id": sid, "n_rows": n, "fingerprint": fp}
                for name, (sid, n, fp) in sorted(entries.items())]
        tbl.append(pa.Table.from_pylist(rows, schema=_manifest_schema()),
                   snapshot_properties={PUBLISH_SEQ: str(seq), RUN_ID: run_id, SOURCE: source})
        return seq

    return _with_retries(f"recording the publish in {ns}.{MANIFEST_TABLE}", attempt)


def _source_key(con: duckdb.DuckDBPyConnection) -> str:
    """What identifies a published snapshot: its `meta.snapshot` row (run id, time, build key…)."""
    try:
        row = con.execute("SELECT * FROM meta.snapshot").fetchall()
    except Exception:  # noqa: BLE001 — a snapshot without it is simply always committed
        return ""
    return hashlib.sha256(repr(row).encode()).hexdigest()[:32] if row else ""


def _latest_publish(catalog: SqlCatalog, ns: str) -> tuple[int, str] | None:
    """(publish_seq, source) of the tenant's latest full publish, None when there is none or it had no source."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        snap = catalog.load_table((ns, MANIFEST_TABLE)).current_snapshot()
    except (NoSuchTableError, NoSuchNamespaceError):
        return None
    if snap is None or not snap.summary.get(SOURCE):
        return None
    return int(snap.summary.get(PUBLISH_SEQ, "0")), snap.summary.get(SOURCE)


def _segment(name: str) -> str:
    """A schema or table name as one path segment of the data files' folder, whatever characters it holds: '/'
    and the rest percent-encoded, and a name of dots only ('.', '..': a tenant SQL model can create one) too, so
    it never names the folder itself or its parent."""
    part = quote(name, safe="")
    return part.replace(".", "%2E") if set(part) <= {"."} else part


def serving_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    from pipelines.warehouse import SERVING_SCHEMAS, UNPUBLISHED_TABLES

    rows = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        f"AND table_schema IN ({', '.join(repr(s) for s in SERVING_SCHEMAS)}) ORDER BY 1, 2").fetchall()
    return [r for r in rows if r not in UNPUBLISHED_TABLES]


def publish_tenant(tenant: TenantConfig, snapshot: Path, run_id: str,
                   tables: list[str] | None = None) -> PublishResult:
    """Commit the tenant's published snapshot (or only `tables`, `schema.table` names) to its lakehouse."""
    import duckdb

    from pipelines.errors import first_line

    storage = tenant.storage
    if not storage.is_lakehouse:
        raise ConfigError(f"tenant '{tenant.tenant_id}' keeps its warehouse in DuckDB (no 'storage: {{kind: "
                          "lakehouse}' in its tenant file) — add it to publish to the lakehouse")
    if not snapshot.exists():
        raise LakehouseError(f"tenant '{tenant.tenant_id}': no published snapshot at {snapshot} — run the "
                             f"pipeline first (tonghop run --tenant {tenant.tenant_id})")
    started = time.perf_counter()
    catalog = open_catalog(storage.catalog_url_env)
    root = location_uri(tenant, storage)
    ns = namespace(tenant.tenant_id)
    result = PublishResult(tenant.tenant_id, 0, run_id)
    try:
        con = duckdb.connect(str(snapshot), read_only=True)
    except duckdb.Error as exc:
        raise LakehouseError(f"tenant '{tenant.tenant_id}': the snapshot {snapshot} cannot be read "
                             f"({first_line(exc)}) — run the publish step again") from None
    try:
        source = _source_key(con)
        if tables is None and (latest := _latest_publish(catalog, ns)) is not None and latest[1] == source:
            # Cost follows change: the lakehouse already holds this very snapshot (same meta.snapshot row).
            result.publish_seq, result.seconds = latest[0], time.perf_counter() - started
            log.info("lakehouse %s: nothing to commit — publish %d already holds this snapshot", ns, latest[0])
            return result
        result.source = source
        available = serving_tables(con)
        wanted = available if tables is None else [t for t in available if f"{t[0]}.{t[1]}" in set(tables)]
        if tables is not None and (missing := sorted(set(tables) - {f"{s}.{t}" for s, t in wanted})):
            raise LakehouseError(f"tenant '{tenant.tenant_id}': table(s) {', '.join(missing)} are not in the "
                                 f"published snapshot {snapshot} — check the names (schema.table)")
        _ensure_namespace(catalog, (ns,))
        for schema in sorted({s for s, _ in wanted}):
            _ensure_namespace(catalog, (ns, schema))

        def one(schema: str, table: str) -> TableCommit:
            cur = con.cursor()  # one DuckDB cursor per thread
            try:
                fp, _ = fingerprint(cur, schema, table)
                data = cur.sql(select_sql(cur, schema, table)).to_arrow_table()
            finally:
                cur.close()
            where = f"{root}/{_segment(schema)}/{_segment(table)}"
            commit = commit_table(catalog, (ns, schema, table), where, data, fp, run_id)
            log.info("lakehouse %s.%s.%s: %s (%s rows, snapshot %s)", ns, schema, table,
                     "committed" if commit.written else "unchanged", f"{commit.n_rows:,}", commit.snapshot_id)
            return commit

        # Tables are independent commits: a few at once hide the catalogue's and the storage's round trips.
        with ThreadPoolExecutor(max_workers=COMMIT_THREADS, thread_name_prefix="lakehouse") as pool:
            result.tables = list(pool.map(lambda st: one(*st), wanted))
    except LakehouseError:
        raise
    except Exception as exc:  # noqa: BLE001 — a catalogue/storage failure is one line naming the tenant
        raise LakehouseError(f"tenant '{tenant.tenant_id}': committing to the lakehouse failed: {_one_line(exc)} — "
                             "the previous publish keeps serving readers; fix the cause (catalogue reachable, "
                             "storage writable) and run the publish step again") from None
    finally:
        con.close()
    try:
        result.publish_seq = commit_publish(catalog, ns, root, run_id, result.tables, replace_all=tables is None,
                                            source=result.source if tables is None else "")
    except LakehouseError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise LakehouseError(f"tenant '{tenant.tenant_id}': recording the lakehouse publish failed: "
                             f"{_one_line(exc)} — the previous publish keeps serving readers; run the publish "
                             "step again") from None
    result.seconds = time.perf_counter() - started
    log.info("lakehouse publish %d of %s: %d tables (%d written) in %.1f s", result.publish_seq, ns,
             len(result.tables), sum(t.written for t in result.tables), result.seconds)
    return result
