"""Typed `options:` of the source kinds, checked when the tenant file is (`tonghop validate-config`).

Each reader module (`pipelines/sources/<kind>.py`) exports `Options`, a pydantic model built from the groups
here: `TypesOption` (column → DuckDB type), `ParsingOptions` (the Vietnamese date/number typing of
`pipelines.sources.parsing`) and `HttpOptions` (the `api`/`ckan` client). `SourceConfig` validates a source's
`options` against its kind's `Options` (`validate_options`) and keeps the result as a plain dict with every
default filled in (`None` defaults left out): readers read that dict and never check names again.

File kinds also list the `FORMATS` (file-name suffixes) they read, so that `report.ods` given to the
`excel` reader is refused with the formats it reads, before any run.

Nothing here imports duckdb, pyarrow or polars: tenant files are checked while Airflow parses DAG files.
DuckDB type names are checked against the names DuckDB 1.x/2.x knows (`tests/config/test_source_options.py`
compares them with `duckdb_types()`), parameters included: `DECIMAL(18,2)`, `VARCHAR[]`, `STRUCT(a INT)`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

# Scalar type names (and aliases) DuckDB accepts in a CAST, upper-cased.
SCALAR_TYPES = frozenset("""
    BOOLEAN BOOL LOGICAL TINYINT INT1 SMALLINT INT2 INT16 SHORT INTEGER INT INT4 INT32 SIGNED INTEGRAL
    BIGINT INT8 INT64 LONG OID HUGEINT INT128 UTINYINT UINT8 USMALLINT UINT16 UINTEGER UINT32 UBIGINT UINT64
    UHUGEINT UINT128 VARINT BIGNUM FLOAT FLOAT4 REAL DOUBLE FLOAT8 DECIMAL DEC NUMERIC VARCHAR CHAR BPCHAR
    TEXT STRING NVARCHAR JSON BLOB BYTEA BINARY VARBINARY BIT BITSTRING DATE TIME TIME_NS TIMETZ TIMESTAMP
    DATETIME TIMESTAMP_US TIMESTAMPTZ TIMESTAMPTZ_NS TIMESTAMP_S TIMESTAMP_MS TIMESTAMP_NS INTERVAL UUID GUID
    """.split()) | {"TIMESTAMP WITH TIME ZONE", "TIME WITH TIME ZONE", "DOUBLE PRECISION"}
_SIZED = {"DECIMAL", "DEC", "NUMERIC"}            # (precision[, scale])
_LENGTH = {"VARCHAR", "CHAR", "BPCHAR", "NVARCHAR", "STRING", "TEXT"}  # (n): accepted, ignored by DuckDB
_EXAMPLES = "VARCHAR, INTEGER, BIGINT, DOUBLE, DECIMAL(18,2), DATE, TIMESTAMP, BOOLEAN"
_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\s+[A-Za-z_][A-Za-z0-9_]*)*)\s*(?:\((.*)\))?\s*$", re.S)


def _split_top(text: str) -> list[str]:
    """`a INT, b DECIMAL(9,2)` → ['a INT', 'b DECIMAL(9,2)'] (commas inside parentheses kept)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            raise ValueError("unbalanced parentheses")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError("unbalanced parentheses")
    return [*parts, text[start:]]


