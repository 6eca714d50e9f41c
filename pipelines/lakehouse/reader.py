"""Read tenants' lakehouse tables from a pinned publish: a DuckDB connection with them registered as Arrow.

`pin()` reads a tenant's `_publishes` record (the latest publish, or the one at/before `as_of`: time travel)
and gets, per table, the Iceberg snapshot id that publish committed. Each table is registered from exactly
that snapshot's data files as a lazy `pyarrow.dataset` (DuckDB pushes its projections and filters into it;
nothing is copied until a query reads it), so a reader sees one publish whole whatever writers do meanwhile.

- `open_tenant(tenant)`: `staging.x`, `marts.x`, `meta.x` as in `serving.duckdb` — the apps' SQL unchanged;
- `open_tenants(tenants)`: per tenant a catalogue `<ns>` (`ninh_binh.marts.ho_so_tuan`) and, per table name,
  `all_tenants.<schema>.<table>`: every tenant's rows with a `tenant_id` column first (UNION ALL BY NAME);
  `lakehouse_publishes` lists the pinned publish of each tenant;
- `query(sql, …)`: one SQL over all tenants (the national data map, cross-tenant analytics; `tonghop
  lakehouse query`). Only the tables the SQL names are registered when it names any.

The connection is in-memory and has external access switched off after registration: a query reads the
registered tables only, never local files or the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pipelines.lakehouse.catalog import (
    MANIFEST_TABLE,
    LakehouseError,
    _one_line,
    namespace,
    open_catalog,
)
from pipelines.sqltext import quote_ident
from pipelines.sqltext import quote_literal as _literal

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table

    from pipelines.config import TenantConfig

ALL = "all_tenants"
SCHEMAS = ("staging", "marts", "meta")


@dataclass
class Pinned:
    """One tenant's publish as readers see it: table name → (Iceberg snapshot id, rows)."""

    tenant_id: str
    namespace: str
    publish_seq: int
    run_id: str
    published_at: datetime
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)


def manifest_rows(tbl: Table, snapshot_id: int, seq: int | None = None) -> list[dict[str, Any]]:
    """The `_publishes` rows of publish `seq` (default: the one `snapshot_id` recorded)."""
    from pyiceberg.expressions import EqualTo

    if seq is None:
        seq = int(tbl.snapshot_by_id(snapshot_id).summary.get("tonghop.publish_seq", "0"))
    return tbl.scan(row_filter=EqualTo("publish_seq", seq), snapshot_id=snapshot_id).to_arrow().to_pylist()


def pin(catalog: SqlCatalog, tenant_id: str, as_of: datetime | None = None) -> Pinned:
    """The tenant's latest publish, or the latest one committed at or before `as_of` (time travel)."""
    from pyiceberg.exceptions import NoSuchTableError

    ns = namespace(tenant_id)
    try:
        tbl = catalog.load_table((ns, MANIFEST_TABLE))
    except NoSuchTableError:
        raise LakehouseError(f"tenant '{tenant_id}' has published nothing to the lakehouse yet (no {ns}."
                             f"{MANIFEST_TABLE}) — run its pipeline with storage kind lakehouse") from None
    snap = tbl.current_snapshot()
    if snap is None:  # the record table exists, its first publish is being committed
        raise LakehouseError(f"tenant '{tenant_id}' has published nothing to the lakehouse yet ({ns}."
                             f"{MANIFEST_TABLE} is empty) — wait for its first publish to finish")
    if as_of is not None:
        snap = tbl.snapshot_as_of_timestamp(int(as_of.timestamp() * 1000))
    if snap is None:
        raise LakehouseError(f"tenant '{tenant_id}' had no lakehouse publish at {as_of:%Y-%m-%d %H:%M:%S %Z} — "
                             "give a later time")
    rows = manifest_rows(tbl, snap.snapshot_id)
    if not rows:
        raise LakehouseError(f"tenant '{tenant_id}': publish record {ns}.{MANIFEST_TABLE} is empty at snapshot "
                             f"{snap.snapshot_id} — run its publish step again")
    return Pinned(tenant_id, ns, rows[0]["publish_seq"], rows[0]["run_id"], rows[0]["published_at"],
                  {r["table_name"]: (r["snapshot_id"], r["n_rows"]) for r in rows})


def pinned_dataset(catalog: SqlCatalog, ns: str, table: str, snapshot_id: int):
    """The table at `snapshot_id` as Arrow: a lazy dataset over that snapshot's data files (an in-memory Arrow
    table when the snapshot has row-level delete files, which this writer never makes)."""
    import pyarrow.dataset as ds
    from pyarrow import fs as pafs
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    tbl = catalog.load_table((ns, *table.split(".", 1)))
    scan = tbl.scan(snapshot_id=snapshot_id)
    tasks = list(scan.plan_files())
    schema = schema_to_pyarrow(scan.projection(), include_field_ids=False)
    if any(t.delete_files for t in tasks):
        return scan.to_arrow()
    if not tasks:
        return schema.empty_table()
    filesystem, _ = pafs.FileSystem.from_uri(tasks[0].file.file_path)
    paths = [pafs.FileSystem.from_uri(t.file.file_path)[1] for t in tasks]
    return ds.dataset(paths, schema=schema, format="parquet", filesystem=filesystem)


