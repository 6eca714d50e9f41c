"""Tenant configuration: one YAML file per ministry/province in `tenants/`, checked against a typed schema.

Secrets never live in the YAML: a source names an environment variable (`connection.env`) or an Airflow
connection id (`connection.airflow_conn_id`) and the value is read only when the source runs.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipelines import locations
from pipelines.errors import ConfigError
from pipelines.lakehouse.options import StorageConfig, check_storage
from pipelines.redact import redact
from pipelines.settings import TenantPaths, resolve_data_dir, tenants_dir
from pipelines.sources import REGISTRY as SOURCE_REGISTRY
from pipelines.yamlsafe import load_yaml_file

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=63)]
# A source's own column, as its system names it (`applicationNo`, `SO_GIAY_PHEP`): always quoted in SQL.
ColumnName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=63)]
TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)]
TENANT_ID_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
# Names the cross-tenant lakehouse query gives its catalogues besides the tenants' (`all_tenants`, DuckDB's own
# `main`, `temp`, `system`, `memory`): a tenant so named would shadow them or fail to attach.
RESERVED_TENANT_IDS = frozenset({"all-tenants", "main", "temp", "system", "memory"})
Severity = Literal["block", "warn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_AIRFLOW_PRESETS = {"@once", "@continuous"}


def check_schedule(value: str | None) -> str | None:
    """A cron expression (5 fields, or @daily-style presets) croniter accepts, as Airflow will parse it."""
    if value is None:
        return value
    from croniter import croniter

    if value.strip() in _AIRFLOW_PRESETS or croniter.is_valid(value):
        return value
    raise ValueError(f"'{value[:60]}' is not a cron expression — use 5 fields 'minute hour day month weekday', "
                     "e.g. '0 2 * * *' (02:00 daily), or @daily / @hourly / @weekly")


def check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{value[:60]}' is not an IANA time zone — e.g. Asia/Ho_Chi_Minh") from None
    return value


class ConnectionRef(_Strict):
    """Where a source's secret comes from: an environment variable or an Airflow connection, never inline."""

    env: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")
    airflow_conn_id: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ConnectionRef:
        if (self.env is None) == (self.airflow_conn_id is None):
            raise ValueError("give exactly one of 'env' (an environment variable name) or 'airflow_conn_id'")
        return self


class SourceConfig(_Strict):
    """One agency system feeding the warehouse."""

    name: Identifier
    kind: str
    description: str = ""
    location: str | None = None
    connection: ConnectionRef | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    primary_key: list[ColumnName] = Field(min_length=1)
    incremental_column: ColumnName | None = None
    personal_columns: list[ColumnName] = Field(default_factory=list)
    expectation_suite: str | None = None
    schedule: str | None = None
    on_error: Literal["fail_run", "skip_source"] = "fail_run"
    # A column that disappeared or no longer fits its raw type: fail the source, or keep the misfit rows
    # out of raw (in raw."_rejected_<source>", counted as rejected) and load the rest.
    on_drift: Literal["fail", "quarantine"] = "fail"
    # merge: staging keeps the latest row per primary key over every promoted batch (incremental feeds);
    # replace: staging holds only the latest promoted batch (full snapshots where deletions matter).
    write_disposition: Literal["merge", "replace"] = "merge"
    # The shared data contract this source feeds (warehouse/contracts/<name>.yml) and how: contract column →
    # source column or SQL expression over the source's raw columns (pipelines/contracts.py checks both).
    contract: Identifier | None = None
    mapping: dict[str, str] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in SOURCE_REGISTRY:
            raise ValueError(f"unknown source kind {kind!r}; expected one of {', '.join(sorted(SOURCE_REGISTRY))}")
        return kind

    @model_validator(mode="after")
    def _has_location(self) -> SourceConfig:
        if self.location is None and self.connection is None:
            raise ValueError("give 'location' (a file path or URL) or 'connection' (env / airflow_conn_id)")
        return self

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return check_schedule(value)

    @field_validator("location")
    @classmethod
    def _safe_location(cls, location: str | None) -> str | None:
        """Tenant-independent location rules (the tenant's variable allow-list: `check_tenant`)."""
        if location is None:
            return location
        locations.check_inline_credentials(location, {})
        for name in locations.variables(location):
            locations.check_variable(name, None)
        if not locations.is_url(location):
            locations.check_path_text(location)
        return location

    @field_validator("options")
    @classmethod
    def _no_inline_credentials(cls, options: dict[str, Any]) -> dict[str, Any]:
        locations.check_inline_credentials(None, options)
        return options

    @field_validator("options")
    @classmethod
    def _typed_options(cls, options: dict[str, Any], info: Any) -> dict[str, Any]:
        """Checked against the kind's `Options` (pipelines/sources/<kind>.py): names, types, defaults filled."""
        from pipelines.sources import options_for
        from pipelines.sources.options import validate_options

        kind = info.data.get("kind")  # absent when the kind itself was refused
        return validate_options(kind, options_for(kind), options) if kind else options

    @field_validator("location")
    @classmethod
    def _readable_format(cls, location: str | None, info: Any) -> str | None:
        """A file the kind cannot read (`.ods` for excel) is refused with the formats it reads."""
        from pipelines.sources import options_for
        from pipelines.sources.options import check_format

        kind = info.data.get("kind")
        if kind:
            check_format(kind, options_for(kind), location)
        return location


