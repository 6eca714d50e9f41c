"""Backup and restore of one tenant's data folder: warehouse (raw, staging, marts, the quarantine and the `meta`
schema), serving snapshot, run records, models, validation results and source drops.

`tonghop backup --tenant T --to DIR` takes the tenant's writer lock (`pipelines.runcontrol`: no pipeline step,
CLI or Airflow, writes meanwhile; a run in progress makes it wait `--wait` s or fail with who holds it),
checkpoints the warehouse so the file holds every committed change, copies the folder and writes
`manifest.json`: every file's size and SHA-256, the warehouse's tables and row counts, the last run id.

`tonghop restore --tenant T --from DIR` first checks the whole backup against its manifest (a missing,
extra-sized or altered file, another tenant's backup, an unknown format: refused, nothing touched), then
under the lock copies it next to the tenant's folder, checks the copies again, and swaps them in. What it
replaced is kept in `<data root>/.restore-trash/<tenant>-<time>/` until the operator deletes it. The Airflow
metadata database (run history, pools) is backed up on its own, with `pg_dump` (docs/deployment.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.errors import TonghopError
from pipelines.runcontrol import LOCK_NAME, controlled, read_records

MANIFEST = "manifest.json"
FORMAT = "tonghop-backup/1"
DATA = "data"  # the tenant folder's copy, inside the backup folder
SKIP_SUFFIXES = (".tmp", ".tmp.wal")  # a dead publish's temp snapshot (cleaned by the next lock holder)


class BackupError(TonghopError):
    """A backup that cannot be made, or a backup that must not be restored: nothing was changed (exit 1; a run
    holding the warehouse is `WarehouseBusy`, exit 2)."""

    exit_code = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> list[Path]:
    """The tenant folder's files to carry, relative to it: all but the lock and dead temp files."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.name != LOCK_NAME and not p.name.endswith(SKIP_SUFFIXES):
            out.append(p.relative_to(root))
    return out


def _tables(warehouse: Path) -> dict[str, int]:
    import duckdb

    from pipelines.sqltext import quote_ident

    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                            "WHERE table_type = 'BASE TABLE' ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": con.execute(f"SELECT count(*) FROM {quote_ident(s)}.{quote_ident(t)}").fetchone()[0]
                for s, t in names}


def _checkpoint(warehouse: Path) -> None:
    """Fold the write-ahead log into the file, so that the file alone is the whole warehouse."""
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("CHECKPOINT")


@dataclass
class BackupResult:
    tenant_id: str
    folder: Path
    n_files: int
    n_bytes: int
    tables: dict[str, int]
    last_run: str | None
    action: str = "backup"
    kept: Path | None = None

    def summary(self) -> str:
        rows = sum(self.tables.values())
        line = (f"{self.action} of tenant '{self.tenant_id}': {self.n_files} files, {self.n_bytes:,} bytes, "
                f"{len(self.tables)} warehouse tables ({rows:,} rows), last run {self.last_run or '—'}")
        line += f"\n  {'written to' if self.action == 'backup' else 'restored from'} {self.folder}"
        if self.kept is not None:
            line += f"\n  the data it replaced is kept in {self.kept} (delete it when the restore is confirmed)"
        return line


def _tenant_paths(tenant_id: str):
    from pipelines.config import load_tenant
    from pipelines.settings import TenantPaths

    cfg = load_tenant(tenant_id)
    if cfg.storage.kind != "duckdb":
        raise BackupError(f"tenant '{cfg.tenant_id}' keeps its warehouse in the lakehouse (storage.kind "
                          f"'{cfg.storage.kind}'): back up its catalogue database and table files as in "
                          "docs/deployment.md, not with tonghop backup")
    return cfg, TenantPaths.for_tenant(cfg.tenant_id, cfg.data_dir)


def _last_run(paths) -> str | None:
    runs = [r["run_id"] for r in read_records(paths) if r.get("event") == "run_end"]
    return runs[-1] if runs else None


