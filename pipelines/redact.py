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
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|_KEY$|^KEY$|DSN|CREDENTIAL|API_?KEY|PII_KEY)", re.I)
_MIN_SECRET_LEN = 6  # shorter values would mask ordinary words

_registered: set[str] = set()

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host — password up to the last '@' before the host part
    (re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s'\"]*:)(?P<pw>[^@\s]*)(?P<post>@)"), r"\g<pre>***\g<post>"),
    # key=value DSN fields, quoted ('a b' or "a b") or bare
    (re.compile(r"(?P<pre>\b(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?token)\s*[=:]\s*)"
                r"(?P<pw>'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"]+)", re.I), r"\g<pre>***"),
    # HTTP authorisation headers
    (re.compile(r"(?P<pre>\b(?:Bearer|Basic|Token)\s+)[A-Za-z0-9._~+/=\-]{6,}", re.I), r"\g<pre>***"),
]


def register_secret(value: str | None) -> None:
    """Remember a secret value read at run time (a DSN, a token): it is masked wherever it appears."""
    if value and len(value) >= _MIN_SECRET_LEN:
        _registered.add(value)
        # the parts of a DSN are secrets too (a password printed alone)
        m = re.search(r"://[^:/@\s]*:([^@\s]+)@", value)
        if m and len(m.group(1)) >= 3:
            _registered.add(m.group(1))


def register_env(names: Iterable[str]) -> None:
    for name in names:
        register_secret(os.environ.get(name))


def _known_values() -> list[str]:
    values = set(_registered)
    for name, value in os.environ.items():
        if value and len(value) >= _MIN_SECRET_LEN and _SECRET_NAME.search(name):
            values.add(value)
    # longest first, so a DSN is masked whole before its password alone
    return sorted(values, key=len, reverse=True)


def redact(text: Any) -> Any:
    """The text with every known secret value and every secret-shaped part masked."""
    if not isinstance(text, str) or not text:
        return text
    for value in _known_values():
        if value in text:
            text = text.replace(value, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


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
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 — a bad format string is logging's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction() -> None:
    """Mask secrets in everything the root logger's handlers write (CLI, Airflow task processes)."""
    import logging

    root = logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
