"""Sources → `raw`: read each configured source and land it as one batch with lineage columns.

Idempotent: the batch id is fixed per run (Airflow's run id), a retry replaces that batch's rows, and an
input whose fingerprint matches a batch already promoted loads nothing. All sources of a run land in one
transaction, so a failing source leaves the warehouse exactly as it was — unless the source says
`on_error: skip_source`: such a source is first read into a temporary table on its own, and if that
fails only that source is left out (and reported) while the others load. `fail_run` is the default
because marts join sources: publishing some of today's sources with yesterday's others would show
figures that never existed together.

Incremental sources get the watermark of their last loaded/passed batch (`ReadState`) and fetch only
rows past it; a run that finds nothing new records `unchanged` and carries the watermark forward.
Schema drift is handled on purpose: new columns are added and reported; a column that disappeared or no
longer fits its `raw` type fails the source (`on_drift: fail`) or sends the misfit rows to
`raw."_rejected_<source>"` (`on_drift: quarantine`).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipelines.errors import SourceError, first_line
from pipelines.redact import redact
from pipelines.sources import Extract, reader_for
from pipelines.sources.base import ReadState, content_fingerprint, drop_temp
from pipelines.sqltext import quote_ident, quote_literal
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
    watermark: str | None = None
    read: bool = True  # False: its probe showed nothing changed, the source was not opened


def load_sources(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, paths: TenantPaths, run_id: str,
                 only: list[str] | None = None) -> list[LoadResult]:
    """Land every (or the named) source of a tenant in `raw` as batch `run_id`, in one transaction."""
    import duckdb

    from pipelines.sources import probe as probes
    from pipelines.sources.base import rehashing

    sources = [s for s in tenant.sources if only is None or s.name in only]
    # Cost follows change: each source's cheap probe (a stat of its files), taken before anything is read.
    checked_at = now()
    probe_of = {s.name: probes.take(s, paths, tenant.tenant_id) for s in sources}
    unread = {s.name: skip for s in sources
              if (skip := probes.unchanged(con, s, probe_of[s.name], run_id, checked_at)) is not None}
    verify = {s.name for s in sources if s.name not in unread and probes.due(con, s, probe_of[s.name], checked_at)}
    prepared: dict[str, Extract] = {}
    skipped: dict[str, LoadResult] = {}
    for source in sources:
        if source.on_error != "skip_source" or source.name in unread:
            continue
        try:
            with transaction(con), (rehashing() if source.name in verify else nullcontext()):
                extract = _read(con, source, paths, run_id)
                try:
                    con.execute(f'CREATE OR REPLACE TEMP TABLE "_pre_{source.name}" AS SELECT * FROM {_VIEW}')
                    extract.single_pass = False
                    if extract.rejects_sql:  # the reader's cleanup drops what they read from: keep them now
                        con.execute(f'CREATE OR REPLACE TEMP TABLE "_prerej_{source.name}" AS '
                                    + " UNION ALL BY NAME ".join(f"({sql})" for sql in extract.rejects_sql))
                        extract.rejects_sql = [f'SELECT * FROM temp."_prerej_{source.name}"']
                except duckdb.Error as exc:
                    raise _read_error(source, extract.location, exc) from None
                finally:
                    _release(con, extract)
            extract.relation = con.table(f"_pre_{source.name}")
            prepared[source.name] = extract
        except SourceError as err:
            log.error("[%s] source '%s' skipped: %s", tenant.tenant_id, source.name, err)
            skipped[source.name] = LoadResult(source.name, "skipped", error=str(err))

    results: list[LoadResult] = []
    with _unordered_inserts(con), transaction(con):
        for i, source in enumerate(sources, 1):
            if source.name in skipped:
                probes.record(con, source, None, "skipped", None, None, run_id, checked_at)
                results.append(skipped[source.name])
                continue
            if source.name in unread:
                results.append(_probe_unchanged(con, source, unread[source.name], run_id))
                probes.record(con, source, probe_of[source.name], "unchanged", None, None, run_id, checked_at,
                              skipped=unread[source.name])
                log.info("[%s] %d/%d source '%s' (%s): unchanged since batch %s by its probe (file size and time),"
                         " not read", tenant.tenant_id, i, len(sources), source.name, source.kind,
                         unread[source.name].batch_id or "promoted earlier")
                continue
            started = time.perf_counter()
            log.info("[%s] %d/%d loading source '%s' (%s)", tenant.tenant_id, i, len(sources),
                     source.name, source.kind)
            extract = prepared.get(source.name)
            if extract is not None:
                con.register(_VIEW, extract.relation)
            else:
                with rehashing() if source.name in verify else nullcontext():
                    extract = _read(con, source, paths, run_id)
            try:
                result = _land(con, source, extract, run_id)
            finally:
                extract.cleanup += [drop_temp(con, f"_pre_{source.name}"), drop_temp(con, f"_prerej_{source.name}")]
                _release(con, extract)
            fingerprint, watermark = con.execute("SELECT fingerprint, watermark FROM meta.loads WHERE batch_id = ? "
                                                 "AND source = ?", [run_id, source.name]).fetchone()
            probes.record(con, source, probe_of[source.name], result.status, fingerprint, watermark, run_id,
                          checked_at)
            result.seconds = time.perf_counter() - started
            log.info("[%s] source '%s': %s, %s rows read, %s loaded, %s rejected (%.1f s)", tenant.tenant_id,
                     source.name, result.status, f"{result.n_rows_read:,}", f"{result.n_rows_loaded:,}",
                     f"{result.n_rows_rejected:,}", result.seconds)
            results.append(result)
    return results


@contextmanager
def _unordered_inserts(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Row order inside `raw` means nothing (batches are read back by key and batch id), so DuckDB may insert
    in parallel without keeping the input's order: most of what separates a load from a bare CTAS."""
    con.execute("SET preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute("RESET preserve_insertion_order")


def stored_watermark(con: duckdb.DuckDBPyConnection, source: SourceConfig, batch_id: str) -> str | None:
    """The watermark of the source's last promoted batch, other than the one being (re)loaded.

    Watermarks advance only with promoted batches: `passed`, or `unchanged` carrying a promoted batch's
    watermark. A batch still `loaded` (its run may have died before validating it), `blocked` or
    `abandoned` was never promoted, so its rows must be fetched again: its watermark does not count.
    """
    rows = con.execute(
        "SELECT watermark FROM meta.loads l WHERE source = ? AND batch_id <> ? AND watermark IS NOT NULL "
        "AND (status = 'passed' OR (status = 'unchanged' AND watermark IN (SELECT watermark FROM meta.loads "
        "  WHERE source = l.source AND status = 'passed' AND batch_id <> ?))) "
        "ORDER BY loaded_at DESC LIMIT 1",
        [source.name, batch_id, batch_id]).fetchall()
    return rows[0][0] if rows else None


def _read(con: duckdb.DuckDBPyConnection, source: SourceConfig, paths: TenantPaths, run_id: str) -> Extract:
    """Read a source and expose it as the temp view `extract_rel`; any reader failure is a SourceError."""
    import duckdb

    def is_promoted(fingerprint: str) -> bool:
        return fingerprint == latest_promoted_fingerprint(con, source, run_id)

    state = ReadState(watermark=stored_watermark(con, source, run_id) if source.incremental_column else None,
                      run_id=run_id, is_promoted=is_promoted)
    reader = reader_for(source.kind)
    try:
        # Readers written before `state` existed take three arguments; both kinds keep working.
        takes_state = "state" in inspect.signature(reader).parameters
        extract = reader(source, con, paths, state=state) if takes_state else reader(source, con, paths)
        extract.watermark = extract.watermark or state.watermark
        extract.relation = _normalised(source, extract)
        con.register(_VIEW, extract.relation)
    except duckdb.Error as exc:
        raise _read_error(source, source.location or "(connection)", exc) from None
    except SourceError:
        raise
    except Exception as exc:
        # A reader bug or an input nobody foresaw: still one readable line naming the source, so that
        # `on_error: skip_source` holds and a `fail_run` source rolls back cleanly (traceback at debug).
        log.debug("source '%s' reader raised", source.name, exc_info=True)
        raise SourceError(source.name, source.location or "(connection)",
                          f"unexpected {type(exc).__name__} while reading ({first_line(exc)})",
                          f"check the source's options and input; if they look right, report this with the log "
                          f"(the '{source.kind}' reader should have named the problem)") from exc
    return extract


def _normalised(source: SourceConfig, extract: Extract) -> duckdb.DuckDBPyRelation:
    """Header names and text values in Unicode NFC, so that Vietnamese typed in decomposed form (NFD, as
    macOS and some input methods write it) joins with the composed form; a stray BOM (U+FEFF) is dropped.

    Two headers equal after normalisation are refused, naming the column (never silently renamed). Values are
    left as they are when the reader has checked them already NFC and BOM-free (`Extract.text_normal`).
    """
    import unicodedata

    rel = extract.relation
    names = [unicodedata.normalize("NFC", c).replace("\ufeff", "").strip() for c in rel.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SourceError(source.name, extract.location, f"duplicate column name(s) in the header: {dupes}",
                          "rename the columns in the export (each header must be unique), or for a workbook "
                          "use 'rename'/'header_join'")
    cols = []
    changed = False
    for col, name, typ in zip(rel.columns, names, [str(t) for t in rel.types], strict=True):
        ref, alias = quote_ident(col), quote_ident(name)
        if typ == "VARCHAR" and not extract.text_normal:
            cols.append(f"replace(nfc_normalize({ref}), '\ufeff', '') AS {alias}")
            changed = True
        else:
            cols.append(f"{ref} AS {alias}")
            changed = changed or name != col
    return rel.project(", ".join(cols)) if changed else rel


def _read_error(source: SourceConfig, location: str, exc: Exception) -> SourceError:
    text = first_line(exc)
    if "unicode" in text.lower() or "utf" in text.lower():
        return SourceError(source.name, location, f"the file is not valid in the declared encoding ({text})",
                           "set 'options.encoding' (utf-8, utf-16, windows-1258, tcvn3) to the file's encoding")
    return SourceError(source.name, location, f"cannot read ({text})",
                       "check the source's options (encoding, delimiter, types) and the file itself")


def _release(con: duckdb.DuckDBPyConnection, extract: Extract) -> None:
    """Unregister the extract's view and run the reader's cleanups (temp tables, connections, files).

    After a failed statement DuckDB refuses every statement until the rollback, which undoes this
    transaction's temp tables anyway: such refusals are ignored, so the load's own error is what surfaces.
    """
    import duckdb

    for undo in (lambda: con.unregister(_VIEW), *extract.cleanup):
        try:
            undo()
        except duckdb.TransactionException:
            pass
    extract.cleanup.clear()


def _land(con: duckdb.DuckDBPyConnection, source: SourceConfig, extract: Extract, run_id: str) -> LoadResult:
    """Write the view `extract_rel` into `raw.<source>` as batch `run_id`, handling schema drift on purpose."""
    import duckdb

    batch_id = run_id
    if extract.fingerprint is not None and _nothing_to_load(con, source, extract, batch_id):
        return _unchanged(con, source, extract, batch_id, run_id)

    table = f'raw."{source.name}"'
    rel = con.table(_VIEW)
    incoming = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))
    missing_pk = [c for c in source.primary_key if c not in incoming]
    if missing_pk:
        raise SourceError(source.name, extract.location, f"primary key column(s) {missing_pk} not in the input",
                          f"the input has columns {list(incoming)}; fix 'primary_key' or the export")
    new_columns: list[str] = []
    misfits: list[tuple[str, str]] = []  # (SQL condition of a misfit row, reason)
    if not table_exists(con, "raw", source.name):
        con.execute(f"CREATE TABLE {table} AS SELECT *, ''::VARCHAR AS _source, ''::VARCHAR AS _batch_id, "
                    f"now() AS _loaded_at FROM {_VIEW} LIMIT 0")
    else:
        existing = columns_of(con, "raw", source.name)
        missing = [c for c in existing if c not in incoming and c not in LINEAGE_COLUMNS]
        if extract.single_pass and (missing or any(existing.get(c, t).upper() != t.upper()
                                                   for c, t in incoming.items())):
            _stage(con, source, extract, list(incoming))  # drift is examined in several passes
            if _nothing_to_load(con, source, extract, batch_id):
                return _unchanged(con, source, extract, batch_id, run_id)
        if missing and source.on_drift == "fail":
            raise SourceError(source.name, extract.location, f"column(s) {missing} disappeared from the input",
                              "ask the agency whether the export changed; if on purpose, drop the column "
                              "from raw and from the staging SQL (or set on_drift: quarantine)")
        if missing:
            misfits.append(("true", f"column(s) {', '.join(missing)} missing from the input"))
        misfits += _retyped(con, source, extract, existing, incoming)
        for col, typ in incoming.items():
            if col not in existing:
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{col}" {typ}')
                new_columns.append(col)
    # A retry of the same batch keeps the batch's first load time, so its rows come out identical.
    first_loaded = con.execute(f"SELECT min(_loaded_at) FROM {table} WHERE _batch_id = ?", [batch_id]).fetchall()[0][0]
    loaded_at = first_loaded or now()
    con.execute(f"DELETE FROM {table} WHERE _batch_id = ?", [batch_id])
    n_rejected = _quarantine(con, source, batch_id, loaded_at, misfits)
    keep = f" WHERE NOT ({' OR '.join(c for c, _ in misfits)})" if misfits else ""
    try:
        if not any(c == "true" for c, _ in misfits):
            con.execute(f"INSERT INTO {table} BY NAME SELECT *, ? AS _source, ? AS _batch_id, "
                        f"?::TIMESTAMPTZ AS _loaded_at FROM {_VIEW}{keep}", [source.name, batch_id, loaded_at])
    except duckdb.Error as exc:
        if "unicode" in str(exc).lower():
            raise _read_error(source, extract.location, exc) from None
        if extract.single_pass:  # the source is read during this insert: its failures surface here
            raise SourceError(source.name, extract.location, f"reading or landing the rows failed "
                              f"({first_line(exc)})", "check that the source is reachable and that its rows "
                              f"fit raw.{source.name} (or the source's 'types' option), then re-run") from None
        raise SourceError(source.name, extract.location, f"rows do not fit raw.{source.name} ({first_line(exc)})",
                          "a column changed type or a value is malformed; fix the export or the source's "
                          "'types' option, then re-run") from None
    n_malformed = _reader_rejects(con, source, extract, batch_id, loaded_at)
    n_rejected += n_malformed
    n_loaded = con.execute(f"SELECT count(*) FROM {table} WHERE _batch_id = ?", [batch_id]).fetchall()[0][0]
    if n_malformed and not n_loaded:
        [(first,)] = con.execute(f"SELECT min_by(_reason, _row) FROM raw.\"_rejected_{source.name}\" "
                                 "WHERE _batch_id = ?", [batch_id]).fetchall()
        raise SourceError(source.name, extract.location, f"every one of the {n_malformed:,} line(s) is malformed "
                          f"(first: {(first or 'no reason recorded')[:200]})", "check 'delimiter', 'quote', 'encoding', 'types' and 'date_format' against the file")
    n_read = extract.n_rows_read if extract.n_rows_read is not None else n_loaded + n_rejected
    if extract.fingerprint is None:  # a single-pass stream: identify the input by the rows that landed
        extract.fingerprint = content_fingerprint(con, table, *extract.fingerprint_parts, columns=list(incoming),
                                                  where=f"WHERE _batch_id = {quote_literal(batch_id)}")
        extract.n_rows_read = n_read
        if _nothing_to_load(con, source, extract, batch_id):
            con.execute(f"DELETE FROM {table} WHERE _batch_id = ?", [batch_id])
            return _unchanged(con, source, extract, batch_id, run_id)
    watermark = extract.watermark
    if source.incremental_column:
        newest = con.execute(f'SELECT max("{source.incremental_column}")::VARCHAR FROM {table} '
                             "WHERE _batch_id = ?", [batch_id]).fetchall()[0][0]
        watermark = newest if newest is not None else watermark
    if new_columns:
        log.warning("source '%s': new column(s) %s added to raw.%s", source.name, new_columns, source.name)
    _record(con, source, extract, batch_id, run_id, "loaded", n_read, n_loaded, n_rejected, new_columns, watermark)
    return LoadResult(source.name, "loaded", n_read, n_loaded, n_rejected, new_columns, watermark=watermark)