class RetentionConfig(_Strict):
    raw_days: int = Field(default=90, ge=1)
    runs_days: int = Field(default=730, ge=1)


class DatabaseEntry(_Strict):
    """One database in the tenant's catalogue, with the Decision 1437/QĐ-TTg catalogue fields."""

    code: Identifier
    name: str = Field(min_length=2)
    # the three classes of state databases: national, shared (of a ministry/sector/locality), internal
    kind: Literal["quoc_gia", "dung_chung", "noi_bo"]
    purpose: str = ""
    scope: str = ""
    sources: list[str] = Field(default_factory=list)  # configured source names or external systems
    owner: str = ""
    open_categories: list[str] = Field(default_factory=list)
    shared_categories: list[str] = Field(default_factory=list)
    status: Literal["dang_van_hanh", "dang_xay_dung", "ke_hoach"] = "dang_van_hanh"
    roadmap: str = ""


class CatalogueConfig(_Strict):
    """The databases the tenant manages (published as its database catalogue, merged into the data map)."""

    databases: list[DatabaseEntry] = Field(default_factory=list)


# --- open-data plan (pipelines/publish/, docs/open-data.md) ---------------------------------------------
# EU vocabularies DCAT-AP expects: data themes and update frequencies (publications.europa.eu authority tables).
EU_DATA_THEMES = ("AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "OP_DATPRO", "REGI",
                  "SOCI", "TECH", "TRAN")
EU_THEME_BASE = "http://publications.europa.eu/resource/authority/data-theme/"
EU_FREQUENCY_BASE = "http://publications.europa.eu/resource/authority/frequency/"
# Free-reuse licences: code -> (URI, title). Open data must be free to reuse (DOMAIN.md).
OPEN_LICENCES = {
    "CC-BY-4.0": ("http://publications.europa.eu/resource/authority/licence/CC_BY_4_0",
                  "Creative Commons Attribution 4.0 International"),
    "CC0-1.0": ("http://publications.europa.eu/resource/authority/licence/CC0",
                "Creative Commons CC0 1.0 Universal"),
    "ODbL-1.0": ("http://publications.europa.eu/resource/authority/licence/ODBL",
                 "Open Data Commons Open Database License 1.0"),
}
OpenTable = Annotated[str, StringConstraints(pattern=r"^(staging|marts)\.[a-z][a-z0-9_]*$", max_length=127)]


class OpenDataPhase(_Strict):
    """A publication phase: what must be published by its due date (the plan's minimum level)."""

    id: Identifier
    name: str = Field(min_length=2)
    name_en: str = ""
    due: date
    min_datasets: int = Field(default=0, ge=0)  # open datasets published in total by the due date
    required: list[Identifier] = Field(default_factory=list)  # datasets that must be among them


