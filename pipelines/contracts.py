"""Shared data contracts: the cross-tenant tables every unit reports in the same shape.

A contract is a file `warehouse/contracts/<name>.yml` (columns, DuckDB types, required columns, key, personal
columns and their kind, allowed values, Vietnamese/English descriptions, version). A tenant's source feeds it
with `contract: <name>` and a `mapping:` of contract column → source column, or an SQL expression over the
source's columns (with the Vietnamese parsing macros `vn_date(x)` and `vn_number(x)` of warehouse/macros.sql).
A contract column the mapping omits is the source column of the same name when there is one, else NULL.

This module is the one place that reads contracts:
- `load_contracts()` / `contract()`: the files, checked for self-consistency;
- `check_mapping(source, contract)`: static checks of a mapping (validate-config), one line per problem;
- `build_contract_views(con, tenant, available)`: temp views `contract_<name>` at transform, the UNION ALL BY
  NAME of every feeding source's typed projection of its `src_<source>` view, `_source` kept, personal
  columns pseudonymised by the contract; data that does not fit fails with one line, never a DuckDB error;
- `inspect_source(tenant, source)`: a live sample of a source against its contract (`tonghop inspect`);
- `baseline_expectations(contract)`: the checks a contract implies, in the suite machinery's form;
- `describe_contracts()`: rows for the data dictionary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, TonghopError
from pipelines.settings import WAREHOUSE_SQL_DIR
from pipelines.sqltext import quote_ident as _quote

if TYPE_CHECKING:
    from collections.abc import Collection

    import duckdb

    from pipelines.config import SourceConfig, TenantConfig

CONTRACTS_DIR = WAREHOUSE_SQL_DIR / "contracts"
PERSONAL_KINDS = ("cccd", "phone", "name", "address", "mst")
# Contract types: DuckDB scalar types (DECIMAL(p, s) included), as written in a contract file.
_TYPE = re.compile(r"^(VARCHAR|DATE|TIMESTAMP|TIMESTAMPTZ|INTEGER|BIGINT|SMALLINT|DOUBLE|FLOAT|BOOLEAN|"
                   r"DECIMAL\(\d{1,2},\s*\d{1,2}\))$")
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


class ContractMismatch(TonghopError):
    """A source's data does not fit the contract it declares (transform)."""


@dataclass(frozen=True)
class ContractColumn:
    name: str
    type: str
    required: bool = False
    personal: str | None = None  # kind: cccd | phone | name | address | mst
    allowed: tuple[Any, ...] | None = None
    description_vi: str = ""
    description_en: str = ""
    pattern: str | None = None  # a regular expression every non-null text value must match in full

    @property
    def flag(self) -> str | None:
        """The validity flag kept beside a pseudonymised CCCD / phone (computed from the raw value)."""
        return f"is_{self.name}_valid" if self.personal in ("cccd", "phone", "mst") else None


@dataclass(frozen=True)
class Contract:
    name: str
    version: int
    key: tuple[str, ...]
    columns: tuple[ContractColumn, ...]
    description_vi: str = ""
    description_en: str = ""
    path: Path = field(default=CONTRACTS_DIR)

    @property
    def view(self) -> str:
        return f"contract_{self.name}"

    def column(self, name: str) -> ContractColumn | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


# --------------------------------------------------------------------------- loading


def _text(value: Any, lang: str) -> str:
    return str((value or {}).get(lang) or "") if isinstance(value, dict) else str(value or "")


