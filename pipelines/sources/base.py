"""The one interface every source kind implements.

A reader turns a configured source into a DuckDB relation plus a fingerprint of its input, without
row-by-row Python: files are read by DuckDB itself or through Arrow. The loader (`pipelines.load`) adds
lineage columns and writes the relation into `raw.<source>` in one transaction.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipelines import locations
from pipelines.errors import SourceError
from pipelines.locations import LocationRefused
from pipelines.redact import mask_shapes, register_secret
from pipelines.sqltext import quote_ident
from pipelines.sqltext import quote_literal as sql_literal

if TYPE_CHECKING:
    import duckdb

    from pipelines.config import SourceConfig
    from pipelines.settings import TenantPaths


@dataclass
class Extract:
    """What a reader hands the loader: the rows (as a relation) and what identifies this input.

    `n_rows_read` is set by readers that know it cheaply (APIs); the loader counts otherwise.
    `cleanup` callbacks drop what the reader staged (temp tables, transcoded files, open connections) once
    the load ends.

    A `single_pass` relation (a database's Arrow stream) can be scanned once: the loader inserts it into
    `raw` directly and, when `fingerprint` is None, fingerprints the landed rows with `fingerprint_parts`
    (what was asked: kind, query, watermark); it stages the stream first only when schema drift must be
    examined, which takes several passes.
    """

    relation: duckdb.DuckDBPyRelation
    fingerprint: str | None
    location: str
    notes: list[str] = field(default_factory=list)
    n_rows_read: int | None = None
    watermark: str | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    single_pass: bool = False
    # True when the reader has checked that every text value is already NFC and holds no BOM (a UTF-8 file
    # with no combining mark U+0300–U+036F and no BOM past its start): the loader then skips normalising
    # values (2.7 s of a 10M-row, 4-text-column load); False means "not checked", and values are normalised.
    text_normal: bool = False
    fingerprint_parts: tuple[object, ...] = ()
    # SQL queries run after the rows landed, giving rows the reader itself set aside (a CSV reader's reject table):
    # columns _row (line), _reason, row_json; the loader keeps them in raw."_rejected_<source>".
    rejects_sql: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReadState:
    """What the loader knows from earlier loads of a source, handed to readers that take `state`.

    `watermark` is the `incremental_column` maximum of the source's last loaded/passed batch (as text).
    """

    watermark: str | None = None
    run_id: str | None = None
    # Whether an input with this fingerprint was already promoted: a reader that can fingerprint before
    # reading (a workbook: a `stat` with the cache) skips the read when it was.
    is_promoted: Callable[[str], bool] | None = None


class SourceReader(Protocol):
    def __call__(self, source: SourceConfig, con: duckdb.DuckDBPyConnection, paths: TenantPaths,
                 state: ReadState | None = None) -> Extract: ...


def _refused(source: SourceConfig, location: str, exc: LocationRefused) -> SourceError:
    return SourceError(source.name, location, f"field 'sources[{source.name}].location' of the tenant file: "
                       f"{exc.problem}", exc.fix)


def _file_location(source: SourceConfig, paths: TenantPaths, tenant_id: str | None) -> Path:
    """The source's location as a path under the tenant's data folder (not resolved yet), vars expanded."""
    if not source.location:
        raise SourceError(source.name, "(no location)", "this file source has no 'location'",
                          "set 'location' in the tenant file")
    try:
        locations.check_path_text(source.location)
        text = locations.expand(source.location, tenant_id)
        locations.check_path_text(text)  # a variable's value may not bring '..' or '~' either
    except LocationRefused as exc:
        raise _refused(source, source.location, exc) from None
    path = Path(text)
    return path if path.is_absolute() else paths.root / path


def resolve_file(source: SourceConfig, paths: TenantPaths, tenant_id: str | None = None) -> Path:
    """A file location: relative to the tenant's data folder (or absolute inside it or an operator-listed
    root), after symlinks; allowed variables expanded (`pipelines.locations`)."""
    path = _file_location(source, paths, tenant_id)
    try:
        locations.confine(path, paths.root)
    except LocationRefused as exc:
        raise _refused(source, source.location or "", exc) from None
    if not path.is_file():
        raise SourceError(source.name, str(path), "file not found",
                          "check the path in the tenant file or that the agency's export arrived")
    return path


def resolve_url(source: SourceConfig, tenant_id: str | None = None) -> str:
    """A URL location with its allowed variables expanded (`http://127.0.0.1:${TONGHOP_DEMO_PORT}/api`).

    A variable that is not set is a clear error naming it, not a URL with `${…}` left in it; a variable
    outside the allow-list or named like a secret is refused (`pipelines.locations`)."""
    location = source.location or ""
    try:
        locations.check_inline_credentials(location, {})
        return locations.expand(location, tenant_id)
    except LocationRefused as exc:
        raise SourceError(source.name, location, exc.problem, exc.fix) from None


def resolve_files(source: SourceConfig, paths: TenantPaths, tenant_id: str | None = None) -> list[Path]:
    """A file location that may be a glob (`exports/*.parquet`): the matching files, sorted, every one
    inside the tenant's data folder (checked after symlinks)."""
    if source.location and glob.has_magic(source.location):
        pattern = _file_location(source, paths, tenant_id)
        found = []
        for match in sorted(glob.glob(str(pattern))):
            try:
                locations.confine(Path(match), paths.root, f"'{Path(match).name}' (matched by the pattern)")
            except LocationRefused as exc:
                raise _refused(source, source.location, exc) from None
            if Path(match).is_file():
                found.append(Path(match))
        if not found:
            raise SourceError(source.name, str(pattern), "no file matches this pattern",
                              "check the pattern in the tenant file or that the agency's export arrived")
        return found
    return [resolve_file(source, paths, tenant_id)]