def _probe_unchanged(con: duckdb.DuckDBPyConnection, source: SourceConfig, skip, run_id: str) -> LoadResult:
    """A source its probe found unchanged: recorded `unchanged` with the promoted state it is still in."""
    extract = Extract(relation=None, fingerprint=skip.fingerprint, location=source.location or "(connection)",
                      watermark=skip.watermark)
    _record(con, source, extract, run_id, run_id, "unchanged", 0, 0, 0, [], skip.watermark)
    return LoadResult(source.name, "unchanged", watermark=skip.watermark, read=False)


def _unchanged(con: duckdb.DuckDBPyConnection, source: SourceConfig, extract: Extract, batch_id: str,
               run_id: str) -> LoadResult:
    _record(con, source, extract, batch_id, run_id, "unchanged", 0, 0, 0, [], extract.watermark)
    return LoadResult(source.name, "unchanged", watermark=extract.watermark)


def latest_promoted_fingerprint(con: duckdb.DuckDBPyConnection, source: SourceConfig, batch_id: str) -> str | None:
    """The input fingerprint of the source's newest promoted batch (other than `batch_id`, a retry of itself).

    Only the newest counts: staging takes a `replace` source's newest promoted batch and a `merge` source's
    newest version of each key, so an input that went A → B → A must be loaded again — matching the first A
    (promoted, but superseded by B) would keep B in staging while the agency's data says A.
    """
    rows = con.execute(
        "SELECT fingerprint FROM meta.loads WHERE source = ? AND status = 'passed' AND batch_id <> ? "
        "ORDER BY loaded_at DESC, batch_id DESC LIMIT 1", [source.name, batch_id]).fetchall()
    return rows[0][0] if rows else None