def load_contract_file(path: Path) -> Contract:
    """One contract file, checked: every problem is a ConfigError naming the file and the field."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    where = f"{path}"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with name, version, description, key, columns")
    unknown = set(data) - {"name", "version", "description", "key", "columns"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} — allowed: name, version, "
                          "description, key, columns")
    name = data.get("name")
    if name != path.stem or not _IDENT.match(str(name)):
        raise ConfigError(f"{where}: field 'name' is {name!r}; it must equal the file name '{path.stem}'")
    if not isinstance(data.get("version"), int) or data["version"] < 1:
        raise ConfigError(f"{where}: field 'version' must be a positive integer (got {data.get('version')!r})")
    desc = data.get("description")
    if not (_text(desc, "vi") and _text(desc, "en")):
        raise ConfigError(f"{where}: field 'description' needs both 'vi' and 'en'")
    columns: list[ContractColumn] = []
    for i, c in enumerate(data.get("columns") or []):
        if not isinstance(c, dict) or not _IDENT.match(str(c.get("name", ""))):
            raise ConfigError(f"{where}: columns[{i}] needs a 'name' in lower_snake_case")
        at = f"{where}: column '{c['name']}'"
        bad = set(c) - {"name", "type", "required", "personal", "allowed", "pattern", "description"}
        if bad:
            raise ConfigError(f"{at}: unknown field(s) {', '.join(sorted(bad))} — allowed: type, required, "
                              "personal, allowed, pattern, description")
        ctype = str(c.get("type", "")).upper()
        if not _TYPE.match(ctype):
            raise ConfigError(f"{at}: type {c.get('type')!r} is not a supported DuckDB type — use VARCHAR, DATE, "
                              "TIMESTAMP, INTEGER, BIGINT, DOUBLE, BOOLEAN or DECIMAL(p,s)")
        personal = c.get("personal", False)
        if personal is True:
            from pipelines.reference.identifiers import identifier_kind

            personal = identifier_kind(c["name"]) or "name"
        if personal not in (False, None, *PERSONAL_KINDS):
            raise ConfigError(f"{at}: personal must be false, true or one of {', '.join(PERSONAL_KINDS)} "
                              f"(got {personal!r})")
        if personal and ctype != "VARCHAR":
            raise ConfigError(f"{at}: a personal column is pseudonymised to text: its type must be VARCHAR")
        allowed = c.get("allowed")
        if allowed is not None and not (isinstance(allowed, list) and allowed):
            raise ConfigError(f"{at}: 'allowed' must be a non-empty list of values")
        pattern = c.get("pattern")
        if pattern is not None:
            try:
                re.compile(str(pattern))
            except re.error as exc:
                raise ConfigError(f"{at}: 'pattern' is not a regular expression ({exc})") from None
        d = c.get("description")
        if not (_text(d, "vi") and _text(d, "en")):
            raise ConfigError(f"{at}: 'description' needs both 'vi' and 'en'")
        columns.append(ContractColumn(c["name"], ctype, bool(c.get("required", False)), personal or None,
                                      tuple(allowed) if allowed else None, _text(d, "vi"), _text(d, "en"),
                                      str(pattern) if pattern is not None else None))
    if not columns:
        raise ConfigError(f"{where}: field 'columns' must list at least one column")
    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: column(s) {', '.join(dupes)} listed twice")
    key = data.get("key") or []
    missing_key = [k for k in key if k not in names]
    if not key or missing_key:
        raise ConfigError(f"{where}: field 'key' must list contract columns (unknown: {', '.join(missing_key) or '—'})")
    return Contract(name, data["version"], tuple(key), tuple(columns), _text(desc, "vi"), _text(desc, "en"), path)


@cache
def _load_dir(root: str, stamp: tuple) -> dict[str, Contract]:
    return {p.stem: load_contract_file(p) for p in sorted(Path(root).glob("*.yml"))}


def load_contracts(root: Path = CONTRACTS_DIR) -> dict[str, Contract]:
    """Every contract of `root` by name (parsed once per set of file versions)."""
    files = sorted(Path(root).glob("*.yml"))
    return _load_dir(str(root), tuple((p.name, p.stat().st_mtime_ns) for p in files))


def contract(name: str, root: Path = CONTRACTS_DIR) -> Contract:
    contracts = load_contracts(root)
    if name not in contracts:
        raise ConfigError(f"unknown contract '{name}': known contracts are {', '.join(sorted(contracts))} "
                          f"(files in {root})")
    return contracts[name]


# --------------------------------------------------------------------------- mapping expressions

# What a mapping expression may call: text, number and date functions, never a table, file or variable.
ALLOWED_FUNCTIONS = frozenset("""
    vn_date vn_number trim ltrim rtrim nullif coalesce replace lower upper left right substr substring
    concat concat_ws lpad rpad length regexp_replace regexp_extract regexp_matches regexp_full_match split_part
    strip_accents nfc_normalize cast try_cast strptime try_strptime strftime make_date make_timestamp
    date_trunc year month day quarter round floor ceil abs greatest least if ifnull to_timestamp epoch_ms
    starts_with ends_with contains