_FINGERPRINT_CACHE = "meta.file_fingerprints"
_REHASH: ContextVar[bool] = ContextVar("tonghop_rehash", default=False)


@contextmanager
def rehashing() -> Iterator[None]:
    """Inside: file fingerprints are computed from the bytes, never taken from the (path, size, mtime) cache —
    the periodic full check of a source its `stat` probe skipped (`pipelines.sources.probe`)."""
    token = _REHASH.set(True)
    try:
        yield
    finally:
        _REHASH.reset(token)


def file_fingerprint(path: Path, con: duckdb.DuckDBPyConnection | None = None) -> str:
    """Content hash of an input file: the same bytes load once, whatever the file is called.

    XXH3-128 (`xxhash`): 908 MB in 0.09 s here, where sha256 took 0.6 s (with the CPU's SHA extensions),
    an eighth of DuckDB's whole load of that file. The digest identifies an input so that the same bytes
    load once; it is not a signature (an agency able to craft a colliding file could simply not send one).
    With a warehouse connection the hash is remembered per (path, size, mtime, inode, ctime): a re-run over an
    unchanged file costs a `stat`, not a re-read. Size and mtime alone (what `git status` and `rsync` trust)
    miss a same-size replacement that keeps the old mtime (`cp -p`, `rsync -t`, an unzip); the inode changes
    when a file is swapped in, and the ctime whenever its bytes are written, and neither can be set back by
    the tool that copied it. Digests cached before the switch from sha256 stay valid for their files.
    """
    return _fingerprint(path, con if con is not None and _has_cache(con) else None)