def _nothing_to_load(con: duckdb.DuckDBPyConnection, source: SourceConfig, extract: Extract, batch_id: str) -> bool:
    """The same input as the newest promoted batch, or an incremental read that found nothing new."""
    same = extract.fingerprint is not None and extract.fingerprint == latest_promoted_fingerprint(con, source, batch_id)
    nothing_new = extract.n_rows_read == 0 and source.incremental_column and extract.watermark is not None
    return bool(same or nothing_new)


def _stage(con: duckdb.DuckDBPyConnection, source: SourceConfig, extract: Extract, columns: list[str]) -> None:
    """Materialise a single-pass stream into a temp table, so that it can be scanned several times."""
    import duckdb

    name = f"_stage_{source.name}"
    try:
        con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS SELECT * FROM {_VIEW}')
    except duckdb.Error as exc:
        raise _read_error(source, extract.location, exc) from None
    con.unregister(_VIEW)
    con.register(_VIEW, con.table(f'temp."{name}"'))
    extract.cleanup.append(drop_temp(con, name))
    extract.single_pass = False
    extract.n_rows_read = con.execute(f'SELECT count(*) FROM temp."{name}"').fetchall()[0][0]
    if extract.fingerprint is None:
        extract.fingerprint = content_fingerprint(con, f'temp."{name}"', *extract.fingerprint_parts, columns=columns)


