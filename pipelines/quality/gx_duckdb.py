"""Make Great Expectations' SQL execution engine work on DuckDB (SQL pushdown, no pandas copy).

What breaks
-----------
With ``duckdb-engine`` 0.17 every metric that GX 1.x computes through a SQL datasource on a
DuckDB file comes back empty: ``SqlAlchemyExecutionEngine.resolve_metric_bundle`` fails with
``IndexError: list index out of range`` on ``res[0]`` and every expectation reports
``exception_info`` / "Observed: N/A" (upstream great_expectations issues #10738 and #11579).

Why
---
``SqlAlchemyExecutionEngine.execute_query`` (great_expectations/execution_engine/
sqlalchemy_execution_engine.py) does::

    with self.get_connection() as connection:          # -> `with engine.connect()`
        result = connection.execute(query)
    return result                                       # caller then does result.fetchall()

so the rows are read only *after* the SQLAlchemy connection was closed. Closing it ends the
transaction SQLAlchemy auto-began (duckdb-engine's ``do_begin`` really runs ``BEGIN``), i.e. it
calls ``ROLLBACK`` on the DBAPI connection. Drivers whose cursors own their result (psycopg2,
sqlite3) survive that. duckdb-engine's ``CursorWrapper`` does not own anything: every
"cursor" it hands out is a proxy over the one ``DuckDBPyConnection``, and a DuckDB connection
holds exactly one pending result, discarded by the next statement run on it -- here the
``ROLLBACK``. ``fetchall()`` then returns ``[]`` and GX indexes into an empty list. Pool
settings cannot help: the rollback comes from ``Connection.close()`` itself.

The fix
-------
``GxDuckDBDialect`` is duckdb-engine's dialect whose DBAPI cursors are real, independent
DuckDB cursors: ``cursor()`` returns duckdb-engine's own ``CursorWrapper`` around
``DuckDBPyConnection.cursor()`` (DuckDB's documented way to get a separate result/connection
on the same database) instead of around the shared connection. The ``ROLLBACK`` on the parent
no longer touches a pending result, so GX's read-after-close returns the rows. Results stay
lazy (DuckDB streams them), so e.g. GX's column-name probe that executes the whole batch query
and only reads ``cursor.description`` does not pull the batch into Python.

* Nothing in GX or duckdb-engine is patched; GX remains the engine that runs the expectations,
  which compile to SQL executed inside DuckDB. Only engines built from a ``duckdb+gx://`` URL
  (see :func:`connection_string`) use this dialect.
* Each statement runs on its own cursor, i.e. outside the parent connection's transaction.
  That is irrelevant for validation (read-only, single-statement aggregates) and the dialect is
  meant for nothing else: :func:`connection_string` opens the file ``access_mode=READ_ONLY``.
* Every DuckDB connection/cursor the dialect opens is tracked. Closing a parent connection
  closes its cursors (a forgotten, unconsumed GX result would otherwise keep DuckDB's file lock)
  and :func:`release` disposes engines and force-closes their stragglers, so the caller can reopen
  the file read-write right after validation -- in this process or another one.

Second gap: regular expressions
-------------------------------
GX builds regex conditions in ``expectations.metrics.util.get_dialect_regex_expression``,
which only knows dialects by their SQLAlchemy *module* (postgres, sqlite, mysql, ...). For
DuckDB GX has no dialect module, so ``expect_column_values_to_match_regex`` raises
``NotImplementedError: Regex is not supported for dialect duckdb``.
:func:`install_regex_support` wraps that one function: for a DuckDB dialect it returns
``regexp_matches(column, regex)`` (DuckDB's partial-match function, the same semantics as
``re.search`` that GX uses for pandas) and ``NOT regexp_matches(...)`` for the negative form;
every other dialect goes to GX's original code unchanged. The wrapper is installed in GX's
``util`` module and in the metric modules that imported the function by name.

Remove this module once GX reads results inside the connection block or ships a native DuckDB
engine (PR #12084): ``tests/quality/test_gx_duckdb.py::test_unfixed_gx_sql_path_returns_no_rows``
starts failing when the upstream bug is gone.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from duckdb_engine import ConnectionWrapper, CursorWrapper
from duckdb_engine import Dialect as _DuckDBDialect
from sqlalchemy.dialects import registry

__all__ = [
    "DRIVER",
    "GxDuckDBDialect",
    "connection_string",
    "install_regex_support",
    "install_uniqueness_pushdown",
    "open_connection_count",
    "quiet_gx",
    "register_dialect",
    "release",
]

DRIVER = "gx"
"""SQLAlchemy driver name: URLs look like ``duckdb+gx:////abs/path.duckdb``."""

_NOISY_LOGGERS = ("great_expectations", "altair", "tzlocal")