""".split())
_KEYWORDS = frozenset("""
    case when then else end and or not is null in like ilike as between true false distinct
    varchar text date timestamp timestamptz integer int bigint smallint double float real boolean decimal
    numeric
""".split())
_STRING = re.compile(r"'(?:[^']|'')*'")
_QUOTED = re.compile(r'"((?:[^"]|"")+)"')
_WORD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\s*\()?")


def is_plain_column(expr: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", expr.strip()))


def expression_columns(expr: str) -> tuple[set[str], list[str]]:
    """(the source columns an expression reads, its problems): only allowed functions, no statements."""
    problems: list[str] = []
    body = _STRING.sub(" 0 ", expr)
    if "'" in body:
        problems.append("an unterminated string literal")
    if re.search(r";|--|/\*", body):
        problems.append("';' or a comment (a mapping is one expression)")
    columns = {m.group(1) for m in _QUOTED.finditer(body)}
    body = _QUOTED.sub(" ", body)
    if body.count("(") != body.count(")"):
        problems.append("unbalanced brackets")
    for m in _WORD.finditer(body):
        word, call = m.group(1), m.group(2)
        if m.start() > 1 and body[m.start() - 2:m.start()] == "::":
            continue  # a cast target: x::DATE
        lower = word.lower()
        if call:
            if lower not in ALLOWED_FUNCTIONS:
                problems.append(f"function '{word}' that a mapping may not call (allowed: text, number and date "
                                "functions, vn_date, vn_number — the list is in docs/contracts.md)")
        elif lower in _KEYWORDS:
            continue
        elif lower in {"select", "from", "join", "union", "with", "attach", "copy", "pragma", "install", "load",
                       "set", "getvariable", "query", "read_csv", "read_parquet"}:
            problems.append(f"'{word}' (a mapping is an expression over the source's columns, not a query)")
        else:
            columns.add(word)
    return columns, problems


def mapped_expression(source: SourceConfig, column: ContractColumn, source_columns: set[str] | None
                      ) -> tuple[str | None, str]:
    """(SQL over the `src_` view for a contract column, how: 'mapped' | 'by name' | 'missing')."""
    spec = source.mapping.get(column.name)
    if spec is not None:
        return (_quote(spec.strip()) if is_plain_column(spec) else f"({spec})"), "mapped"
    if source_columns is None or column.name in source_columns:
        return _quote(column.name), "by name"
    return None, "missing"


# --------------------------------------------------------------------------- static checks

# Type families: which source type may become which contract type (text parses at run time; the rest by cast).
_FAMILY = {"VARCHAR": "text", "TEXT": "text", "DATE": "date", "TIMESTAMP": "time", "TIMESTAMPTZ": "time",
           "TIMESTAMP WITH TIME ZONE": "time", "INTEGER": "int", "INT": "int", "BIGINT": "int", "SMALLINT": "int",
           "TINYINT": "int", "HUGEINT": "int", "UBIGINT": "int", "UINTEGER": "int", "DOUBLE": "num",
           "FLOAT": "num", "REAL": "num", "BOOLEAN": "bool"}
_POSSIBLE = {
    "text": {"text", "date", "time", "int", "num", "bool"},
    "date": {"text", "date", "time"},
    "time": {"text", "date", "time"},
    "int": {"text", "int", "num", "bool"},
    "num": {"text", "int", "num"},
    "bool": {"text", "bool", "int"},
}


def _family(duck_type: str) -> str | None:
    t = duck_type.upper().strip()
    return "num" if t.startswith("DECIMAL") else _FAMILY.get(t)


def type_fits(source_type: str, contract_type: str) -> bool:
    """False when no value of `source_type` can become `contract_type` (BOOLEAN → DATE); unknown types fit."""
    s, c = _family(source_type), _family(contract_type)
    return s is None or c is None or c in _POSSIBLE[s]


def _known_columns(source: SourceConfig) -> dict[str, str | None]:
    """Columns the tenant file tells us the source has (type when `options.types` gives it)."""
    known: dict[str, str | None] = dict.fromkeys([*source.primary_key, *source.personal_columns])
    if source.incremental_column:
        known[source.incremental_column] = None
    types = source.options.get("types") if isinstance(source.options, dict) else None
    if isinstance(types, dict):
        known.update({str(k): str(v) for k, v in types.items()})
    return known


def check_mapping(source: SourceConfig, contract_: Contract | str | None = None, *, file: str | Path | None = None,
                  root: Path = CONTRACTS_DIR) -> list[str]:
    """Static problems of a source's mapping onto its contract, one line each (file, source, column, expected).

    Without a contract argument the source's own `contract:` is used; a source without one has no problems.
    """
    where = f"{file}: " if file else ""
    name = contract_.name if isinstance(contract_, Contract) else (contract_ or source.contract)
    if name is None:
        if source.mapping:
            return [f"{where}source '{source.name}': 'mapping' given without 'contract' — add `contract: <name>` "
                    f"(one of {', '.join(sorted(load_contracts(root)))})"]
        return []
    if isinstance(contract_, Contract):
        c = contract_
    else:
        contracts = load_contracts(root)
        if name not in contracts:
            return [f"{where}source '{source.name}': unknown contract '{name}' — expected one of "
                    f"{', '.join(sorted(contracts))} (warehouse/contracts/*.yml)"]
        c = contracts[name]
    problems: list[str] = []
    known = _known_columns(source)
    for target, spec in source.mapping.items():
        col = c.column(target)
        if col is None:
            problems.append(f"{where}source '{source.name}': mapping names column '{target}', which contract "
                            f"'{c.name}' does not have — expected one of {', '.join(c.column_names)}")
            continue
        if not spec or not str(spec).strip():
            problems.append(f"{where}source '{source.name}': mapping of '{target}' is empty — give a source "
                            "column or an SQL expression")
            continue
        _, bad = expression_columns(str(spec))
        problems += [f"{where}source '{source.name}': mapping of '{c.name}.{target}' ({spec!r}) has {b}"
                     for b in bad]
        if is_plain_column(spec) and known.get(spec.strip()) and not type_fits(known[spec.strip()], col.type):
            problems.append(f"{where}source '{source.name}': column '{spec.strip()}' is {known[spec.strip()]} "
                            f"(options.types) but contract column '{c.name}.{target}' is {col.type} — no "
                            f"{known[spec.strip()]} value can become {col.type}: map another column or an "
                            "expression")
    for col in c.columns:
        if col.name in source.mapping:
            continue
        if col.name in known:
            if known[col.name] and not type_fits(known[col.name], col.type):
                problems.append(f"{where}source '{source.name}': column '{col.name}' is {known[col.name]} "
                                f"(options.types) but contract column '{c.name}.{col.name}' is {col.type} — map "
                                "it with an expression that converts it")
        elif col.required:
            problems.append(f"{where}source '{source.name}': required contract column '{c.name}.{col.name}' "
                            f"({col.type}) is neither mapped nor a known source column — add `mapping: "
                            f"{{{col.name}: <source column or expression>}}` (or list it in options.types)")
    return problems


def check_tenant(tenant: TenantConfig, file: str | Path | None = None) -> list[str]:
    """Every contract problem of a tenant's sources (what `tonghop validate-config` prints)."""
    out: list[str] = []
    for source in tenant.sources:
        out += check_mapping(source, file=file)
    from pipelines.tenant_models import check_tenant_models  # the tenant's own SQL models, same one-line form

    out += check_tenant_models(tenant, file=file)
    from pipelines.crossrefs import check_crossrefs  # suites, models and the contracts each model needs

    out += check_crossrefs(tenant, file=file)
    return out