def _retyped(con: duckdb.DuckDBPyConnection, source: SourceConfig, extract: Extract, existing: dict[str, str],
             incoming: dict[str, str]) -> list[tuple[str, str]]:
    """Columns whose incoming values no longer fit the type `raw` has (or lose information on the way).

    Only columns whose type differs are checked, so an unchanged schema costs nothing. A value misfits when
    it cannot be cast, or does not come back the same (`'007'` → 7 → `'7'` loses the leading zeros).
    """
    out: list[tuple[str, str]] = []
    for col, typ in incoming.items():
        old = existing.get(col)
        if old is None or old.upper() == typ.upper():
            continue
        cond = (f'("{col}" IS NOT NULL AND (TRY_CAST("{col}" AS {old}) IS NULL '
                f'OR TRY_CAST(TRY_CAST("{col}" AS {old}) AS {typ}) IS DISTINCT FROM "{col}"))')
        [(n_bad, example)] = con.execute(
            f'SELECT count(*), any_value("{col}")::VARCHAR FROM {_VIEW} WHERE {cond}').fetchall()
        if not n_bad:
            continue
        if source.on_drift == "fail":
            raise SourceError(source.name, extract.location,
                              f"column '{col}' changed type: raw.{source.name} has {old}, the input has {typ}, "
                              f"and {n_bad:,} value(s) do not fit (e.g. {example!r})",
                              "fix the export or the source's 'types' option; or set on_drift: quarantine to "
                              "keep such rows out and load the rest")
        out.append((cond, f"column '{col}' does not fit {old}"))
    return out