def _check_type(text: str, depth: int = 0) -> None:
    if depth > 8:
        raise ValueError("nested too deeply")
    text = text.strip()
    while re.search(r"\[\s*\d*\s*\]$", text):  # LIST (`INTEGER[]`) and ARRAY (`DOUBLE[3]`)
        text = text[: text.rindex("[")].rstrip()
    m = _NAME.match(text)
    if not m:
        raise ValueError("not a type name")
    name, args = " ".join(m.group(1).upper().split()), m.group(2)
    if name in ("STRUCT", "ROW", "UNION") and args is not None:
        for field in _split_top(args):
            fm = re.match(r'^\s*("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)\s+(.+)$', field, re.S)
            if not fm:
                raise ValueError(f"'{field.strip()}' is not 'name TYPE'")
            _check_type(fm.group(2), depth + 1)
        return
    if name == "MAP" and args is not None:
        parts = _split_top(args)
        if len(parts) != 2:
            raise ValueError("MAP takes two types: MAP(key_type, value_type)")
        for part in parts:
            _check_type(part, depth + 1)
        return
    if name not in SCALAR_TYPES:
        raise ValueError(f"DuckDB has no type {name}")
    if args is None:
        return
    numbers = [a.strip() for a in args.split(",")]
    if not all(n.isdigit() for n in numbers):
        raise ValueError(f"{name}(...) takes numbers")
    if name in _SIZED and len(numbers) <= 2:
        precision, scale = int(numbers[0]), int(numbers[1]) if len(numbers) == 2 else 0
        if not 1 <= precision <= 38 or scale > precision:
            raise ValueError("DECIMAL(precision, scale) needs 1 ≤ precision ≤ 38 and scale ≤ precision")
        return
    if name in _LENGTH and len(numbers) == 1:
        return
    raise ValueError(f"{name} takes no parameters here")


def duckdb_type(value: str) -> str:
    """`value` if DuckDB knows it as a type name (with its parameters), else a one-line error."""
    try:
        _check_type(value)
    except ValueError as exc:
        raise PydanticCustomError("value_error", "'{value}' is not a DuckDB type ({why}) — use e.g. {examples}",
                                  {"value": str(value)[:60], "why": str(exc), "examples": _EXAMPLES}) from None
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise PydanticCustomError("value_error", "'{value}' is not a regular expression ({why})",
                                  {"value": value[:60], "why": str(exc)}) from None
    return value


def _rate(value: float) -> float:
    if value != 0 and not 0.01 <= value <= 1000:
        raise PydanticCustomError("value_error", "expected 0 (no limit) or 0.01–1000 requests per second, got "
                                  "{value}", {"value": value})
    return value


RateLimit = Annotated[float, AfterValidator(_rate)]
DuckDBType = Annotated[str, AfterValidator(duckdb_type)]
Regex = Annotated[str, AfterValidator(_regex)]
OneChar = Annotated[str, Field(min_length=1, max_length=1)]


class SourceOptions(BaseModel):
    """Base of every kind's `Options`: unknown names refused, every field described (for docs/sources.md)."""

    model_config = ConfigDict(extra="forbid")

    # File-name suffixes the kind reads (lower case); None: not a file kind, or any name.
    FORMATS: ClassVar[tuple[str, ...] | None] = None


class TypesOption(SourceOptions):
    types: dict[str, DuckDBType] = Field(
        default_factory=dict,
        description="column → DuckDB type applied after reading, e.g. `{ma_xa: VARCHAR, ngay_nhan: DATE}` "
                    "(VARCHAR keeps the leading zeros of codes)")


class ParsingOptions(TypesOption):
    """How text cells are typed the Vietnamese way (`pipelines.sources.parsing`)."""

    date_format: str | None = Field(
        default=None, description="strptime format of text dates in DATE columns, e.g. `%d/%m/%Y`")
    timestamp_format: str | None = Field(
        default=None, description="strptime format of text timestamps (default: `date_format`), "
                                  "e.g. `%d/%m/%Y %H:%M:%S`")
    decimal_separator: OneChar | None = Field(
        default=None, description="decimal mark of text numbers: `,` for `50,5` (default `.`)")
    thousands: OneChar | None = Field(
        default=None, description="thousands separator of text numbers: `.` for `1.234.567` (strict: "
                                  "a number grouped otherwise is quarantined)")