# --------------------------------------------------------------------------- personal data


def personal_kinds(source: SourceConfig, contract_: Contract | None, existing: set[str]) -> dict[str, str | None]:
    """Source columns to pseudonymise in `src_<source>` and their kind: the declared personal columns, plus
    every (existing) source column a contract personal column is mapped from, so a tenant cannot forget one."""
    from pipelines.reference.identifiers import SQL_NORMALIZER, identifier_kind

    # a declared column the source has not delivered (yet) is nothing to pseudonymise: REPLACE would fail on it
    present = {c.lower() for c in existing}
    kinds: dict[str, str | None] = {c: identifier_kind(c) for c in source.personal_columns if c.lower() in present}
    if contract_ is not None:
        for col in contract_.columns:
            spec = source.mapping.get(col.name, col.name).strip()
            if col.personal and is_plain_column(spec) and spec in existing:
                kinds[spec] = col.personal if col.personal in SQL_NORMALIZER else kinds.get(spec)
    return kinds


def personal_sql(kinds: dict[str, str | None]) -> tuple[list[str], list[str]]:
    """(REPLACE items, validity flags) for `src_` views, as `identifiers.personal_column_sql` but kind-aware."""
    from pipelines.reference.identifiers import (
        SQL_NORMALIZER,
        SQL_VALIDATOR,
        identifier_kind,
        personal_column_sql,
    )

    by_name = [c for c, k in kinds.items() if k == identifier_kind(c)]
    replace, flags = personal_column_sql(by_name)
    for column, kind in kinds.items():
        if column in by_name:
            continue
        q = _quote(column)
        value = f"{SQL_NORMALIZER[kind]}({q})" if kind in SQL_NORMALIZER else q
        replace.append(f"pseudonymize({value}) AS {q}")
        if kind in SQL_VALIDATOR:
            flags.append(f"CASE WHEN NOT starts_with(lower(CAST({q} AS VARCHAR)), 'ps_') "
                         f'THEN {SQL_VALIDATOR[kind]}({q}) END AS "is_{column}_valid"')
    return replace, flags