def _rejected_table(con: duckdb.DuckDBPyConnection, source: SourceConfig) -> str:
    """raw."_rejected_<source>": each held-back row as JSON, its row/line number and the reason (column, value).

    It stays in `raw` (never copied to meta or the snapshot): the row may hold personal data."""
    rejected = f'raw."_rejected_{source.name}"'
    con.execute(f"CREATE TABLE IF NOT EXISTS {rejected} (row_json JSON, _reason VARCHAR, _source VARCHAR, "
                "_batch_id VARCHAR, _loaded_at TIMESTAMPTZ, _row BIGINT)")
    con.execute(f"ALTER TABLE {rejected} ADD COLUMN IF NOT EXISTS _row BIGINT")
    return rejected


def _quarantine(con: duckdb.DuckDBPyConnection, source: SourceConfig, batch_id: str, loaded_at,
                misfits: list[tuple[str, str]]) -> int:
    """Rows that do not fit `raw` go to `raw."_rejected_<source>"` as JSON with the reason; their count."""
    if table_exists(con, "raw", f"_rejected_{source.name}"):
        con.execute(f'DELETE FROM raw."_rejected_{source.name}" WHERE _batch_id = ?', [batch_id])
    if not misfits:
        return 0
    rejected = _rejected_table(con, source)
    reason = "concat_ws('; ', " + ", ".join(f"CASE WHEN {c} THEN {quote_literal(r)} END" for c, r in misfits) + ")"
    where = " OR ".join(c for c, _ in misfits)
    con.execute(f"INSERT INTO {rejected} BY NAME SELECT to_json(t) AS row_json, {reason} AS _reason, ? AS _source, "
                f"? AS _batch_id, ?::TIMESTAMPTZ AS _loaded_at FROM {_VIEW} t WHERE {where}",
                [source.name, batch_id, loaded_at])
    n = con.execute(f"SELECT count(*) FROM {rejected} WHERE _batch_id = ?", [batch_id]).fetchall()[0][0]
    log.warning("source '%s': %s row(s) held back (a value that does not fit, or schema drift), kept in %s",
                source.name, f"{n:,}", rejected)
    return n


