"""Run Great Expectations suites against DuckDB queries, as SQL inside DuckDB.

Suites live in a file-based GX project (``<expectations_dir>/gx/``), one JSON file per table
under ``gx/expectations/<table>.json``, kept in version control. Each expectation may carry
``meta: {"severity": "block" | "warn"}`` (default ``block``; without ``meta.severity`` GX's own
``severity`` field is honoured: ``critical`` -> block, ``warning``/``info`` -> warn). An
expectation GX could not evaluate (SQL error, unsupported metric) is reported as failed, with
``ExpectationOutcome.error`` set, so a broken ``block`` check blocks rather than passes.

:func:`validate_query` builds a throw-away *ephemeral* GX context holding one SQL datasource
(``duckdb+gx://``, read-only, see :mod:`pipelines.quality.gx_duckdb` for why) with a query asset
for the caller's ``SELECT``; GX compiles each expectation into aggregate SQL run by DuckDB.
Nothing is written to the GX project (no datasource is persisted in ``great_expectations.yml``),
so concurrent Airflow tasks and CLI runs can share it. Every engine/connection is released
before returning.

GX is imported lazily: importing this module costs nothing; the first call pays GX's import.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "ExpectationOutcome",
    "SuiteOutcome",
    "build_data_docs",
    "find_suite",
    "known_suites",
    "load_suite",
    "merge_expectations",
    "source_expectations",
    "suite_path",
    "validate_expectations",
    "validate_query",
]

logger = logging.getLogger(__name__)

SEVERITIES = ("block", "warn")
DEFAULT_SEVERITY = "block"
# Counts only: no sample of offending values is copied into results/Data Docs (the tables hold
# personal data: so_cccd, so_dien_thoai, ho_ten). Raise partial_unexpected_count to get samples.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0}
# DuckDB settings of every validation connection unless the caller passes its own: a memory cap (DuckDB
# spills to `<db>.tmp` instead of growing past it, read-only files included) and no insertion-order
# bookkeeping, which counts never need. At 10M rows the GX process then peaks ~840 MB instead of ~1.0 GB
# (benchmarks/bench_quality.py, docs/performance.md).
VALIDATION_DUCKDB_SETTINGS = {"memory_limit": "600MB", "preserve_insertion_order": "false"}


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation_type: str
    column: str | None
    severity: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    observed_value: str | None
    description: str
    error: str | None = None  # set when GX could not evaluate the check (counted as a failure)


@dataclass
class SuiteOutcome:
    suite_name: str
    run_name: str
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    result_path: Path | None = None  # the validation result JSON, when results_dir was given
    # the suite's expectations as plain dicts (type, kwargs, meta, severity, description), in suite order:
    # what pipelines.quality.rowchecks translates into SQL for quarantine and scores
    expectations: list[dict] = field(default_factory=list)

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "block"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warn"]

    @property
    def success(self) -> bool:
        return not self.blocking_failures

    @property
    def n_passed(self) -> int:
        return sum(1 for o in self.outcomes if o.success)

    @property
    def n_failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.success)


# --------------------------------------------------------------------------- GX project


def _gx_root(expectations_dir: Path) -> Path:
    return Path(expectations_dir) / "gx"


def suite_path(expectations_dir: Path, suite_name: str) -> Path:
    """Where the JSON of ``suite_name`` lives (whether or not it exists)."""
    return _gx_root(expectations_dir) / "expectations" / f"{suite_name}.json"


def _file_context(expectations_dir: Path) -> Any:
    """The GX file context rooted at ``expectations_dir`` (must already exist: never scaffolds)."""
    from pipelines.quality.gx_duckdb import quiet_gx

    quiet_gx()
    import great_expectations as gx

    return gx.get_context(mode="file", project_root_dir=str(expectations_dir))


def load_suite(expectations_dir: Path, suite_name: str) -> Any:
    """Load a suite by name from the file context; ``LookupError`` with guidance if missing."""
    expectations_dir = Path(expectations_dir)
    config = _gx_root(expectations_dir) / "great_expectations.yml"
    expected = suite_path(expectations_dir, suite_name)
    if not config.is_file() or not expected.is_file():
        where = (
            f"the GX project in {expectations_dir.resolve()}"
            if config.is_file()
            else f"{expectations_dir.resolve()} (no GX project there: {config} is missing)"
        )
        raise LookupError(
            f"Expectation suite {suite_name!r} was not found in {where}; "
            f"create {expected} (one suite per table, named after the table) "
            f"or pass the right expectations_dir."
        )
    from great_expectations.exceptions import DataContextError

    try:
        return _file_context(expectations_dir).suites.get(suite_name)
    except DataContextError as exc:  # file exists but GX cannot read it (e.g. name mismatch)
        raise LookupError(
            f"Expectation suite {suite_name!r} could not be loaded from {expected}: {exc}. "
            f"Check that the file's 'name' field is {suite_name!r} and that it is valid suite JSON."
        ) from exc


# --------------------------------------------------------------------------- a source's checks
#
# Every source that feeds a shared contract is checked by the contract's baseline expectations
# (pipelines.contracts.baseline_expectations); its own suite (`expectation_suite:`, a core suite in
# expectations/gx/expectations/ or a tenant suite in tenants/<tenant>/expectations/) adds to them. An
# expectation of the suite with the same type and kwargs as a baseline one replaces it (the reviewed suite
# decides its severity). Rules: expectations/README.md, "Baseline checks from the contract".


def tenant_suites_dir(tenant_id: str) -> Path:
    """Where a tenant's own suites live (it need not exist)."""
    from pipelines.settings import tenants_dir

    return tenants_dir() / tenant_id / "expectations"