class OpenDataset(_Strict):
    """One open dataset: a published table of the snapshot, described for the catalogue (vi and en)."""

    id: Identifier
    table: OpenTable
    title: str = Field(min_length=2)
    title_en: str = Field(min_length=2)
    description: str = Field(min_length=2)
    description_en: str = Field(min_length=2)
    keywords: list[str] = Field(default_factory=list)
    keywords_en: list[str] = Field(default_factory=list)
    themes: list[str] = Field(min_length=1)  # EU data-theme codes (GOVE, SOCI, ...) or their URIs
    frequency: Literal["DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "ANNUAL_2", "ANNUAL", "IRREG"]
    phase: Identifier
    owner: str | None = None  # owner agency; default: the plan's publisher
    # small-area disclosure: every cell (cell_columns) must count at least min_rows_per_cell records —
    # read from count_column when given (an aggregated mart), else the rows of the cell
    min_rows_per_cell: int | None = Field(default=None, ge=1)
    cell_columns: list[Identifier] = Field(default_factory=list)
    count_column: Identifier | None = None
    drop_columns: list[Identifier] = Field(default_factory=list)

    @field_validator("themes")
    @classmethod
    def _eu_themes(cls, themes: list[str]) -> list[str]:
        for t in themes:
            code = t.removeprefix(EU_THEME_BASE)
            if code not in EU_DATA_THEMES:
                raise ValueError(f"theme '{t[:60]}' is not an EU data theme — use one of {', '.join(EU_DATA_THEMES)}")
        return [t.removeprefix(EU_THEME_BASE) for t in themes]


class CkanTarget(_Strict):
    """A CKAN portal the open datasets are pushed to (pipelines/publish/ckan.py): the key comes from an
    environment variable, never the YAML."""

    url: str = Field(pattern=r"^https?://[^\s@]+$")  # the portal's root, e.g. https://data.ninhbinh.gov.vn
    organization: str = Field(pattern=r"^[a-z0-9_-]{2,100}$")  # the CKAN organisation's name (it must exist)
    api_key: ConnectionRef
    upload: bool = True  # upload the files; False: link resources to open_data.base_url (which must be set)
    timeout: float = Field(default=30, gt=0, le=600)

    @model_validator(mode="after")
    def _env_only(self) -> CkanTarget:
        if self.api_key.env is None:
            raise ValueError("give the CKAN API key as 'api_key: {env: VARIABLE}' (an environment variable)")
        return self


class OpenDataPlan(_Strict):
    """The tenant's open-data plan: the catalogue, the publication phases and the minimum level per phase."""

    publisher: str = Field(min_length=2)  # owner agency publishing the catalogue
    publisher_en: str = ""
    contact_email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")  # an office mailbox, not a person's
    licence: Literal["CC-BY-4.0", "CC0-1.0", "ODbL-1.0"] = "CC-BY-4.0"
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+/$")  # where open_data/ is served
    review_months: int = Field(default=6, ge=1, le=6)  # open data is reviewed at least every 6 months
    last_review: date | None = None
    min_rows_per_cell: int = Field(default=5, ge=1)  # default for datasets with cell_columns
    phases: list[OpenDataPhase] = Field(min_length=1)
    datasets: list[OpenDataset] = Field(default_factory=list)
    ckan: CkanTarget | None = None  # push to a CKAN portal after writing the files

    @model_validator(mode="after")
    def _references(self) -> OpenDataPlan:
        phases = [p.id for p in self.phases]
        ids = [d.id for d in self.datasets]
        for label, names in (("phase", phases), ("dataset", ids)):
            if dupes := sorted({n for n in names if names.count(n) > 1}):
                raise ValueError(f"{label} ids must be unique; repeated: {', '.join(dupes)}")
        for d in self.datasets:
            if d.phase not in phases:
                raise ValueError(f"dataset '{d.id}' names phase '{d.phase}', which the plan does not have "
                                 f"(phases: {', '.join(phases)})")
            if d.count_column and not d.cell_columns:
                raise ValueError(f"dataset '{d.id}': count_column needs cell_columns (the cell's dimensions)")
        for p in self.phases:
            if unknown := [r for r in p.required if r not in ids]:
                raise ValueError(f"phase '{p.id}' requires unknown dataset(s) {', '.join(unknown)} "
                                 f"(datasets: {', '.join(ids) or 'none'})")
        return self


class TenantConfig(_Strict):
    """A ministry or province: its identity, its sources and how its pipeline runs."""

    tenant_id: TenantId
    display_name: str = Field(min_length=2)
    display_name_en: str | None = None
    kind: Literal["province", "ministry"]
    admin_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-Z.]{2,10}$")]
    timezone: str = "Asia/Ho_Chi_Minh"
    schedule: str | None = "0 2 * * *"
    # The retraining DAG's own cron (tenant local time); None = run it by hand. The pipeline trains each run.
    retrain_schedule: str | None = None
    data_dir: str | None = None
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    sources: list[SourceConfig] = Field(min_length=1)
    models: list[Identifier] = Field(default_factory=list)
    catalogue: CatalogueConfig | None = None
    open_data: OpenDataPlan | None = None
    # where the published tables live: serving.duckdb only, or also a lakehouse (pipelines/lakehouse/)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    @field_validator("tenant_id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_TENANT_IDS:
            raise ValueError(f"'{value}' is reserved (the cross-tenant query names its catalogues "
                             f"{', '.join(sorted(RESERVED_TENANT_IDS))}) — choose another tenant id, e.g. the "
                             "province's or ministry's name")
        return value

    @field_validator("schedule", "retrain_schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return check_schedule(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("data_dir")
    @classmethod
    def _inside_home(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            resolve_data_dir(value, info.data.get("tenant_id"))
        return value

    @model_validator(mode="after")
    def _unique_sources(self) -> TenantConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return self

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"tenant '{self.tenant_id}' has no source '{name}'; known: "
                          f"{', '.join(s.name for s in self.sources)}")

    @property
    def pool(self) -> str:
        """Airflow pool (one slot) serialising every writer of this tenant's warehouse."""
        return f"warehouse_{self.tenant_id.replace('-', '_')}"


def check_tenant(cfg: TenantConfig) -> list[str]:
    """The rules that need the tenant: variables in locations from its allow-list, absolute file paths inside
    its data folder (or an operator-listed root). One line per problem, naming the field."""
    problems = []
    root = TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir).root
    for s in cfg.sources:
        if not s.location:
            continue
        field = f"field 'sources[{s.name}].location'"
        try:
            for name in locations.variables(s.location):
                locations.check_variable(name, cfg.tenant_id)
            if not locations.is_url(s.location) and not locations.variables(s.location) \
                    and Path(s.location).is_absolute():
                locations.confine(Path(s.location), root, "this path")
        except locations.LocationRefused as exc:
            problems.append(f"{field}: {exc}")
    problems += check_storage(cfg.storage, root, cfg.tenant_id)
    return problems