def _tables_named(sql: str) -> set[tuple[str | None, str, str]] | None:
    """(catalogue or None, schema, table) the SQL names (`ns.marts.x`, `all_tenants.marts.x`, `marts.x`);
    None when it names none of them (then everything is registered)."""
    names = set()
    for m in re.finditer(r"\b(?:\"?([a-z_][a-z0-9_]*)\"?\s*\.\s*)?\"?(staging|marts|meta)\"?\s*\.\s*\"?([a-z_][a-z0-9_]*)",
                         sql, re.I):
        names.add(((m.group(1) or "").lower() or None, m.group(2).lower(), m.group(3).lower()))
    return names or None


def _register(con: duckdb.DuckDBPyConnection, catalog: SqlCatalog, pinned: Pinned, prefix: str | None,
              wanted: set[str] | None) -> list[str]:
    """Views for the pinned tables (in catalogue `prefix`, or the main one); returns the names registered."""
    done = []
    for name, (snapshot_id, _) in sorted(pinned.tables.items()):
        if wanted is not None and name not in wanted:
            continue
        schema, table = name.split(".", 1)
        hidden = f"_lh_{pinned.namespace}__{schema}__{table}"
        con.register(hidden, pinned_dataset(catalog, pinned.namespace, name, snapshot_id))
        target = f'{prefix + "." if prefix else ""}{quote_ident(schema)}.{quote_ident(table)}'
        con.execute(f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM temp.main.{quote_ident(hidden)}")
        done.append(name)
    return done


def _lock(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def open_tenant(tenant: TenantConfig, as_of: datetime | None = None,
                tables: set[str] | None = None) -> tuple[duckdb.DuckDBPyConnection, Pinned]:
    """An in-memory DuckDB connection with the tenant's pinned tables as `schema.table` views."""
    import duckdb

    catalog = open_catalog(tenant.storage.catalog_url_env)
    pinned = pin(catalog, tenant.tenant_id, as_of)
    con = duckdb.connect()
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    _register(con, catalog, pinned, None, tables)
    _lock(con)
    return con, pinned


def lakehouse_tenants(tenants: list[TenantConfig] | None = None) -> list[TenantConfig]:
    from pipelines.config import load_all

    return [t for t in (tenants if tenants is not None else load_all()) if t.storage.is_lakehouse]


def open_tenants(tenants: list[TenantConfig] | None = None, as_of: datetime | None = None,
                 sql: str | None = None) -> tuple[duckdb.DuckDBPyConnection, list[Pinned]]:
    """One connection over every lakehouse tenant (or `tenants`): `<ns>.<schema>.<table>` per tenant and
    `all_tenants.<schema>.<table>` across them. With `sql`, only the tables it names are registered."""
    import duckdb

    chosen = lakehouse_tenants(tenants)
    if not chosen:
        raise LakehouseError("no tenant keeps its tables in the lakehouse — add 'storage: {kind: lakehouse}' to a "
                             "tenant file and run its pipeline")
    named = _tables_named(sql) if sql else None
    con = duckdb.connect()
    pins: list[Pinned] = []
    registered: dict[str, list[str]] = {}
    for tenant in chosen:
        catalog = open_catalog(tenant.storage.catalog_url_env)
        pinned = pin(catalog, tenant.tenant_id, as_of)
        pins.append(pinned)
        ns = pinned.namespace
        wanted = None if named is None else {f"{s}.{t}" for c, s, t in named if c in (ns, ALL)}
        con.execute(f"ATTACH ':memory:' AS {quote_ident(ns)}")
        for schema in SCHEMAS:
            con.execute(f"CREATE SCHEMA {quote_ident(ns)}.{schema}")
        for name in _register(con, catalog, pinned, quote_ident(ns), wanted):
            registered.setdefault(name, []).append(ns)
    con.execute(f"ATTACH ':memory:' AS {ALL}")
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA {ALL}.{schema}")
    ids = {p.namespace: p.tenant_id for p in pins}
    for name, namespaces in sorted(registered.items()):
        schema, table = name.split(".", 1)
        union = " UNION ALL BY NAME ".join(
            f"SELECT {_literal(ids[ns])} AS tenant_id, * FROM {quote_ident(ns)}.{quote_ident(schema)}.{quote_ident(table)}"
            for ns in namespaces)
        con.execute(f"CREATE VIEW {ALL}.{quote_ident(schema)}.{quote_ident(table)} AS {union}")
    con.execute("CREATE TABLE lakehouse_publishes (tenant_id VARCHAR, publish_seq BIGINT, run_id VARCHAR, "
                "published_at TIMESTAMPTZ, n_tables INTEGER)")
    con.executemany("INSERT INTO lakehouse_publishes VALUES (?, ?, ?, ?, ?)",
                    [[p.tenant_id, p.publish_seq, p.run_id, p.published_at, len(p.tables)] for p in pins])
    _lock(con)
    return con, pins


def query(sql: str, tenants: list[TenantConfig] | None = None, as_of: datetime | None = None):
    """Run one SQL over every lakehouse tenant; returns (column names, rows, pins). A SQL error is one line."""
    import duckdb

    con, pins = open_tenants(tenants, as_of, sql)
    try:
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description or []]
        return columns, cur.fetchall(), pins
    except duckdb.Error as exc:
        raise LakehouseError(f"the lakehouse query failed: {_one_line(exc)} — tables are named "
                             f"<tenant>.<schema>.<table> or {ALL}.<schema>.<table> (with a tenant_id column), "
                             f"e.g. {ALL}.marts.ho_so_tuan") from None
    finally:
        con.close()