def known_suites(tenant_id: str | None, expectations_dir: Path) -> dict[str, Path]:
    """Every suite a tenant's source may name: the core ones, then the tenant's own (``*.suggested.json``,
    drafts of ``tonghop suggest-suite``, are not suites until renamed)."""
    found = {p.stem: p for p in sorted((_gx_root(Path(expectations_dir)) / "expectations").glob("*.json"))}
    if tenant_id:
        for p in sorted(tenant_suites_dir(tenant_id).glob("*.json")):
            if not p.name.endswith(".suggested.json"):
                found.setdefault(p.stem, p)  # a clash with a core suite is a config error (crossrefs)
    return found


def find_suite(suite_name: str, tenant_id: str | None, expectations_dir: Path) -> Path | None:
    return known_suites(tenant_id, expectations_dir).get(suite_name)


def _dict_severity(e: dict) -> str:
    meta = e.get("meta") or {}
    if "severity" in meta:
        value = str(meta["severity"]).strip().lower()
        if value not in SEVERITIES:
            raise ValueError(f"{e.get('type')}: meta.severity must be one of {SEVERITIES}, got {meta['severity']!r}")
        return value
    native = str(e.get("severity") or "critical").lower()
    return DEFAULT_SEVERITY if native == "critical" else "warn"


def read_suite_file(path: Path) -> list[dict]:
    """A suite JSON file's expectations as dicts (type, kwargs, meta, severity, description); ValueError with
    the file named when it is not a suite."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        raw = doc["expectations"]
        out = []
        for e in raw:
            kwargs = {k: v for k, v in dict(e.get("kwargs") or {}).items() if k != "batch_id"}
            out.append({"type": str(e["type"]), "kwargs": kwargs, "meta": dict(e.get("meta") or {}),
                        "severity": _dict_severity(e),
                        "description": e.get("description") or describe(str(e["type"]), kwargs)})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable expectation suite ({type(exc).__name__}: {exc}) — it needs "
                         "'name' and a list 'expectations' of {type, kwargs, meta}") from None
    return out


def expectation_key(e: dict) -> str:
    """Type + kwargs: two expectations with the same key are one check."""
    return json.dumps([e["type"], e["kwargs"]], sort_keys=True, default=str)


def merge_expectations(own: list[dict], baseline: list[dict]) -> list[dict]:
    """The source's own suite first (its order kept), then each baseline expectation it does not already have."""
    seen = {expectation_key(e) for e in own}
    return [*own, *(e for e in baseline if expectation_key(e) not in seen)]