class HttpOptions(SourceOptions):
    """The HTTP client of the `api` and `ckan` kinds (`pipelines.sources.web`)."""

    auth: Literal["bearer", "api_key", "none"] | None = Field(
        default=None, description="how the token from `connection` is sent: bearer | api_key | none "
                                  "(default bearer with a connection, none without)")
    api_key_header: str | None = Field(
        default=None, description="header carrying the key with `auth: api_key` (default X-API-Key; "
                                  "ckan: Authorization)")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    # Bounded: a tenant file is untrusted, and `rate_limit: 0.000001` or `timeout: 1e9` would hold a worker
    # (and the tenant's pool slot) for days while looking busy.
    rate_limit: RateLimit = Field(default=10, description="requests per second at most (0: no limit; "
                                                         "otherwise 0.01–1000)")
    timeout: float = Field(default=30, gt=0, le=600, description="seconds per request (at most 600)")
    retries: int = Field(default=3, ge=0, le=10, description="retries on timeouts, connection errors, 429 and "
                                                              "5xx (at most 10)")
    backoff: float = Field(default=0.5, ge=0, le=60, description="first wait before a retry, in seconds (at most "
                                                                 "60), doubled each retry up to 5 minutes")


def _expected(err: dict[str, Any]) -> str:
    """What pydantic wanted, in the tenant file's words."""
    kind = err["type"]
    words = {"bool_type": "true or false", "bool_parsing": "true or false", "int_type": "a whole number",
             "int_parsing": "a whole number", "int_from_float": "a whole number", "float_type": "a number",
             "float_parsing": "a number", "string_type": "text", "dict_type": "a mapping ({key: value})",
             "list_type": "a list ([a, b])", "model_type": "a mapping ({key: value})",
             "model_attributes_type": "a mapping ({key: value})"}
    if kind in words:
        return words[kind]
    if kind == "literal_error":
        return f"one of {err['ctx']['expected']}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        sign = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}[kind]
        bound = next(iter(err["ctx"].values()))
        return f"a number {sign} {bound:g}" if isinstance(bound, float) else f"a number {sign} {bound}"
    if kind in ("string_too_short", "string_too_long"):
        return "exactly one character" if err.get("ctx", {}).get("max_length") == 1 or \
            err.get("ctx", {}).get("min_length") == 1 else err["msg"].lower()
    return err["msg"]


