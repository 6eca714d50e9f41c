"""Model registry: versions, training-data fingerprints, parameters, metrics and cards in `meta.models`.

Artefacts are saved with skops (a format that loads without executing arbitrary code), never pickle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
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


# Hex digits 0-9 spelled as the letters g-p: a 64-character digest then holds no run of digits that a
# personal-data scan could mistake for a citizen ID (12 digits) or a phone number.
_NO_DIGITS = str.maketrans("0123456789", "ghijklmnop")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().translate(_NO_DIGITS)


def data_fingerprint(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """Fingerprint of a training set computed in DuckDB: row count plus an order-independent hash sum."""
    n, h = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM ({query}) t").fetchone()
    return _digest(f"{n}:{h}")


def version_for(name: str, fingerprint: str, params: dict[str, Any]) -> str:
    """Content-addressed version: same data and parameters give the same version (retries stay idempotent)."""
    return f"{name}-{_digest(json.dumps([fingerprint, params], sort_keys=True, default=str))[:12]}"


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


def recorded_run(con: duckdb.DuckDBPyConnection, name: str, version: str, output_table: str) -> ModelRun | None:
    """The run already recorded for this exact version, if its predictions are still in `output_table`.

    Versions are content-addressed, so a match means same data and parameters: the retraining DAG and the
    pipeline's own `train` step can both fire on one change without fitting the model twice.
    """
    row = con.execute("SELECT data_fingerprint, params, metrics, artefact_path, model_card FROM meta.models "
                      "WHERE model_name = ? AND model_version = ?", [name, version]).fetchone()
    schema, table = output_table.split(".")
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                         [schema, table]).fetchone()[0]
    if row is None or not exists:
        return None
    n = con.execute(f"SELECT count(*) FROM {output_table} WHERE model_version = ?", [version]).fetchone()[0]
    has_rows = con.execute(f"SELECT count(*) FROM {output_table}").fetchone()[0] > 0
    if has_rows and not n:
        return None
    fp, params, metrics, artefact, card = row
    if artefact and not Path(artefact).exists():
        return None
    return ModelRun(name, version, fp, json.loads(params), json.loads(metrics), Path(artefact) if artefact else None,
                    card)


@contextmanager
def duckdb_memory_limit(con: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """Cap DuckDB's memory for a heavy feature query (it spills to disk beyond it), then restore the setting.

    Without it DuckDB may take up to 80 % of RAM for window functions over millions of dossiers, on top
    of what pandas and scikit-learn hold in the same process.
    """
    previous = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    con.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        con.execute(f"SET memory_limit = '{previous}'")