def source_expectations(tenant: Any, source: Any, raw_columns: dict[str, str] | None,
                        expectations_dir: Path) -> tuple[str, list[dict]] | None:
    """(suite name, expectations) that check a source's raw batches: contract baseline + own suite; None when
    the source has neither (it is promoted unchecked). ``raw_columns``: the raw table's column → type."""
    from pipelines.contracts import baseline_expectations, load_contracts

    own: list[dict] = []
    name = source.expectation_suite
    if name is not None:
        path = find_suite(name, tenant.tenant_id, expectations_dir)
        if path is None:
            raise LookupError(f"source '{source.name}': expectation_suite '{name}' was not found — expected "
                              f"{suite_path(expectations_dir, name)} or {tenant_suites_dir(tenant.tenant_id)}/{name}"
                              f".json (known: {', '.join(known_suites(tenant.tenant_id, expectations_dir)) or '—'})")
        own = read_suite_file(path)
    baseline: list[dict] = []
    if source.contract:
        c = load_contracts().get(source.contract)
        if c is not None:
            baseline = baseline_expectations(c, source, raw_columns,
                                             columns=None if raw_columns is None else set(raw_columns))
    if not own and not baseline:
        return None
    return name or f"contract_{source.contract}", merge_expectations(own, baseline)


def _suite_from_dicts(suite_name: str, expectations: list[dict]) -> Any:
    from pipelines.quality.gx_duckdb import quiet_gx

    quiet_gx()
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    configs = []
    for e in expectations:
        meta = {**(e.get("meta") or {}), "severity": e["severity"]}
        try:
            configs.append(ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=meta,
                                                    description=e.get("description")).to_domain_obj())
        except Exception as exc:  # noqa: BLE001 — GX raises many kinds; one line naming the check instead
            raise ValueError(f"suite '{suite_name}': expectation {e['type']} {e['kwargs']} is not valid in "
                             f"Great Expectations ({first_line_of(exc)}) — fix it in the suite file") from None
    return ExpectationSuite(name=suite_name, expectations=configs)


def first_line_of(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --------------------------------------------------------------------------- running


@contextmanager
def _duckdb_query_batch(db_path: Path, query: str, settings: dict | None = None) -> Iterator[Any]:
    """Yield a GX Batch for ``query`` on ``db_path``; release every DuckDB connection on exit."""
    from pipelines.quality import gx_duckdb

    gx_duckdb.quiet_gx()
    import great_expectations as gx

    gx_duckdb.install_regex_support()
    gx_duckdb.install_uniqueness_pushdown()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )
    datasource = None
    try:
        datasource = context.data_sources.add_sql(
            name="duckdb",
            connection_string=gx_duckdb.connection_string(db_path, read_only=True, settings=settings),
            create_temp_table=False,  # no temp copies, not even inside DuckDB
        )
        asset = datasource.add_query_asset(name="query", query=query)
        batch = asset.add_batch_definition_whole_table("whole").get_batch()
        yield batch
    finally:
        engines = []
        if datasource is not None:
            engines.append(datasource._engine)
            if datasource._execution_engine is not None:
                engines.append(datasource._execution_engine.engine)
        forced = gx_duckdb.release(*engines)
        if forced:  # engines should have closed everything; this is the safety net working
            logger.debug("force-closed %d DuckDB connection(s) on %s", forced, db_path)


def _severity(config: Any) -> str:
    """``meta.severity`` ("block"/"warn"); else GX's own ``severity`` (critical->block, else warn)."""
    meta = dict(config.meta or {})
    if "severity" in meta:
        value = str(meta["severity"]).strip().lower()
        if value not in SEVERITIES:
            raise ValueError(
                f"{config.type}: meta.severity must be one of {SEVERITIES}, got {meta['severity']!r}"
            )
        return value
    native = getattr(config, "severity", None)
    native = str(getattr(native, "value", native) or "critical").lower()
    return DEFAULT_SEVERITY if native == "critical" else "warn"