# --------------------------------------------------------------------------- contract views

_SAFE_CASTS = {("int", "num"), ("date", "time"), ("time", "date")}


def _projection(source: SourceConfig, c: Contract, src_columns: dict[str, str]) -> tuple[list[str], list[str]]:
    """(SELECT items typed and pseudonymised, problems) of one source onto its contract."""
    from pipelines.reference.identifiers import SQL_NORMALIZER, SQL_VALIDATOR

    items, problems = [], []
    for col in c.columns:
        expr, how = mapped_expression(source, col, set(src_columns))
        if expr is None:
            if col.required:
                problems.append(f"source '{source.name}': required contract column '{c.name}.{col.name}' is "
                                f"not mapped and the source has no column '{col.name}' (it has: "
                                f"{', '.join(k for k in src_columns if not k.startswith('_'))}) — add it to "
                                "the source's `mapping:`")
            items.append(f"CAST(NULL AS {col.type}) AS {_quote(col.name)}")
            if col.flag:
                items.append(f"CAST(NULL AS BOOLEAN) AS {_quote(col.flag)}")
            continue
        if how == "mapped" and is_plain_column(source.mapping[col.name]) and \
                source.mapping[col.name].strip() not in src_columns:
            problems.append(f"source '{source.name}': mapping {col.name}: {source.mapping[col.name].strip()} "
                            f"names a column the source does not have (it has: "
                            f"{', '.join(k for k in src_columns if not k.startswith('_'))}) — fix the mapping")
            continue
        typed = f"CAST({expr} AS {col.type})"
        if col.personal:
            norm = SQL_NORMALIZER.get(col.personal)
            items.append(f"pseudonymize({norm}({typed}) ) AS {_quote(col.name)}" if norm
                         else f"pseudonymize({typed}) AS {_quote(col.name)}")
            if col.flag:
                plain = expr.strip('"') if is_plain_column(expr.strip('"')) else None
                if plain and f"is_{plain}_valid" in src_columns:
                    items.append(f"{_quote('is_' + plain + '_valid')} AS {_quote(col.flag)}")
                else:
                    items.append(f"CASE WHEN NOT starts_with(lower(CAST({expr} AS VARCHAR)), 'ps_') "
                                 f"THEN {SQL_VALIDATOR[col.personal]}({expr}) END AS {_quote(col.flag)}")
        else:
            items.append(f"{typed} AS {_quote(col.name)}")
    items.append(f"'{source.name}' AS _source")
    return items, problems