def backup(tenant_id: str, folder: Path, *, wait: float | None = None) -> BackupResult:
    """Copy the tenant's data folder into `folder` (new or empty) with a checksummed manifest."""
    cfg, paths = _tenant_paths(tenant_id)
    folder = Path(folder).resolve()
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"backup folder {folder} is not empty: give a new folder (one backup per folder)")
    if folder.is_relative_to(paths.root):
        raise BackupError(f"backup folder {folder} is inside the tenant's own data folder {paths.root}: "
                          "give a folder elsewhere (another disk or machine, ideally)")
    if not paths.warehouse.exists():
        raise BackupError(f"tenant '{cfg.tenant_id}' has no warehouse yet ({paths.warehouse}): run its pipeline "
                          "first — there is nothing to back up")
    with controlled(paths, cfg.tenant_id, f"backup__{datetime.now(UTC):%Y%m%dT%H%M%S}", "cli", wait=wait):
        _checkpoint(paths.warehouse)
        tables = _tables(paths.warehouse)
        files = []
        for rel in _files(paths.root):
            target = folder / DATA / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(paths.root / rel, target)
            files.append({"path": rel.as_posix(), "bytes": target.stat().st_size, "sha256": _sha256(target)})
        manifest = {"format": FORMAT, "tenant_id": cfg.tenant_id, "created_at": datetime.now(UTC).isoformat(),
                    "host": socket.gethostname(), "source_folder": str(paths.root), "last_run": _last_run(paths),
                    "tables": tables, "files": files}
        tmp = folder / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, folder / MANIFEST)  # the manifest last: a backup cut short has none and is refused
    return BackupResult(cfg.tenant_id, folder, len(files), sum(f["bytes"] for f in files), tables,
                        manifest["last_run"])


def verify(folder: Path, tenant_id: str, data_dir: Path | None = None) -> dict:
    """The backup's manifest, after checking every file it lists (in `data_dir`, default the backup's own copy);
    raises BackupError naming the first problem."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{folder} has no {MANIFEST}: not a backup, or one cut short — use another backup") from None
    except ValueError:
        raise BackupError(f"{folder / MANIFEST} is not valid JSON: the backup is damaged — use another") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{folder / MANIFEST}: format {str(manifest.get('format'))[:40]!r} is not {FORMAT!r} — "
                          "restore it with the tonghop version that wrote it")
    if manifest.get("tenant_id") != tenant_id:
        raise BackupError(f"{folder} is a backup of tenant '{str(manifest.get('tenant_id'))[:40]}', not "
                          f"'{tenant_id}': restore it to its own tenant")
    data = Path(data_dir) if data_dir is not None else folder / DATA
    names = set()
    for entry in manifest.get("files", []):
        rel = Path(entry["path"])
        if rel.is_absolute() or ".." in rel.parts:
            raise BackupError(f"{folder / MANIFEST}: file path {entry['path'][:80]!r} leaves the backup — refused")
        names.add(rel.as_posix())
        path = data / rel
        if path.is_symlink() or not path.resolve().is_relative_to(data.resolve()):
            raise BackupError(f"backup {folder}: {rel} is a link leaving the backup — refused, nothing was restored")
        if not path.is_file():
            raise BackupError(f"backup {folder}: {rel} is missing — the backup is incomplete, use another")
        if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
            raise BackupError(f"backup {folder}: {rel} does not match its checksum in {MANIFEST} (corrupt or "
                              "altered) — nothing was restored; use another backup")
    if "warehouse.duckdb" not in names:
        raise BackupError(f"backup {folder} holds no warehouse.duckdb — nothing was restored")
    return manifest


def restore(tenant_id: str, folder: Path, *, wait: float | None = None) -> BackupResult:
    """Replace the tenant's data folder by a verified backup; the replaced files are kept aside."""
    cfg, paths = _tenant_paths(tenant_id)
    folder = Path(folder).resolve()
    manifest = verify(folder, cfg.tenant_id)  # before touching anything, and before waiting for the lock
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    staging = paths.root.parent / f".restore-{cfg.tenant_id}-{os.getpid()}"
    trash = paths.root.parent / ".restore-trash" / f"{cfg.tenant_id}-{stamp}"
    paths.root.mkdir(parents=True, exist_ok=True)
    with controlled(paths, cfg.tenant_id, f"restore__{stamp}", "cli", wait=wait):
        shutil.rmtree(staging, ignore_errors=True)
        try:
            for entry in manifest["files"]:  # only what the manifest lists (and verify checked), no link followed
                target = staging / entry["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(folder / DATA / entry["path"], target, follow_symlinks=False)
            verify(folder, cfg.tenant_id, data_dir=staging)  # the copies on this disk, checked again
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        trash.mkdir(parents=True)
        # The lock file stays (we hold it); everything else moves aside, then the backup's entries move in.
        for entry in sorted(paths.root.iterdir()):
            if entry.name != LOCK_NAME:
                os.replace(entry, trash / entry.name)
        for entry in sorted(staging.iterdir()):
            os.replace(entry, paths.root / entry.name)
        staging.rmdir()
    tables = manifest.get("tables", {})
    return BackupResult(cfg.tenant_id, folder, len(manifest["files"]), sum(f["bytes"] for f in manifest["files"]),
                        tables, manifest.get("last_run"), action="restore", kept=trash)