def _short(value: Any) -> str:
    """What was got, for an error message: its type, and a short redacted scalar — never a whole mapping
    or list (a config object may carry an inline password)."""
    if isinstance(value, dict):
        return f"a mapping with {len(value)} key(s)"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    if isinstance(value, str):
        text = redact(value)
        if text != value:
            return "a string (hidden: it looks like a secret)"
        return repr(text if len(text) <= 40 else text[:37] + "...")
    return f"a {type(value).__name__}"


def _describe(err: dict[str, Any], data: Any) -> str:
    loc = err["loc"]
    parts: list[str] = []
    node = data
    for key in loc:
        # Name list items by their `name` field when they have one: "sources[ho_so].kind" reads better.
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            item = node[key]
            label = item.get("name") if isinstance(item, dict) else None
            parts[-1] = f"{parts[-1]}[{label or key}]" if parts else f"[{key}]"
            node = item
            continue
        if isinstance(key, str) and re.fullmatch(r"[a-z_]+\[.*\]", key):
            continue  # pydantic's tag for Literal unions
        parts.append(str(key))
        node = node.get(key) if isinstance(node, dict) else None
    field = ".".join(parts) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"field '{field}': unknown key — remove it or check its spelling"
    if kind == "missing":
        return f"field '{field}': required but missing"
    if kind == "literal_error":
        return f"field '{field}': got {_short(err.get('input'))}, expected {err['ctx']['expected']}"
    if kind == "value_error":  # our own validators' messages already say what was wrong and how to fix it
        return f"field '{field}': {redact(err['msg'])}"
    return f"field '{field}': {redact(err['msg'])} (got {_short(err.get('input'))})"


def load_tenant_file(path: Path) -> TenantConfig:
    """Parse and check one tenant file; every problem becomes one line naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: tenant file not found — create it or check the tenant id "
                          f"(tenant files live in {tenants_dir()})")
    # The DAG file, the CLI and the app may read the same file many times in one process: check it once
    # per content version (and per environment the checks depend on).
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size,
           *(os.environ.get(v) for v in ("TONGHOP_HOME", "TONGHOP_ALLOWED_ROOTS", "TONGHOP_LOCATION_VARS",
                                          "TONGHOP_LAKEHOUSE_BUCKETS")))
    if key in _CHECKED:
        return _CHECKED[key]
    try:
        cfg = _load_tenant_file(path)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 — any surprise in one file is still one line naming it
        raise ConfigError(f"{path}: cannot be checked ({type(exc).__name__}: {str(exc)[:200]}) — fix the file "
                          "or report this message") from None
    if len(_CHECKED) > 1000:
        _CHECKED.clear()
    _CHECKED[key] = cfg
    return cfg


_CHECKED: dict[tuple, TenantConfig] = {}


def _load_tenant_file(path: Path) -> TenantConfig:
    data = load_yaml_file(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of tenant settings at the top level")
    try:
        cfg = TenantConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(e, data) for e in exc.errors()]
        raise ConfigError(f"{path}: " + "; ".join(lines)) from None
    if cfg.tenant_id != path.stem:
        raise ConfigError(f"{path}: field 'tenant_id' is '{cfg.tenant_id}' but the file is named "
                          f"'{path.name}' — name the file '{cfg.tenant_id}.yaml'")
    problems = check_tenant(cfg)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return cfg


def tenant_files(directory: Path | None = None) -> list[Path]:
    return sorted(Path(directory or tenants_dir()).glob("*.yaml"))


def load_tenant(tenant_id: str, directory: Path | None = None) -> TenantConfig:
    if not TENANT_ID_RE.fullmatch(str(tenant_id)):  # `--tenant ../x` must not read a file outside tenants/
        raise ConfigError(f"'{redact(str(tenant_id))[:60]}' is not a tenant id (lowercase letters, digits and '-', "
                          f"starting with a letter, e.g. ninh-binh) — tenant files live in {tenants_dir()}")
    return load_tenant_file(Path(directory or tenants_dir()) / f"{tenant_id}.yaml")


def load_all(directory: Path | None = None) -> list[TenantConfig]:
    return [load_tenant_file(p) for p in tenant_files(directory)]
