"""Where things live: one mapping from environment to paths, not ifs scattered through the code.

`TONGHOP_HOME` (default `<project>/var`) holds every tenant's data folder:
`<home>/<tenant>/warehouse.duckdb` (the writer's file), `<home>/<tenant>/serving.duckdb` (the read-only
snapshot readers use), `<home>/<tenant>/sources/` (demo source files), `<home>/<tenant>/runs.jsonl`
(the run log, kept outside the warehouse so a failed run leaves the warehouse untouched).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TENANTS_DIR = Path(os.environ.get("TONGHOP_TENANTS_DIR", PROJECT_ROOT / "tenants"))
WAREHOUSE_SQL_DIR = PROJECT_ROOT / "warehouse"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


def tonghop_home() -> Path:
    return Path(os.environ.get("TONGHOP_HOME", PROJECT_ROOT / "var")).resolve()


def tenants_dir() -> Path:
    return Path(os.environ.get("TONGHOP_TENANTS_DIR", TENANTS_DIR)).resolve()


def env_number(name: str, default: float, *, integer: bool = False, low: float | None = None,
               high: float | None = None, low_open: bool = False, meaning: str = "") -> float:
    """A numeric setting from the environment (an operator's knob, never a tenant's), `default` when unset.
    ConfigError naming the variable, what it means and an example when it is not a number in range."""
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    above = value is not None and (low is None or (value > low if low_open else value >= low))
    if not above or (high is not None and value > high):
        from pipelines.errors import ConfigError

        bounds = f" in {'(' if low_open else '['}{low}, {high}]" if low is not None and high is not None else \
            (f" ≥ {low}" if low is not None else "")
        raise ConfigError(f"environment variable {name} must be {'a whole number' if integer else 'a number'}"
                          f"{bounds}{f' ({meaning})' if meaning else ''}, got {raw[:40]!r} — set e.g. "
                          f"{name}={default}")
    return value


# Folders of TONGHOP_HOME that belong to the installation, never to one tenant's data.
RESERVED_HOME_FOLDERS = ("access", "airflow", ".restore-trash")


def resolve_data_dir(data_dir: str, tenant_id: str | None = None) -> Path:
    """A tenant's `data_dir`: relative to (or absolute inside) TONGHOP_HOME, after symlinks; no `~`, no
    variables, no `..` (a tenant file must not point its warehouse at another tenant's or the system's files).
    With `tenant_id`, also not the installation's own folders (accounts, Airflow) nor another tenant's default
    folder (`<home>/<other tenant id>`), nor one holding or inside them.
    Raises ValueError with the fix (the config check names the file and field)."""
    home = tonghop_home()
    if not data_dir.isprintable():
        raise ValueError(f"{data_dir[:80]!r} holds a control character (a newline, a NUL…) — give a plain folder "
                         f"name inside the data root {home}")
    if data_dir.startswith("~") or "$" in data_dir or ".." in Path(data_dir).parts:
        raise ValueError(f"'{data_dir}' uses '~', a variable or '..' — give a folder inside the data root "
                         f"{home} (relative to it, e.g. 'ninh-binh-2')")
    path = Path(data_dir)
    real = (path if path.is_absolute() else home / path).resolve()
    if real == home or not real.is_relative_to(home):
        raise ValueError(f"'{data_dir}' resolves to {real}, not a folder inside the data root {home} "
                         "(TONGHOP_HOME) — give a folder inside it, or leave data_dir out")
    if tenant_id is not None:
        others = sorted({p.stem for p in tenants_dir().glob("*.yaml")} - {tenant_id})
        for name in (*RESERVED_HOME_FOLDERS, *others):
            taken = home / name
            if real == taken or real.is_relative_to(taken) or taken.is_relative_to(real):
                whose = f"tenant '{name}'" if name in others else "the installation (accounts, Airflow)"
                raise ValueError(f"'{data_dir}' resolves to {real}, which overlaps the folder of {whose} — give "
                                 f"this tenant a folder of its own inside {home}, or leave data_dir out")
        for name, other in other_tenant_claims(tenant_id, _data_dir_claim):  # another tenant's own data_dir, the same or nested
            if real == other or real.is_relative_to(other) or other.is_relative_to(real):
                raise ValueError(f"'{data_dir}' resolves to {real}, which overlaps the data_dir of tenant '{name}' "
                                 f"({other}) — give each tenant a folder of its own inside {home}")
    return real


def other_tenant_claims(tenant_id: str, claim: Callable[[str, dict], T | None]) -> list[tuple[str, T]]:
    """(tenant id, what `claim(id, its file's mapping)` returns) for every other tenant file, read safely — a file
    that does not parse, or a value `claim` refuses (raises), is that file's own error, reported by its own
    check, and claims nothing here; None claims nothing either. For checks that one tenant's folder or bucket
    prefix is not another's (`resolve_data_dir`, `pipelines.lakehouse.options.check_storage`)."""
    from pipelines.yamlsafe import load_yaml_file

    found = []
    for path in sorted(tenants_dir().glob("*.yaml")):
        if path.stem == tenant_id:
            continue
        try:
            data = load_yaml_file(path) or {}
            value = claim(path.stem, data) if isinstance(data, dict) else None
        except Exception:  # noqa: BLE001 — a broken file fails its own check, not this one's
            continue
        if value is not None:
            found.append((path.stem, value))
    return found


def _data_dir_claim(_tenant: str, data: dict) -> Path | None:
    """The folder a tenant file's valid `data_dir` claims (`resolve_data_dir` raises on an invalid one)."""
    value = data.get("data_dir")
    return resolve_data_dir(value) if isinstance(value, str) and value else None


@dataclass(frozen=True)
class TenantPaths:
    """Files of one tenant; every writer and reader gets its paths from here."""

    root: Path

    @classmethod
    def for_tenant(cls, tenant_id: str, data_dir: str | None = None) -> TenantPaths:
        if data_dir:
            try:
                return cls(resolve_data_dir(data_dir, tenant_id))
            except ValueError as exc:
                from pipelines.errors import ConfigError

                raise ConfigError(f"tenant '{tenant_id}': field 'data_dir': {exc}") from None
        return cls(tonghop_home() / tenant_id)

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def snapshot(self) -> Path:
        return self.root / "serving.duckdb"

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def run_log(self) -> Path:
        return self.root / "runs.jsonl"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def validations(self) -> Path:
        return self.root / "validations"

    @property
    def data_docs(self) -> Path:
        """Great Expectations' Data Docs of this tenant's validations (static HTML, rebuilt by `validate`)."""
        return self.root / "data_docs"

    def ensure(self) -> TenantPaths:
        for p in (self.root, self.sources, self.models, self.validations):
            p.mkdir(parents=True, exist_ok=True)
        return self
