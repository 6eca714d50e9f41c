"""What every publisher receives and returns (`pipelines/publish/<target>.py`: `publish(ctx) -> PublishResult`)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pipelines.config import TenantConfig
    from pipelines.settings import TenantPaths


@dataclass(frozen=True)
class PublishContext:
    """One publication of one tenant: it reads `snapshot` (read-only, never the warehouse) and writes under
    `output_root` (inside the tenant's data folder)."""

    tenant: TenantConfig
    paths: TenantPaths
    snapshot: Path
    output_root: Path
    run_id: str
    # True for the scheduled task: stop early ("skipped") when no open dataset's content changed.
    only_if_changed: bool = False

    @classmethod
    def for_tenant(cls, tenant: TenantConfig, run_id: str, only_if_changed: bool = False) -> PublishContext:
        from pipelines.settings import TenantPaths

        paths = TenantPaths.for_tenant(tenant.tenant_id, tenant.data_dir)
        return cls(tenant, paths, paths.snapshot, paths.root, run_id, only_if_changed)


@dataclass
class DatasetOutcome:
    id: str
    status: Literal["published", "unchanged", "refused"]
    reasons: list[str] = field(default_factory=list)
    version: str | None = None


@dataclass
class PublishResult:
    target: str
    status: Literal["ok", "skipped", "failed"]
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)  # dataset id -> reasons
    message: str = ""

    def summary(self) -> str:
        head = (f"{self.target}: {self.status} — {len(self.written)} written, {len(self.unchanged)} unchanged, "
                f"{len(self.refused)} refused")
        lines = [head + (f" ({self.message})" if self.message else "")]
        lines += [f"  refused {name}: {'; '.join(reasons)}" for name, reasons in sorted(self.refused.items())]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_if_changed(path: Path, data: bytes) -> bool:
    """Replace `path` atomically with `data` unless it already holds exactly that (its mtime then kept, so
    an unchanged publication looks unchanged to every downstream copy); True when written."""
    if path.exists() and path.read_bytes() == data:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True