def _reader_rejects(con: duckdb.DuckDBPyConnection, source: SourceConfig, extract: Extract, batch_id: str,
                    loaded_at) -> int:
    """Rows the reader set aside while the rows landed (malformed CSV lines, cast errors), into quarantine."""
    if not extract.rejects_sql:
        return 0
    rejected = _rejected_table(con, source)
    before = con.execute(f"SELECT count(*) FROM {rejected} WHERE _batch_id = ?", [batch_id]).fetchall()[0][0]
    for sql in extract.rejects_sql:  # in order: a CSV reject table first, before anything re-reads the file
        con.execute(f"INSERT INTO {rejected} BY NAME SELECT row_json, _reason, ? AS _source, ? AS _batch_id, "
                    f"?::TIMESTAMPTZ AS _loaded_at, _row FROM ({sql})", [source.name, batch_id, loaded_at])
    rows = con.execute(f"SELECT count(*) FROM {rejected} WHERE _batch_id = ?", [batch_id]).fetchall()[0][0] - before
    if not rows:
        return 0
    log.warning("source '%s': %s malformed line(s) held back, kept in %s", source.name, f"{rows:,}", rejected)
    return rows


def _record(con, source: SourceConfig, extract: Extract, batch_id: str, run_id: str, status: str,
            n_read: int, n_loaded: int, n_rejected: int, new_columns: list[str], watermark: str | None) -> None:
    # A retry of the same batch keeps its first load time, so everything built from meta.loads is unchanged.
    earlier = con.execute("SELECT loaded_at FROM meta.loads WHERE batch_id = ? AND source = ?",
                          [batch_id, source.name]).fetchall()
    con.execute("DELETE FROM meta.loads WHERE batch_id = ? AND source = ?", [batch_id, source.name])
    con.execute(
        "INSERT INTO meta.loads (batch_id, run_id, source, kind, location, fingerprint, status, n_rows_read, "
        "n_rows_loaded, n_rows_rejected, new_columns, watermark, loaded_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [batch_id, run_id, source.name, source.kind, redact(extract.location), extract.fingerprint, status, n_read,
         n_loaded, n_rejected, new_columns, watermark, earlier[0][0] if earlier else now()])