# GX modules that did `from ...metrics.util import get_dialect_regex_expression`
_REGEX_USERS = (
    "great_expectations.expectations.metrics.column_map_metrics.column_values_match_regex",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_not_match_regex",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_match_regex_list",
    "great_expectations.expectations.metrics.column_map_metrics.column_values_not_match_regex_list",
    "great_expectations.expectations.metrics.column_aggregate_metrics.column_values_match_regex_values",
    "great_expectations.expectations.metrics.column_aggregate_metrics.column_values_not_match_regex_values",
)


class _IndependentCursor(CursorWrapper):
    """duckdb-engine's cursor wrapper around its *own* DuckDB cursor (own pending result)."""

    def __init__(self, duck_cursor: Any, connection_wrapper: _CursorOwningConnection) -> None:
        super().__init__(duck_cursor, connection_wrapper)
        self._duck_cursor = duck_cursor
        self.closed = False

    def close(self) -> None:  # duckdb-engine's is a no-op; ours frees the DuckDB cursor
        if not self.closed:
            self.closed = True
            self._duck_cursor.close()


class _CursorOwningConnection(ConnectionWrapper):
    """duckdb-engine's connection wrapper handing out independent cursors."""

    def __init__(self, duck_connection: Any) -> None:
        super().__init__(duck_connection)
        self._duck = duck_connection
        # our cursors; one that is garbage-collected takes its DuckDB cursor with it
        self._cursors: weakref.WeakSet[_IndependentCursor] = weakref.WeakSet()

    def cursor(self) -> _IndependentCursor:
        cursor = _IndependentCursor(self._duck.cursor(), self)
        self._cursors.add(cursor)
        return cursor

    def open_cursor_count(self) -> int:
        return sum(1 for c in list(self._cursors) if not c.closed)

    def close(self) -> None:
        for cursor in list(self._cursors):
            cursor.close()
        super().close()


class GxDuckDBDialect(_DuckDBDialect):
    """duckdb-engine dialect with independent cursors, for GX validation (see module doc)."""

    driver = DRIVER
    supports_statement_cache = False  # same as the parent dialect

    # database path -> DBAPI connections opened by any engine of this dialect (diagnostics)
    _by_path: dict[str, weakref.WeakSet[_CursorOwningConnection]] = {}
    _by_path_lock = threading.Lock()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # one dialect instance per engine: the DBAPI connections *this* engine opened
        self.opened: weakref.WeakSet[_CursorOwningConnection] = weakref.WeakSet()

    def connect(self, *cargs: Any, **cparams: Any) -> _CursorOwningConnection:
        wrapper = super().connect(*cargs, **cparams)
        duck = getattr(wrapper, "_ConnectionWrapper__c", None)  # duckdb-engine 0.17 private attr
        if duck is None:  # pragma: no cover - only if duckdb-engine's internals change
            wrapper.close()
            raise RuntimeError("duckdb-engine changed: cannot reach the DuckDB connection to wrap")
        conn = _CursorOwningConnection(duck)
        self.opened.add(conn)
        key = _path_key(cparams.get("database", cargs[0] if cargs else ""))
        with self._by_path_lock:
            for stale in [k for k, v in self._by_path.items() if not v]:
                del self._by_path[stale]
            self._by_path.setdefault(key, weakref.WeakSet()).add(conn)
        return conn


def _path_key(database: str | os.PathLike[str]) -> str:
    text = os.fspath(database)
    return text if text in ("", ":memory:") else str(Path(text).resolve())


def register_dialect() -> None:
    """Register ``duckdb+gx://`` with SQLAlchemy (idempotent, process-wide, cheap)."""
    registry.register(f"duckdb.{DRIVER}", __name__, "GxDuckDBDialect")


def connection_string(db_path: Path | str, *, read_only: bool = True, settings: dict | None = None) -> str:
    """SQLAlchemy URL for ``db_path`` using :class:`GxDuckDBDialect` (registers it if needed).

    ``settings`` are DuckDB configuration options (e.g. ``{"memory_limit": "600MB"}``), passed by
    duckdb-engine to ``duckdb.connect(config=...)``.
    """
    from urllib.parse import urlencode

    register_dialect()
    url = f"duckdb+{DRIVER}:///{Path(db_path).resolve().as_posix()}"
    params = {**({"access_mode": "READ_ONLY"} if read_only else {}), **(settings or {})}
    return f"{url}?{urlencode(params)}" if params else url


def open_connection_count(db_path: Path | str) -> int:
    """DuckDB connections + cursors that engines of this dialect still hold open on ``db_path``."""
    with GxDuckDBDialect._by_path_lock:
        conns = list(GxDuckDBDialect._by_path.get(_path_key(db_path), ()))
    return sum(c.open_cursor_count() + 1 for c in conns if not c.closed)


def release(*engines: Any) -> int:
    """Dispose ``engines`` and close every DuckDB connection/cursor they opened.

    ``Engine.dispose()`` only closes connections that are back in the pool; anything still
    checked out (e.g. held by a forgotten result) is closed here. Returns how many connections
    had to be force-closed that way (0 when the engines released everything themselves).
    """
    forced = 0
    for engine in engines:
        if engine is None:
            continue
        engine.dispose()
        for conn in list(getattr(engine.dialect, "opened", ())):
            if not conn.closed:
                conn.close()
                forced += 1
    return forced