def _cast_failures(con: duckdb.DuckDBPyConnection, source: SourceConfig, c: Contract, view: str,
                   src_columns: dict[str, str]) -> list[str]:
    """Rows whose mapped value does not convert to the contract type, per column: one line each."""
    import duckdb

    exprs = {}
    for col in c.columns:
        expr, _ = mapped_expression(source, col, set(src_columns))
        if expr is not None:
            exprs[col.name] = expr
    select = ", ".join(f"{e} AS {_quote(n)}" for n, e in exprs.items())
    try:
        types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT {select} FROM {view}").fetchall()}
    except duckdb.Error as exc:  # a bad expression: name the column whose expression fails
        for n, e in exprs.items():
            try:
                con.execute(f"DESCRIBE SELECT {e} AS x FROM {view}")
            except duckdb.Error as one:
                return [f"source '{source.name}': mapping of contract column '{c.name}.{n}' ({e}) does not "
                        f"work on the source's columns ({_duck_message(one)}) — fix the mapping in the tenant file"]
        return [f"source '{source.name}': contract '{c.name}' cannot be built ({_duck_message(exc)})"]
    checks = {}
    for col in c.columns:
        if col.name not in exprs:
            continue
        have = _family(types[col.name])
        want = _family(col.type)
        if have == want or want == "text" or (have, want) in _SAFE_CASTS:
            continue
        e = exprs[col.name]
        checks[col.name] = f"count(*) FILTER (WHERE ({e}) IS NOT NULL AND TRY_CAST(({e}) AS {col.type}) IS NULL)"
    if not checks:
        return []
    samples = {n: f"any_value(CAST(({exprs[n]}) AS VARCHAR)) FILTER (WHERE ({exprs[n]}) IS NOT NULL AND "
                  f"TRY_CAST(({exprs[n]}) AS {c.column(n).type}) IS NULL)" for n in checks}
    row = con.execute(f"SELECT count(*), {', '.join(checks.values())}, {', '.join(samples.values())} "
                      f"FROM {view}").fetchone()
    total, counts, examples = row[0], row[1:1 + len(checks)], row[1 + len(checks):]
    out = []
    for (n, _), bad, example in zip(checks.items(), counts, examples, strict=True):
        if bad:
            col = c.column(n)
            shown = "" if col.personal else f", e.g. {example!r}"
            out.append(f"source '{source.name}': {bad:,} of {total:,} values of contract column '{c.name}.{n}' "
                       f"(from {exprs[n]}) do not convert to {col.type}{shown} — map it with a parsing "
                       "expression (vn_date(x), vn_number(x), try_strptime(x, '<format>')) or fix the data")
    return out


def _duck_message(exc: BaseException) -> str:
    from pipelines.errors import first_line

    return re.sub(r"^[A-Za-z ]*Error: ", "", first_line(exc)).replace("\n", " ")


def build_contract_views(con: duckdb.DuckDBPyConnection, tenant: TenantConfig, available: set[str]) -> set[str]:
    """Temp views `contract_<name>` over the `src_` views of the sources feeding each contract.

    Returns the contracts built. A source whose data does not fit (a mapped column missing, a bad expression,
    values that do not convert) raises ContractMismatch with one line per problem — never a DuckDB error.
    """
    contracts = load_contracts()
    feeding: dict[str, list[SourceConfig]] = {}
    for source in tenant.sources:
        if source.contract and source.name in available:
            if source.contract not in contracts:
                raise ContractMismatch(check_mapping(source)[0])
            feeding.setdefault(source.contract, []).append(source)
    problems: list[str] = []
    built: set[str] = set()
    for name, sources in feeding.items():
        c = contracts[name]
        parts = []
        for source in sources:
            view = f"src_{source.name}"
            src_columns = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {view})").fetchall())
            items, bad = _projection(source, c, src_columns)
            if not bad:
                bad = _cast_failures(con, source, c, view, src_columns)
            problems += bad
            parts.append(f"SELECT {', '.join(items)} FROM {view}")
        if problems:
            continue
        con.execute(f"CREATE OR REPLACE TEMP VIEW {c.view} AS\n" + "\nUNION ALL BY NAME\n".join(parts))
        built.add(name)
    if problems:
        raise ContractMismatch("data does not fit its contract: " + "; ".join(problems))
    return built


# --------------------------------------------------------------------------- baseline expectations

# Personal-ID formats checked on the raw value (before pseudonymisation). The CCCD form is the one the core
# suite `ho_so` uses (one check, not two). A phone may be written with separators and +84/84/0084 (the forms
# `phone_normalize` reads, warehouse/macros.sql): only what is no phone number at all fails here; whether the
# number is a real mobile is the `is_<column>_valid` flag staging keeps.
ID_FORMATS = {"cccd": r"^[0-9]{12}$",
              "phone": r"^\s*(\+84|0084|84|0)?[ .()-]*[1-9]([ .()-]*[0-9]){8}\s*$"}
