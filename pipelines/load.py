"""Sources → `raw`: read each configured source and land it as one batch with lineage columns.

Idempotent: the batch id is fixed per run (Airflow's run id), a retry replaces that batch's rows, and an
input whose fingerprint matches a batch already promoted loads nothing. All sources of a run land in one
transaction, so a failing source leaves the warehouse exactly as it was — unless the source says
`on_error: skip_source`: such a source is first read into a temporary table on its own, and if that
fails only that source is left out (and reported) while the others load.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipelines.errors import SourceError
from pipelines.sources import Extract, reader_for
from pipelines.warehouse import columns_of, now, table_exists, transaction

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig, TenantConfig
    from pipelines.settings import TenantPaths

log = logging.getLogger("tonghop.load")
LINEAGE_COLUMNS = ("_source", "_batch_id", "_loaded_at")
_VIEW = "extract_rel"


@dataclass
class LoadResult:
    source: str
    status: str  # loaded | unchanged | skipped
    n_rows_read: int = 0
    n_rows_loaded: int = 0
    n_rows_rejected: int = 0
    new_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None


def load_sources(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths, run_id: str,
                 only: list[str] | None = None) -> list[LoadResult]:
    """Land every (or the named) source of a tenant in `raw` as batch `run_id`, in one transaction."""
    sources = [s for s in tenant.sources if only is None or s.name in only]
    prepared: dict[str, Extract] = {}
    skipped: dict[str, LoadResult] = {}
    for source in sources:
        if source.on_error != "skip_source":
            continue
        try:
            with transaction(con):
                extract = _read(con, source, paths)
                con.execute(f'CREATE OR REPLACE TEMP TABLE "_pre_{source.name}" AS SELECT * FROM {_VIEW}')
            extract.relation = con.table(f"_pre_{source.name}")
            prepared[source.name] = extract
        except SourceError as err:
            log.error("[%s] source '%s' skipped: %s", tenant.tenant_id, source.name, err)
            skipped[source.name] = LoadResult(source.name, "skipped", error=str(err))

    results: list[LoadResult] = []
    with transaction(con):
        for i, source in enumerate(sources, 1):
            if source.name in skipped:
                results.append(skipped[source.name])
                continue
            started = time.perf_counter()
            log.info("[%s] %d/%d loading source '%s' (%s)", tenant.tenant_id, i, len(sources),
                     source.name, source.kind)
            extract = prepared.get(source.name)
            if extract is not None:
                con.register(_VIEW, extract.relation)
            else:
                extract = _read(con, source, paths)
            try:
                result = _land(con, source, extract, run_id)
            finally:
                con.unregister(_VIEW)
                con.execute(f'DROP TABLE IF EXISTS temp."_pre_{source.name}"')
            result.seconds = time.perf_counter() - started
            log.info("[%s] source '%s': %s, %s rows read, %s loaded (%.1f s)", tenant.tenant_id, source.name,
                     result.status, f"{result.n_rows_read:,}", f"{result.n_rows_loaded:,}", result.seconds)
            results.append(result)
    return results


def _read(con: duckdb.DuckDBPyConnection, source: SourceConfig, paths: TenantPaths) -> Extract:
    """Read a source and expose it as the temp view `extract_rel`; any reader failure is a SourceError."""
    import duckdb

    try:
        extract = reader_for(source.kind)(source, con, paths)
        con.register(_VIEW, extract.relation)
    except duckdb.Error as exc:
        raise SourceError(source.name, source.location or "(connection)",
                          f"cannot read ({_first_line(exc)})",
                          "check the source's options (encoding, delimiter, types) and the file itself") from None
    return extract


def _land(con: duckdb.DuckDBPyConnection, source: SourceConfig, extract: Extract, run_id: str) -> LoadResult:
    """Write the view `extract_rel` into `raw.<source>` as batch `run_id`, handling schema drift on purpose."""
    import duckdb

    batch_id = run_id
    promoted = con.execute(
        "SELECT batch_id FROM meta.loads WHERE source = ? AND fingerprint = ? AND status = 'passed' "
        "AND batch_id <> ? LIMIT 1", [source.name, extract.fingerprint, batch_id]).fetchone()
    if promoted:
        _record(con, source, extract, batch_id, run_id, "unchanged", 0, [], None)
        return LoadResult(source.name, "unchanged")

    table = f'raw."{source.name}"'
    rel = con.table(_VIEW)
    incoming = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    missing_pk = [c for c in source.primary_key if c not in incoming]
    if missing_pk:
        raise SourceError(source.name, extract.location, f"primary key column(s) {missing_pk} not in the input",
                          f"the input has columns {list(incoming)}; fix 'primary_key' or the export")
    new_columns: list[str] = []
    if not table_exists(con, "raw", source.name):
        con.execute(f"CREATE TABLE {table} AS SELECT *, ''::VARCHAR AS _source, ''::VARCHAR AS _batch_id, "
                    f"now() AS _loaded_at FROM {_VIEW} LIMIT 0")
    else:
        existing = columns_of(con, "raw", source.name)
        missing = [c for c in existing if c not in incoming and c not in LINEAGE_COLUMNS]
        if missing:
            raise SourceError(source.name, extract.location, f"column(s) {missing} disappeared from the input",
                              "ask the agency whether the export changed; if on purpose, drop the column "
                              "from raw and from the staging SQL")
        for col, typ in incoming.items():
            if col not in existing:
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{col}" {typ}')
                new_columns.append(col)
    # A retry of the same batch keeps the batch's first load time, so its rows come out identical.
    first_loaded = con.execute(f"SELECT min(_loaded_at) FROM {table} WHERE _batch_id = ?", [batch_id]).fetchone()[0]
    con.execute(f"DELETE FROM {table} WHERE _batch_id = ?", [batch_id])
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT *, ? AS _source, ? AS _batch_id, "
                    f"?::TIMESTAMPTZ AS _loaded_at FROM {_VIEW}", [source.name, batch_id, first_loaded or now()])
    except duckdb.Error as exc:
        raise SourceError(source.name, extract.location, f"rows do not fit raw.{source.name} ({_first_line(exc)})",
                          "a column changed type or a value is malformed; fix the export or the source's "
                          "'types' option, then re-run") from None
    n_loaded = con.execute(f"SELECT count(*) FROM {table} WHERE _batch_id = ?", [batch_id]).fetchone()[0]
    watermark = None
    if source.incremental_column:
        watermark = con.execute(f'SELECT max("{source.incremental_column}")::VARCHAR FROM {table} '
                                "WHERE _batch_id = ?", [batch_id]).fetchone()[0]
    if new_columns:
        log.warning("source '%s': new column(s) %s added to raw.%s", source.name, new_columns, source.name)
    _record(con, source, extract, batch_id, run_id, "loaded", n_loaded, new_columns, watermark)
    return LoadResult(source.name, "loaded", n_loaded, n_loaded, 0, new_columns)


def _record(con, source: SourceConfig, extract: Extract, batch_id: str, run_id: str, status: str,
            n_loaded: int, new_columns: list[str], watermark: str | None) -> None:
    con.execute("DELETE FROM meta.loads WHERE batch_id = ? AND source = ?", [batch_id, source.name])
    con.execute(
        "INSERT INTO meta.loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [batch_id, run_id, source.name, source.kind, extract.location, extract.fingerprint, status, n_loaded,
         n_loaded, 0, new_columns, watermark, now()])


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:300]
