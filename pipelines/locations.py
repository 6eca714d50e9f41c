"""Where a source may read from: the one policy for locations, used by config checks and by the readers.

A tenant file is untrusted input (another agency, a copied example, a typo), so:
- **files** resolve inside the tenant's data folder (`TenantPaths.root`) or a root the *operator* lists in
  `TONGHOP_ALLOWED_ROOTS` (os.pathsep-separated; the operator's environment, never the tenant file),
  checked after symlinks are resolved; `..` components, `~` and absolute paths elsewhere are refused; a
  glob is checked as a pattern (no `..`) and every file it matches is checked again;
- **variables** (`${VAR}` / `$VAR`) in a location come only from an allow-list: names starting with the
  tenant's id in upper snake case (`NINH_BINH_…` for `ninh-binh`), the platform's non-secret
  `TONGHOP_DEMO_PORT`, and names the operator lists in `TONGHOP_LOCATION_VARS` (comma/space-separated).
  A secret-looking name (`*TOKEN*`, `*PASSWORD*`, `*KEY*`, `*SECRET*`, `*DSN*`, …) is never allowed, even
  when listed: secrets go in `connection: {env: VAR}`, which is sent as a header or password, never put in
  a URL that is logged and stored in `meta.loads`;
- **inline credentials** (a password in a DSN/URL, `password=…`, `token=`/`api_key=` with a literal value,
  an `Authorization` header) are refused wherever they appear in a location or an option value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ALLOWED_ROOTS_ENV = "TONGHOP_ALLOWED_ROOTS"
LOCATION_VARS_ENV = "TONGHOP_LOCATION_VARS"
PLATFORM_VARS = frozenset({"TONGHOP_DEMO_PORT"})

_VAR = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_NAME = re.compile(r"TOKEN|PASS|PWD|KEY|SECRET|DSN|CREDENTIAL|AUTH|COOKIE|SESSION", re.I)
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")

USE_CONNECTION = ("put the secret in an environment variable and reference it with 'connection: {env: VAR}' "
                  "(or an Airflow connection: 'connection: {airflow_conn_id: ID}')")


class LocationRefused(ValueError):
    """A location or option breaks the policy: `problem` and `fix` make the one-line message."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem} — {fix}")
        self.problem, self.fix = problem, fix


def is_url(location: str) -> bool:
    return bool(_URL.match(location))


def variables(text: str) -> list[str]:
    return [m.group("braced") if m.group("braced") is not None else m.group("bare") for m in _VAR.finditer(text)]


def tenant_prefix(tenant_id: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", tenant_id.upper()) + "_"


def operator_vars() -> set[str]:
    return {v for v in re.split(r"[\s,;:]+", os.environ.get(LOCATION_VARS_ENV, "")) if v}


def allowed_roots() -> list[Path]:
    """The folders the operator lets every tenant read besides its own data folder."""
    return [Path(p).expanduser().resolve() for p in os.environ.get(ALLOWED_ROOTS_ENV, "").split(os.pathsep)
            if p.strip()]


def check_variable(name: str, tenant_id: str | None) -> None:
    """Refuse a variable a location may not use (`tenant_id` None: only the tenant-independent rules)."""
    if not _VALID_NAME.match(name):
        raise LocationRefused(f"'${{{name}}}' is not a variable name", "use ${UPPER_SNAKE_NAME}")
    if SECRET_NAME.search(name):
        raise LocationRefused(f"variable {name} looks like a secret and may not be put in a location",
                              USE_CONNECTION)
    if name in PLATFORM_VARS or name in operator_vars():
        return
    if tenant_id is None:
        return
    prefix = tenant_prefix(tenant_id)
    if not name.startswith(prefix):
        raise LocationRefused(f"variable {name} is not allowed in a location",
                              f"name it {prefix}… (the tenant's own variables) or ask the operator to add it "
                              f"to {LOCATION_VARS_ENV}")


def expand(location: str, tenant_id: str | None = None) -> str:
    """The location with its allowed variables expanded; an unset one is named (LocationRefused otherwise)."""
    names = variables(location)
    for name in names:
        check_variable(name, tenant_id)
    missing = sorted({n for n in names if n not in os.environ})
    if missing:
        raise LocationRefused(f"environment variable(s) {', '.join(missing)} not set",
                              f"set {', '.join(missing)} where the pipeline runs (for the demo: `make demo` or "
                              "`make airflow` set TONGHOP_DEMO_PORT and serve the demo's services)")
    return _VAR.sub(lambda m: os.environ[m.group("braced") or m.group("bare")], location)


def check_path_text(location: str) -> None:
    """What a file location may not say, before anything is expanded or resolved."""
    if location.startswith("~"):
        raise LocationRefused("'~' (a home folder) is not allowed in a file location",
                              "give a path relative to the tenant's data folder, e.g. sources/file.csv")
    parts = re.split(r"[/\\]", location)
    if ".." in parts:
        raise LocationRefused("'..' is not allowed in a file location (it leaves the tenant's data folder)",
                              "give a path relative to the tenant's data folder, e.g. sources/file.csv")


def confine(path: Path, root: Path, what: str = "the file") -> Path:
    """`path` resolved (symlinks followed); refused unless inside `root` or an operator-listed root."""
    real = path.resolve()
    roots = [root.resolve(), *allowed_roots()]
    if any(real == r or real.is_relative_to(r) for r in roots):
        return real
    raise LocationRefused(f"{what} resolves to {real}, outside the tenant's data folder {roots[0]}",
                          f"put the file under {roots[0]} (or ask the operator to list its folder in "
                          f"{ALLOWED_ROOTS_ENV})")


# --- inline credentials ---------------------------------------------------------------------------------

_INLINE = [
    (re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^/@\s:]*:[^/\s]*@"), "a password in a URL/DSN (user:password@host)"),
    (re.compile(r"(?:^|[\s;?&{,])(?:password|passwd|pwd)\s*=\s*(?!\$\{?[A-Za-z_])\S", re.I), "a password field"),
    (re.compile(r"[?&;](?:token|access_token|api_?key|apikey|key|secret|client_secret|sig|signature)="
                r"(?!\$\{?[A-Za-z_]|&|$)", re.I), "a token/api_key query parameter"),
    (re.compile(r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{6,}"), "an Authorization value"),
]
_SECRET_KEYS = {"password", "passwd", "pwd", "token", "access_token", "api_key", "apikey", "secret",
                "client_secret", "authorization", "proxy_authorization", "cookie", "x_api_key", "private_key"}


def inline_credential(text: str) -> str | None:
    """What kind of inline credential `text` holds, or None."""
    for pattern, what in _INLINE:
        if pattern.search(text):
            return what
    return None


def _strings(value: Any, path: str) -> Iterator[tuple[str, str | None, Any]]:
    """(dotted path, key, value) for every leaf of an options tree."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            yield sub, str(k), v
            yield from _strings(v, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def check_inline_credentials(location: str | None, options: dict[str, Any]) -> None:
    if location:
        what = inline_credential(location)
        if what:
            raise LocationRefused(f"'location' holds {what}", USE_CONNECTION)
    for where, key, value in _strings(options, ""):
        norm = re.sub(r"[^a-z0-9]", "_", (key or "").lower())
        if norm in _SECRET_KEYS and isinstance(value, str | int) and str(value).strip():
            raise LocationRefused(f"option '{where}' holds a credential", USE_CONNECTION)
        if isinstance(value, str):
            what = inline_credential(value)
            if what:
                raise LocationRefused(f"option '{where}' holds {what}", USE_CONNECTION)