_TYPE_REGEX = {"date": r"^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{4})",
               "int": r"^[+-]?[0-9]+$", "num": r"^[+-]?[0-9.,]+$", "bool": r"^(?i)(true|false|0|1|c[oó]|kh[oô]ng)$"}


def baseline_expectations(c: Contract, source: SourceConfig | None = None,
                          source_types: dict[str, str] | None = None, *,
                          columns: Collection[str] | None = None) -> list[dict]:
    """The expectations a contract implies for a source's raw table, in `rowchecks.expectation_dicts` form
    (type, kwargs, meta, severity, description). Severities (expectations/README.md, "Baseline checks"):

    - block — the batch is unusable: no rows; a key or required column absent from the raw table;
    - warn (the failing rows are quarantined, the rest promoted) — a required column NULL, a repeated key,
      a value outside the contract's allowed values, a personal ID that is no CCCD / phone number, a text
      value that cannot read as the contract's date or number type.

    Columns are the source's: a contract column mapped from a plain source column (or taken by name) is
    checked on that column; one computed by an SQL expression is not checked here — the contract view checks
    what it computes at transform (a value that does not convert fails there with one line). `source_types`:
    DuckDB types of (some of) the source's columns. With `columns` (every column of the raw table) a column
    the raw table lacks gets only the block-level existence check when it is a key or required column, and
    nothing when it is optional (the contract then reads NULL).
    """
    def src(col: ContractColumn) -> str | None:
        if source is None:
            return col.name
        spec = source.mapping.get(col.name, col.name)
        return spec.strip() if is_plain_column(spec) else None

    def exp(type_: str, kwargs: dict, severity: str, description: str, dimension: str | None = None) -> dict:
        meta = {"severity": severity, "contract": c.name, "contract_version": c.version}
        if dimension:
            meta["dimension"] = dimension
        return {"type": type_, "kwargs": kwargs, "meta": meta, "severity": severity, "description": description}

    present = (lambda name: name in columns) if columns is not None else (lambda name: True)
    key_names = {k for k in c.key}
    out = [exp("expect_table_row_count_to_be_between", {"min_value": 1}, "block", "table must have at least 1 row")]
    checked: list[tuple[ContractColumn, str]] = []  # columns present in the raw table
    for col in c.columns:
        name = src(col)
        if not name:
            continue
        if not present(name):
            if col.required or col.name in key_names:
                out.append(exp("expect_column_to_exist", {"column": name}, "block",
                               f"column {name} must exist (contract {c.name}.{col.name} is "
                               f"{'key' if col.name in key_names else 'required'})"))
            continue
        checked.append((col, name))
    for col, name in checked:
        if col.required:
            out.append(exp("expect_column_values_to_not_be_null", {"column": name}, "warn",
                           f"{name} must not be null (contract {c.name}.{col.name} is required)"))
    key = [src(c.column(k)) for k in c.key]
    if all(key) and all(present(k) for k in key):
        if len(key) == 1:
            out.append(exp("expect_column_values_to_be_unique", {"column": key[0]}, "warn",
                           f"{key[0]} must be unique (contract {c.name} key)"))
        else:
            out.append(exp("expect_compound_columns_to_be_unique", {"column_list": key}, "warn",
                           f"({', '.join(key)}) must be unique (contract {c.name} key)"))
    for col, name in checked:
        if col.allowed:
            values = ", ".join(repr(v) for v in col.allowed)
            out.append(exp("expect_column_values_to_be_in_set", {"column": name, "value_set": list(col.allowed)},
                           "warn", f"{name} must be one of {{{values}}} (contract {c.name}.{col.name})"))
        have = _family((source_types or {}).get(name, "")) if source_types else None
        if col.pattern and have in (None, "text"):
            out.append(exp("expect_column_values_to_match_regex", {"column": name, "regex": col.pattern},
                           "warn", f"{name} must match the contract's format {col.pattern} (contract "
                           f"{c.name}.{col.name})", "validity"))
        if col.personal in ID_FORMATS and have in (None, "text"):
            what = "a 12-digit CCCD" if col.personal == "cccd" else "a Vietnamese phone number"
            out.append(exp("expect_column_values_to_match_regex", {"column": name, "regex": ID_FORMATS[col.personal]},
                           "warn", f"{name} must be {what} (contract {c.name}.{col.name})"))
        want = _family(col.type)
        if have == "text" and want in _TYPE_REGEX:
            out.append(exp("expect_column_values_to_match_regex", {"column": name, "regex": _TYPE_REGEX[want]},
                           "warn", f"{name} must read as {col.type} (contract {c.name}.{col.name})", "validity"))
    return out


