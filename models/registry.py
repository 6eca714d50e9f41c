"""Model registry: versions, training-data fingerprints, parameters, metrics and cards in `meta.models`.

Artefacts are saved with skops (a format that loads without executing arbitrary code), never pickle.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.warehouse import now

if TYPE_CHECKING:
    import duckdb


@dataclass
class ModelRun:
    name: str
    version: str
    data_fingerprint: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    artefact_path: Path | None
    card: str


def data_fingerprint(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """Fingerprint of a training set computed in DuckDB: row count plus an order-independent hash sum."""
    n, h = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM ({query}) t").fetchone()
    return hashlib.sha256(f"{n}:{h}".encode()).hexdigest()


def version_for(name: str, fingerprint: str, params: dict[str, Any]) -> str:
    """Content-addressed version: same data and parameters give the same version (retries stay idempotent)."""
    digest = hashlib.sha256(json.dumps([fingerprint, params], sort_keys=True, default=str).encode()).hexdigest()
    return f"{name}-{digest[:12]}"


def save_artefact(estimator: Any, directory: Path, version: str) -> Path:
    import skops.io as sio

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{version}.skops"
    sio.dump(estimator, path)
    return path


def load_artefact(path: Path) -> Any:
    """Load a saved model, accepting only types skops reports as safe or that this project trusts."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    trusted = [t for t in untrusted if t.startswith(("sklearn.", "numpy.", "scipy."))]
    if set(untrusted) - set(trusted):
        raise ValueError(f"{path}: refuses to load untrusted types {sorted(set(untrusted) - set(trusted))}")
    return sio.load(path, trusted=trusted)


def record(con: duckdb.DuckDBPyConnection, run: ModelRun, run_id: str) -> None:
    con.execute("INSERT OR REPLACE INTO meta.models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        run.name, run.version, run_id, now(), run.data_fingerprint, json.dumps(run.params, default=str),
        json.dumps(run.metrics, default=str), str(run.artefact_path) if run.artefact_path else None, run.card])