def _fingerprint(path: Path, cache: duckdb.DuckDBPyConnection | None) -> str:
    """`file_fingerprint` with the cache (meta.file_fingerprints, warehouse/meta/schema.sql) known to be there."""
    stat = path.stat()
    key = [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    change = [stat.st_ino, stat.st_ctime_ns]
    if cache is not None:
        hit = [] if _REHASH.get() else cache.execute(
            f"SELECT fingerprint FROM {_FINGERPRINT_CACHE} WHERE path = ? AND size = ? AND mtime_ns = ? "
            "AND ino = ? AND ctime_ns = ?", key + change).fetchall()
        if hit:
            return hit[0][0]
    import xxhash

    with path.open("rb") as fh:
        digest = "xxh3_128:" + hashlib.file_digest(fh, xxhash.xxh3_128).hexdigest()
    if cache is not None:
        cache.execute(f"INSERT OR REPLACE INTO {_FINGERPRINT_CACHE} (path, size, mtime_ns, fingerprint, ino, "
                      "ctime_ns) VALUES (?, ?, ?, ?, ?, ?)", [*key, digest, *change])
    return digest


def files_fingerprint(files: list[Path], con: duckdb.DuckDBPyConnection | None = None) -> str:
    """One file's hash, or for several the hash of their sorted hashes (order and names do not matter)."""
    cache = con if con is not None and _has_cache(con) else None  # asked once for the whole set
    digests = sorted(_fingerprint(f, cache) for f in files)
    if len(digests) == 1:
        return digests[0]
    import xxhash

    return "xxh3_128:" + xxhash.xxh3_128_hexdigest("\n".join(digests).encode())


def _has_cache(con: duckdb.DuckDBPyConnection) -> bool:
    """A warehouse connection (`pipelines.warehouse.connect` created the cache table with the meta schema)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND table_name = "
                            "'file_fingerprints' AND database_name = current_database()").fetchall()[0][0])


def source_options(source: SourceConfig) -> dict[str, Any]:
    """A copy of the source's options as `SourceConfig` checked them against its kind's `Options` (names,
    types, formats: `pipelines.sources.options`), defaults filled in: readers never re-check names."""
    return dict(source.options)


def secret(source: SourceConfig, what: str) -> str | None:
    """The source's secret (DSN, token): from `connection.env`, or an Airflow connection inside Airflow."""
    ref = source.connection
    if ref is None:
        return None
    if ref.env:
        value = os.environ.get(ref.env)
        if not value:
            raise SourceError(source.name, f"${ref.env}", f"environment variable {ref.env} is not set",
                              f"set {ref.env} to the {what} (secrets never go in the tenant file)")
        register_secret(value)  # masked wherever it might appear from now on (messages, logs, records)
        return value
    try:
        from airflow.sdk import Connection
    except ImportError:  # pragma: no cover - airflow is a dependency, but keep the message if it is absent
        raise SourceError(source.name, f"airflow:{ref.airflow_conn_id}", "Airflow is not installed",
                          "use 'connection: {env: VAR}' outside Airflow") from None
    try:
        conn = Connection.get(ref.airflow_conn_id)
    except Exception as exc:
        raise SourceError(source.name, f"airflow:{ref.airflow_conn_id}",
                          f"cannot get the Airflow connection ({type(exc).__name__}: {exc})",
                          "create the connection in Airflow, or use 'connection: {env: VAR}' outside a task"
                          ) from None
    register_secret(conn.password)
    register_secret(conn.extra_dejson.get("token"))
    if what == "connection string":
        uri = conn.get_uri()
        register_secret(uri)
        return uri
    return conn.password or conn.extra_dejson.get("token")


def redact_dsn(dsn: str) -> str:
    """A connection string without its password, fit for logs and meta.loads."""
    return mask_shapes(dsn)


def apply_types(source: SourceConfig, location: str, rel: duckdb.DuckDBPyRelation,
                types: dict[str, str] | None) -> duckdb.DuckDBPyRelation:
    """Cast the columns named in `options.types`; naming a column the input lacks is an error."""
    if not types:
        return rel
    missing = sorted(set(types) - set(rel.columns))
    if missing:
        raise SourceError(source.name, location, f"'types' names column(s) not in the input: {missing}",
                          f"columns found: {rel.columns}")
    cols = ", ".join(f'CAST("{c}" AS {types[c]}) AS "{c}"' if c in types else f'"{c}"' for c in rel.columns)
    return rel.project(cols)


def after_watermark(rel: duckdb.DuckDBPyRelation, column: str | None,
                    watermark: str | None) -> duckdb.DuckDBPyRelation:
    """Rows strictly after the stored watermark (for sources that cannot filter at the origin)."""
    if not column or watermark is None or column not in rel.columns:
        return rel
    typ = dict(zip(rel.columns, [str(t) for t in rel.types], strict=True))[column]
    return rel.filter(f'"{column}" > TRY_CAST({sql_literal(watermark)} AS {typ})')


def stage_arrow(con: duckdb.DuckDBPyConnection, name: str, data: Any) -> tuple[duckdb.DuckDBPyRelation, int]:
    """Materialise Arrow data (table or record-batch stream) once into a temp table DuckDB can re-read."""
    con.register(f"{name}_arrow", data)
    try:
        con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS SELECT * FROM "{name}_arrow"')
    finally:
        con.unregister(f"{name}_arrow")
    n = con.execute(f'SELECT count(*) FROM temp."{name}"').fetchall()[0][0]
    return con.table(f'temp."{name}"'), n


def content_fingerprint(con: duckdb.DuckDBPyConnection, table: str, *parts: object,
                        columns: list[str] | None = None, where: str = "") -> str:
    """sha256 of what was asked (query/URL, watermark range) and an order-independent hash of the rows.

    With `columns`, only those are hashed (and faster: no row struct is built), e.g. a batch in `raw`
    without its lineage columns, filtered by `where`.
    """
    row = "hash(" + ", ".join(quote_ident(c) for c in columns) + ")" if columns else "hash(t)"
    n, h = con.execute(f"SELECT count(*), coalesce(sum({row})::VARCHAR, '0') FROM {table} t {where}").fetchall()[0]
    text = "\x1f".join(str(p) for p in (*parts, n, h))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> Callable[[], None]:
    return lambda: con.execute(f'DROP TABLE IF EXISTS temp."{name}"')
