"""One redaction for every message, log line, run record and metadata table.

Two nets, both applied by `redact()`:
- *known values*: the values of secret environment variables (the pseudonymisation key, every variable a
  tenant names in `connection.env`, and any variable whose name says it holds a secret) are replaced
  wherever they appear, whatever the text around them;
- *shapes*: passwords inside connection strings (URL `user:pass@`, key/value `password=...`, quoted or
  not), bearer tokens and token/key/password query parameters.

`redact_obj()` walks dicts/lists (run records, step metrics) and redacts every string in them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
# Environment variables whose names say they hold a secret.
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|_KEY$|^KEY$|_KEY_|DSN|CREDENTIAL|API_?KEY|PII_KEY)", re.I)
_MIN_SECRET_LEN = 6  # shorter values would mask ordinary words

_registered: set[str] = set()

_KEYS = r"(?:password|passwd|pwd|secret|client[_-]?secret|token|access[_-]?token|refresh[_-]?token|api[_-]?key|apikey)"
# A value after `key=`: ODBC braces ({a;b}}c}), quotes ('a b', "a b", with \ or doubled escapes), or bare.
_VALUE = r"(?:\{(?:[^}]|\}\})*\}|'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.|\"\")*\")"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host — the password runs to the LAST '@' of the authority ('@', ':' and '/'
    # may appear in it unencoded), i.e. the '@' followed by a host with no further '@'.
    (re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s'\"]*:)(?P<pw>[^\s'\"/]*?)"
                r"(?P<post>@(?=[^@\s'\"/?#]*(?:[/?#\s'\"]|$)))"), r"\g<pre>***\g<post>"),
    # `;password=…;` (JDBC, ADO.NET, ODBC): the value runs to the next ';' (spaces included) unless braced/quoted
    (re.compile(r"(?P<pre>;\s*" + _KEYS + r"\s*=\s*)(?P<pw>" + _VALUE + r"|[^;\r\n]*)", re.I), r"\g<pre>***"),
    # key=value / key: value fields (libpq DSN, query strings, JSON-ish text), quoted, braced or bare
    (re.compile(r"(?P<pre>\b" + _KEYS + r"\s*[=:]\s*)(?P<pw>" + _VALUE + r"|[^\s&;,'\"})\]]+)", re.I),
     r"\g<pre>***"),
    # "password": "…" (JSON, Python reprs): the quoted value only
    (re.compile(r"(?P<pre>\b" + _KEYS + r"[\"']\s*:\s*)(?P<pw>" + _VALUE + r")", re.I), r"\g<pre>***"),
    # HTTP authorisation headers
    (re.compile(r"(?P<pre>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=\-]{6,}", re.I), r"\g<pre>***"),
]


def _parts(value: str) -> set[str]:
    """The passwords inside a DSN-shaped secret, raw, unquoted and percent-decoded (printed alone too)."""
    from urllib.parse import quote, unquote

    found: set[str] = set()
    m = re.search(r"://[^:/@\s]*:(.*)@[^@\s]*$", value.split("?")[0])
    if m:
        found.add(m.group(1))
    for m in re.finditer(r"(?:^|[\s;?&])" + _KEYS + r"\s*=\s*(" + _VALUE + r"|[^\s;&]+)", value, re.I):
        found.add(m.group(1))
    out: set[str] = set()
    for pw in found:
        inner = pw[1:-1] if len(pw) >= 2 and pw[0] + pw[-1] in ("''", '""', "{}") else pw
        unescaped = inner.replace("}}", "}").replace("\\'", "'").replace("''", "'").replace('\\"', '"')
        out |= {pw, inner, unescaped, unquote(inner), quote(unescaped, safe="")}
    return {p for p in out if len(p) >= 3}


def register_secret(value: str | None) -> None:
    """Remember a secret value read at run time (a DSN, a token): it is masked wherever it appears."""
    if value and len(value) >= _MIN_SECRET_LEN:
        _registered.add(value)
        _registered.update(_parts(value))  # the parts of a DSN are secrets too (a password printed alone)


def register_env(names: Iterable[str]) -> None:
    for name in names:
        register_secret(os.environ.get(name))


def _known_values() -> list[str]:
    values = set(_registered)
    for name, value in os.environ.items():
        if value and len(value) >= _MIN_SECRET_LEN and _SECRET_NAME.search(name):
            values.add(value)
            values.update(_parts(value))
    # longest first, so a DSN is masked whole before its password alone
    return sorted(values, key=len, reverse=True)


def mask_shapes(text: str) -> str:
    """Only the shape net: passwords in connection strings, tokens in query strings and headers."""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact(text: Any) -> Any:
    """The text with every known secret value and every secret-shaped part masked."""
    if not isinstance(text, str) or not text:
        return text
    for value in _known_values():
        if value in text:
            text = text.replace(value, MASK)
    return mask_shapes(text)


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like object (dicts, lists, strings) with every string redacted."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [redact_obj(v) for v in obj]
    return obj


class RedactingFilter:
    """A logging filter masking secrets in every record's final message (install on handlers)."""

    def filter(self, record: Any) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: Any) -> None:
    if getattr(record, "_tonghop_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 — a bad format string is logging's problem, not ours
        return
    cleaned = redact(message)
    if cleaned != message or record.args:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        import logging

        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._tonghop_redacted = True


_factory_installed = False


def install_log_redaction() -> None:
    """Mask secrets in every log record of this process (CLI, Airflow task processes).

    Two hooks: the record factory redacts each record as it is made (whatever logger or handler later
    writes it, including handlers added after this call), and a filter on the root logger's handlers catches
    records made by code that builds LogRecords itself. Idempotent."""
    import logging

    global _factory_installed
    if not _factory_installed:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