def _shown(value: Any) -> str:
    from pipelines.redact import redact

    if isinstance(value, dict):
        return f"a mapping with {len(value)} key(s)"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, str):
        text = redact(value)
        return "a string (hidden: it looks like a secret)" if text != value else repr(text[:40])
    return repr(value) if isinstance(value, bool | int | float) or value is None else f"a {type(value).__name__}"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel]:
    """The (sub)model an error location's last key belongs to (`pagination.tpye` → Pagination)."""
    for key in loc[:-1]:
        field = model.model_fields.get(key) if isinstance(key, str) else None
        sub = getattr(field, "annotation", None) if field else None
        for candidate in (sub, *getattr(sub, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                model = candidate
                break
        else:
            return model
    return model


def validate_options(kind: str, options: type[SourceOptions], raw: Any) -> dict[str, Any]:
    """`raw` checked against the kind's `Options`: the normalised dict (defaults in, None left out), or a
    ValidationError whose errors each read `unknown option — allowed: …` / `expected …, got …`."""
    try:
        return options.model_validate(raw if raw is not None else {}).model_dump(exclude_none=True)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                model = _model_at(options, loc)
                own = [f for f in model.__dict__.get("__annotations__", {}) if f in model.model_fields]
                allowed = ", ".join([*own, *(f for f in model.model_fields if f not in own)])
                what = f"{kind} {loc[-2]}" if len(loc) > 1 else kind
                text = f"unknown {what} option — allowed: {allowed}"
            elif err["type"] == "value_error":
                text = err["msg"].removeprefix("Value error, ")
            else:
                text = f"expected {_expected(err)}, got {_shown(err.get('input'))}"
            problems.append({"type": PydanticCustomError("value_error", "{text}", {"text": text}), "loc": loc,
                             "input": None})
        raise ValidationError.from_exception_data(options.__name__, problems) from None


def check_format(kind: str, options: type[SourceOptions], location: str | None) -> None:
    """Refuse a file whose suffix the kind cannot read (`.ods` for excel), naming the formats it reads."""
    formats = options.FORMATS
    if not formats or not location or "://" in location:
        return
    name = location.replace("\\", "/").rsplit("/", 1)[-1]
    if "." not in name or "${" in name or name.endswith("*"):
        return  # no suffix, a variable or an open glob: the file's name is known only at run time
    suffix = "." + name.rsplit(".", 1)[-1].lower()
    if any(ch in suffix for ch in "*?["):
        return
    if suffix in formats:
        return
    from pipelines.sources import REGISTRY, options_for

    other = [k for k in REGISTRY if k != kind and suffix in (options_for(k).FORMATS or ())]
    hint = f"; a {suffix} file is read by kind: {other[0]}" if other else \
        f" — convert the file (e.g. save it as {formats[0]}) or ask the agency for one of those"
    raise PydanticCustomError("value_error", "{text}", {"text": (
        f"the {kind} reader cannot read '{suffix}' files; it reads {', '.join(formats)}{hint}")})


def _type_text(annotation: Any) -> str:
    """`dict[str, DuckDBType] | None` → `mapping text → DuckDB type`, for the docs."""
    import types as pytypes
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = _type_text(args[0])
        return "DuckDB type" if args[1:] and any(getattr(m, "func", None) is duckdb_type for m in args[1:]) \
            else inner
    if origin in (typing.Union, pytypes.UnionType):
        return " or ".join(_type_text(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in args)
    if origin is dict:
        return f"mapping {_type_text(args[0])} → {_type_text(args[1])}"
    if origin is list:
        return f"list of {_type_text(args[0])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping (below)"
    return {str: "text", int: "whole number", float: "number", bool: "true/false", Any: "any"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def options_table(kind: str, model: type[BaseModel]) -> str:
    """The Markdown table of a kind's options (name, type, default, description), as docs/sources.md shows."""
    from pydantic_core import PydanticUndefined

    rows = ["| option | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        default = field.default if field.default is not PydanticUndefined else field.default_factory()
        shown = "—" if default is None else f"`{default}`"
        rows.append(f"| `{name}` | {_type_text(field.annotation)} | {shown} | "
                    f"{(field.description or '').replace('|', '/')} |")
    return "\n".join(rows)


def options_doc() -> str:
    """Every kind's option tables, generated from the `Options` models (`python -m pipelines.sources.options`
    rewrites the section of docs/sources.md between its markers; a test fails when they differ)."""
    from pipelines.sources import REGISTRY, options_for

    parts = []
    for kind in REGISTRY:
        model = options_for(kind)
        formats = f" Reads {', '.join(model.FORMATS)} files." if model.FORMATS else ""
        parts.append(f"### `{kind}`\n\n{(model.__doc__ or '').strip()}{formats}\n\n{options_table(kind, model)}\n")
        for name, field in model.model_fields.items():
            sub = field.annotation
            for candidate in (sub, *getattr(sub, "__args__", ())):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    parts.append(f"#### `{kind}.{name}`\n\n{options_table(kind, candidate)}\n")
    return "\n".join(parts)


BEGIN = "<!-- options: generated by `python -m pipelines.sources.options`; do not edit by hand -->"
END = "<!-- end of generated options -->"


def rewrite_doc(path: str = "docs/sources.md") -> bool:
    """Put the generated tables between the markers of `path`; True when the file changed."""
    from pathlib import Path

    doc = Path(path)
    text = doc.read_text(encoding="utf-8")
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    new = f"{head}{BEGIN}\n\n{options_doc()}\n{END}{tail}"
    if new != text:
        doc.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    # The package's copy of this module (run as __main__ this file is loaded a second time).
    from pipelines.sources import options as _package

    print("docs/sources.md", "rewritten" if _package.rewrite_doc() else "already current")