def suite_json(c: Contract, expectations: list[dict]) -> dict:
    """A GX suite document (as expectations/gx/expectations/*.json) of baseline expectations, for review."""
    return {"name": f"contract_{c.name}", "meta": {"notes": f"Baseline of contract {c.name} v{c.version}"},
            "expectations": [{"type": e["type"], "kwargs": e["kwargs"], "meta": e["meta"],
                              "description": e["description"],
                              "severity": "critical" if e["severity"] == "block" else "warning"}
                             for e in expectations]}


# --------------------------------------------------------------------------- dictionary & inspect


def describe_contracts(root: Path = CONTRACTS_DIR) -> list[tuple]:
    """(contract, version, column, type, required, personal, allowed, description vi, description en) rows."""
    return [(c.name, c.version, col.name, col.type, col.required, col.personal or "",
             ", ".join(map(str, col.allowed or ())), col.description_vi, col.description_en)
            for c in load_contracts(root).values() for col in c.columns]


INSPECT_LIMIT = 1000


def inspect_source(tenant: TenantConfig, source: SourceConfig, limit: int = INSPECT_LIMIT) -> str:
    """A sample of the live source (its reader, LIMIT `limit`, in memory) against its contract, as a table."""
    import duckdb

    from pipelines.settings import TenantPaths
    from pipelines.sources import reader_for

    paths = TenantPaths.for_tenant(tenant.tenant_id, tenant.data_dir)
    con = duckdb.connect()
    try:
        extract = reader_for(source.kind)(source, con, paths)
        try:
            extract.relation.limit(limit).create("sample")
        finally:
            for undo in extract.cleanup:
                undo()
        cols = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE sample)").fetchall())
        n = con.execute("SELECT count(*) FROM sample").fetchone()[0]
        lines = [f"source '{source.name}' ({source.kind}): {n:,} sample rows, {len(cols)} columns"]
        lines += _table(["source column", "type"], list(cols.items()))
        if not source.contract:
            lines.append("no contract: the source feeds no shared table (add `contract:` and `mapping:`)")
            return "\n".join(lines)
        c = contract(source.contract)
        con.execute((WAREHOUSE_SQL_DIR / "macros.sql").read_text(encoding="utf-8").replace(
            "getvariable('tonghop_pii_key')", "'inspect'"))
        rows = []
        for col in c.columns:
            expr, how = mapped_expression(source, col, set(cols))
            status, detail = how, ""
            if expr is None:
                status = "MISSING" if col.required else "missing (NULL)"
            else:
                try:
                    bad, nn = con.execute(f"SELECT count(*) FILTER (WHERE ({expr}) IS NOT NULL AND "
                                          f"TRY_CAST(({expr}) AS {col.type}) IS NULL), count({expr}) "
                                          "FROM sample").fetchone()
                    detail = f"{nn:,} values" + (f", {bad:,} do not convert" if bad else "")
                    if bad:
                        status = "CAST FAILS"
                except duckdb.Error as exc:
                    status, detail = "ERROR", _duck_message(exc)
            rows.append((col.name, col.type, "yes" if col.required else "", col.personal or "",
                         source.mapping.get(col.name, col.name if expr else "—"), status, detail))
        lines.append(f"contract '{c.name}' v{c.version}:")
        lines += _table(["contract column", "type", "required", "personal", "from", "status", "sample"], rows)
        extra = sorted(set(cols) - {source.mapping.get(k, k) for k in c.column_names})
        if extra:
            lines.append(f"source columns not used by the contract: {', '.join(extra)}")
        return "\n".join(lines)
    finally:
        con.close()


def _table(header: list[str], rows: list[tuple]) -> list[str]:
    cells = [header] + [[str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in cells[1:]]