def _column_of(kwargs: dict) -> str | None:
    if kwargs.get("column") is not None:
        return str(kwargs["column"])
    if kwargs.get("column_A") is not None:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    if kwargs.get("column_list"):
        return ",".join(map(str, kwargs["column_list"]))
    return None


def describe(expectation_type: str, kwargs: dict) -> str:
    """Short human sentence for an expectation (used when it has no ``description``)."""
    col = kwargs.get("column")
    t = expectation_type
    if t == "expect_table_row_count_to_be_between":
        lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
        if hi is None:
            return f"table must have at least {lo} row(s)"
        if lo is None:
            return f"table must have at most {hi} row(s)"
        return f"table must have between {lo} and {hi} rows"
    if t == "expect_column_values_to_not_be_null":
        return f"{col} must not be null"
    if t == "expect_column_values_to_be_unique":
        return f"{col} must be unique"
    if t == "expect_column_values_to_be_in_set":
        values = ", ".join(repr(v) for v in kwargs.get("value_set") or [])
        return f"{col} must be one of {{{values}}}"
    if t == "expect_column_values_to_match_regex":
        return f"{col} must match {kwargs.get('regex')}"
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        op = ">=" if kwargs.get("or_equal") else ">"
        text = f"{kwargs.get('column_A')} must be {op} {kwargs.get('column_B')}"
        if kwargs.get("ignore_row_if") == "either_value_is_missing":
            text += " when both are set"
        return text
    target = f" on {_column_of(kwargs)}" if _column_of(kwargs) else ""
    return f"{t.removeprefix('expect_').replace('_', ' ')}{target}"


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _outcome(result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
    details: dict = dict(result.result or {})
    exc = result.exception_info or {}
    # exception_info is either {"raised_exception": ...} or {metric_id: {...}, ...}
    infos = [exc] if "raised_exception" in exc else [v for v in exc.values() if isinstance(v, dict)]
    errors = [i.get("exception_message") for i in infos if i.get("raised_exception")]
    observed = details.get("observed_value")
    percent = details.get("unexpected_percent")
    return ExpectationOutcome(
        expectation_type=config.type,
        column=_column_of(kwargs),
        severity=_severity(config),
        success=bool(result.success) and not errors,
        element_count=_as_int(details.get("element_count")),
        unexpected_count=_as_int(details.get("unexpected_count")),
        unexpected_percent=None if percent is None else float(percent),
        observed_value=None if observed is None else str(observed),
        description=getattr(config, "description", None) or describe(config.type, kwargs),
        error="; ".join(str(e) for e in errors) if errors else None,
    )


def _signature(config: Any) -> str:
    """Identity of an expectation that survives suites without ``id`` fields."""
    kwargs = {k: v for k, v in dict(config.kwargs).items() if k != "batch_id"}
    return json.dumps([config.type, kwargs], sort_keys=True, default=str)


def _result_filename(run_name: str, suite_name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{run_name}__{suite_name}").strip("._")
    return f"{safe}.json"


def validate_query(
    db_path: Path,
    query: str,
    suite_name: str,
    *,
    expectations_dir: Path,
    run_name: str,
    results_dir: Path | None = None,
    duckdb_settings: dict | None = None,
) -> SuiteOutcome:
    """Validate the rows of ``query`` (a SELECT over the DuckDB file ``db_path``) with a suite.

    Runs as SQL inside DuckDB through GX's SQL datasource (no DataFrame of the table is built),
    opens ``db_path`` read-only itself and releases every connection before returning.
    ``duckdb_settings`` defaults to :data:`VALIDATION_DUCKDB_SETTINGS` (pass ``{}`` for DuckDB's own).
    Raises ``LookupError`` if the suite is missing, ``FileNotFoundError`` if ``db_path`` is.
    """
    suite = load_suite(Path(expectations_dir), suite_name)  # fail fast before touching the DB
    return _validate_suite(Path(db_path), query, suite, run_name=run_name, results_dir=results_dir,
                           duckdb_settings=duckdb_settings)


def validate_expectations(
    db_path: Path,
    query: str,
    suite_name: str,
    expectations: list[dict],
    *,
    run_name: str,
    results_dir: Path | None = None,
    duckdb_settings: dict | None = None,
) -> SuiteOutcome:
    """As :func:`validate_query`, for a suite built in memory from expectation dicts (type, kwargs, meta,
    severity, description) — a source's contract baseline merged with its own suite
    (:func:`source_expectations`). Nothing is written to the GX project."""
    return _validate_suite(Path(db_path), query, _suite_from_dicts(suite_name, expectations), run_name=run_name,
                           results_dir=results_dir, duckdb_settings=duckdb_settings)


def _validate_suite(db_path: Path, query: str, suite: Any, *, run_name: str, results_dir: Path | None,
                    duckdb_settings: dict | None) -> SuiteOutcome:
    from pipelines.quality.rowchecks import expectation_dicts

    suite_name = suite.name
    for expectation in suite.expectations:
        _severity(expectation.configuration)  # a typo in meta.severity fails before running
    if not db_path.is_file():
        raise FileNotFoundError(f"DuckDB file {db_path} does not exist; nothing to validate.")

    validated_at = datetime.now(UTC)
    settings = VALIDATION_DUCKDB_SETTINGS if duckdb_settings is None else duckdb_settings
    with _duckdb_query_batch(db_path, query, settings) as batch:
        result = batch.validate(suite, result_format=RESULT_FORMAT)

    result.meta["run_name"] = run_name
    result.meta["validated_at"] = validated_at.isoformat()
    result.meta["query"] = query
    result.meta["db_path"] = str(db_path)
    # GX returns results grouped by domain; report them in the suite's (reviewed) order instead
    position: dict[str, int] = {}
    for i, expectation in enumerate(suite.expectations):
        position.setdefault(_signature(expectation.configuration), i)
    ordered = sorted(
        result.results, key=lambda r: position.get(_signature(r.expectation_config), len(position))
    )
    outcome = SuiteOutcome(
        suite_name=suite_name,
        run_name=run_name,
        outcomes=[_outcome(r) for r in ordered],
        expectations=expectation_dicts(suite),
    )
    if results_dir is not None:
        results_dir = Path(results_dir)
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / _result_filename(run_name, suite_name)
        payload = json.dumps(result.to_json_dict(), ensure_ascii=False, indent=2, default=str)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(payload, encoding="utf-8")
        tmp.replace(path)
        outcome.result_path = path
    return outcome


# --------------------------------------------------------------------------- data docs


def build_data_docs(expectations_dir: Path, *, results_dir: Path | None = None, site_dir: Path | None = None,
                    max_results: int | None = None) -> Path:
    """Build the static Data Docs of the GX project; return the site's ``index.html``.

    The site shows every suite; with ``results_dir`` it also shows the validation results that
    :func:`validate_query` kept there (copied into GX's validation store first; only the newest
    ``max_results`` files when given). Without ``site_dir`` everything is written under
    ``<expectations_dir>/gx/uncommitted/`` (untracked); with it, the site is built in a fresh folder and
    swapped in at ``site_dir`` (one tenant's docs, never mixed with another's), and the results go
    through a throw-away store.
    """
    expectations_dir = Path(expectations_dir)
    if site_dir is not None:
        return _build_site(expectations_dir, Path(site_dir), results_dir, max_results)
    context = _file_context(expectations_dir)
    if results_dir is not None:
        _import_results(context, Path(results_dir), max_results)
    sites = context.build_data_docs()
    index = _gx_root(expectations_dir) / "uncommitted" / "data_docs" / "local_site" / "index.html"
    if not index.is_file():  # site configured elsewhere: trust what GX reports
        url = next(iter(sites.values()), "")
        index = Path(url.removeprefix("file://"))
    return index


def _build_site(expectations_dir: Path, site_dir: Path, results_dir: Path | None, max_results: int | None) -> Path:
    """Build the site in a fresh folder and swap it in.

    Incremental (cost follows change): when the site already holds the pages of the same suites
    (`SITE_STATE` records a digest of the suite files and the result files rendered), it is copied and only the
    validation results not rendered yet get a page; the index is rebuilt (and drops the pages of results that
    left the newest `max_results`). Nothing new to render: the site is left as it is. Suites changed, or no
    usable record: everything is rebuilt."""
    import shutil
    import tempfile

    from pipelines.quality.data_docs import SITE_STATE, swap_in
    from pipelines.quality.gx_duckdb import quiet_gx

    suites = _suites_digest(expectations_dir)
    wanted = _result_files(results_dir, max_results) if results_dir is not None else []
    rendered = _rendered(site_dir, suites)
    if rendered is not None and {_file_id(p) for p in wanted} == rendered and (site_dir / "index.html").is_file():
        return site_dir / "index.html"  # every result shown is rendered already, suites unchanged

    quiet_gx()
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, ProgressBarsConfig

    site_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{site_dir.name}.", dir=site_dir.parent))
    try:
        def store(base: Path) -> dict:
            return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(base)}

        config = DataContextConfig(
            stores={
                "expectations_store": {"class_name": "ExpectationsStore",
                                       "store_backend": store(_gx_root(expectations_dir) / "expectations")},
                "validation_results_store": {"class_name": "ValidationResultsStore",
                                             "store_backend": store(building / "_results")},
            },
            expectations_store_name="expectations_store",
            validation_results_store_name="validation_results_store",
            data_docs_sites={"local_site": {
                "class_name": "SiteBuilder", "show_how_to_buttons": False,
                "store_backend": store(building / "site"),
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}},
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        )
        context = gx.get_context(mode="ephemeral", project_config=config)
        keys = _import_results(context, wanted) if results_dir is not None else {}
        todo = [key for path, key in keys.items() if _file_id(path) not in (rendered or set())]
        if rendered is not None and todo:
            shutil.copytree(site_dir, building / "site", ignore=shutil.ignore_patterns(SITE_STATE))
            context.build_data_docs(resource_identifiers=todo)  # the new results' pages, and the index
        else:
            context.build_data_docs()
        (building / "site" / SITE_STATE).write_text(json.dumps(
            {"suites": suites, "results": sorted(_file_id(p) for p in wanted)}), encoding="utf-8")
        swap_in(building / "site", site_dir)  # readers see the old site or the new one
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return site_dir / "index.html"


def _suites_digest(expectations_dir: Path) -> str:
    """What the suite pages are rendered from: every suite file's name and content."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted((_gx_root(expectations_dir) / "expectations").rglob("*.json")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _file_id(path: Path) -> str:
    """A result file as rendered: its name and modification time (a retry rewrites the file, same name)."""
    return f"{path.name}:{path.stat().st_mtime_ns}"


def _result_files(results_dir: Path, max_results: int | None) -> list[Path]:
    paths = sorted(Path(results_dir).glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return paths[-max_results:] if max_results else paths


def _rendered(site_dir: Path, suites: str) -> set[str] | None:
    """The result files the site at `site_dir` has pages for, if it was built from the same suites."""
    from pipelines.quality.data_docs import SITE_STATE

    try:
        state = json.loads((site_dir / SITE_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("suites") != suites or not isinstance(state.get("results"), list):
        return None
    return set(state["results"])


def _import_results(context: Any, results: Path | list[Path], max_results: int | None = None) -> dict[Path, Any]:
    """Copy result files into the context's validation store (a folder: its newest `max_results` files);
    returns each file's store key."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    schema = ExpectationSuiteValidationResultSchema()
    paths = _result_files(results, max_results) if isinstance(results, Path) else results
    keys: dict[Path, Any] = {}
    for path in paths:
        result = schema.load(json.loads(path.read_text(encoding="utf-8")))
        validated_at = result.meta.get("validated_at")
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=result.suite_name),
            run_id=RunIdentifier(
                run_name=str(result.meta.get("run_name", path.stem)),
                run_time=datetime.fromisoformat(validated_at) if validated_at else None,
            ),
            batch_identifier="duckdb_query",
        )
        context.validation_results_store.set(key, result)
        keys[path] = key
    return keys