def install_regex_support() -> None:
    """Teach GX's regex helper about DuckDB (idempotent; imports GX; see module doc)."""
    from great_expectations.expectations.metrics import util

    original = util.get_dialect_regex_expression
    if getattr(original, "_duckdb_wrapper", False):
        return

    def get_dialect_regex_expression(column, regex, dialect, positive=True):  # type: ignore[no-untyped-def]
        if getattr(dialect, "name", None) == "duckdb":  # a DuckDB Dialect (GX has no module for it)
            matches = sa.func.regexp_matches(column, sa.literal(regex))
            return matches if positive else sa.not_(matches)
        return original(column, regex, dialect, positive=positive)

    get_dialect_regex_expression._duckdb_wrapper = True  # type: ignore[attr-defined]
    get_dialect_regex_expression.__wrapped__ = original  # type: ignore[attr-defined]
    util.get_dialect_regex_expression = get_dialect_regex_expression
    for name in _REGEX_USERS:
        module = importlib.import_module(name)
        if getattr(module, "get_dialect_regex_expression", None) is original:
            module.get_dialect_regex_expression = get_dialect_regex_expression


# metric -> how its domain names the key columns
_UNIQUENESS_METRICS = {
    "column_values.unique.unexpected_count": "column",
    "compound_columns.unique.unexpected_count": "column_list",
}


def install_uniqueness_pushdown() -> None:
    """Count duplicate keys on DuckDB with one GROUP BY instead of GX's window/join (idempotent).

    GX computes ``column_values.unique.unexpected_count`` as ``count(*) OVER (PARTITION BY col)``
    over every row, and ``compound_columns.unique.unexpected_count`` by joining the batch back to
    its grouped counts. Both give the right number, but on DuckDB they cost 2-5x a plain
    aggregate: at 10M distinct ids the window alone took ~9 s where
    ``sum(n) FROM (SELECT count(*) n ... GROUP BY key HAVING count(*) > 1)`` takes ~1 s.

    This wraps the registered SQL provider of those two metrics: on a DuckDB dialect it runs the
    aggregate over the same domain (``get_domain_records`` applies ``row_condition`` and
    ``ignore_row_if``) with GX's NULL semantics -- a NULL key is never unexpected (column map
    metrics skip NULLs; the compound join never matches a NULL) -- and every other dialect goes to
    GX's code unchanged. Users still write ``ExpectColumnValuesToBeUnique`` /
    ``ExpectCompoundColumnsToBeUnique``; only the SQL that counts changes. Row samples (not
    requested by our result format) still come from GX's own queries.
    """
    from great_expectations.expectations.registry import _registered_metrics

    for metric_name, domain_key in _UNIQUENESS_METRICS.items():
        providers = _registered_metrics[metric_name]["providers"]
        metric_class, original = providers["SqlAlchemyExecutionEngine"]
        if getattr(original, "_duckdb_wrapper", False):
            continue
        providers["SqlAlchemyExecutionEngine"] = (metric_class, _duplicate_count_provider(original, domain_key))


def _duplicate_count_provider(original: Any, domain_key: str) -> Any:
    def unexpected_count(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics,  # type: ignore[no-untyped-def]
                         **kwargs):
        if execution_engine.dialect_name != "duckdb":
            return original(cls, execution_engine=execution_engine, metric_domain_kwargs=metric_domain_kwargs,
                            metric_value_kwargs=metric_value_kwargs, metrics=metrics, **kwargs)
        from great_expectations.util import get_sqlalchemy_selectable

        keys = metric_domain_kwargs[domain_key]
        keys = [keys] if isinstance(keys, str) else list(keys)
        domain = get_sqlalchemy_selectable(execution_engine.get_domain_records(domain_kwargs=metric_domain_kwargs))
        rows = domain.subquery() if isinstance(domain, sa.Select) else domain
        key_columns = [sa.column(k) for k in keys]
        groups = (sa.select(sa.func.count().label("n")).select_from(rows)
                  .where(*(c.is_not(None) for c in key_columns))
                  .group_by(*key_columns).having(sa.func.count() > 1).subquery("duplicate_keys"))
        query = sa.select(sa.func.coalesce(sa.func.sum(groups.c.n), 0))
        return int(execution_engine.execute_query(query).fetchone()[0])

    unexpected_count._duckdb_wrapper = True  # type: ignore[attr-defined]
    unexpected_count.__wrapped__ = original  # type: ignore[attr-defined]
    unexpected_count.metric_fn_type = getattr(original, "metric_fn_type", None)  # type: ignore[attr-defined]
    return unexpected_count


def quiet_gx() -> None:
    """Silence GX's import/run chatter and turn its analytics off (call before importing GX)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
