"""Model registry: versions, training-data fingerprints, parameters, metrics and cards in `meta.models`.

Artefacts are saved with skops (a format that loads without executing arbitrary code), never pickle, with a
sha256 checksum beside them (`<version>.skops.sha256`, also in the run's metrics) that is verified before
loading: a file changed after training is refused with a clear error and the model is not used. Loading
trusts skops' own safe types plus exactly the types listed in ALLOWED_TYPES (no prefixes): the types the
project's models are made of that skops does not trust by default. Anything else is refused.

A version is content-addressed: the training data's fingerprint, the parameters, the code (the model's
module source and its feature SQL) and the versions of the libraries that fit it (scikit-learn, numpy,
scipy, duckdb, polars). A fixed model or a library upgrade therefore retrains on unchanged data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.reference.pii import NO_DIGITS
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


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().translate(NO_DIGITS)


def data_fingerprint(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """Fingerprint of a training set computed in DuckDB: row count plus an order-independent hash sum."""
    n, h = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM ({query}) t").fetchone()
    return _digest(f"{n}:{h}")


# Types the project's saved models contain beyond what skops trusts by default, listed exactly: the isotonic
# or sigmoid calibration of overdue_risk (sklearn.calibration), its gradient-boosted trees (TreePredictor, and
# the input check they keep as functools.partial(check_array, …): skops lists the wrapped function separately,
# so a partial of anything else is still refused) and the dtype objects numpy arrays carry.
ALLOWED_TYPES = frozenset({
    "functools.partial",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
})
# The libraries that fit the models (as imported) and their installed distributions.
LIBRARIES = {"sklearn": "scikit-learn", "numpy": "numpy", "scipy": "scipy", "duckdb": "duckdb", "polars": "polars"}


class ArtefactError(ValueError):
    """A saved model that must not be used: checksum missing or different, or a type not on the allow-list."""


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that fit the models, from the package metadata (importing them to
    read `__version__` cost a model that does not use scikit-learn seconds of import)."""
    from importlib.metadata import PackageNotFoundError, version

    def _version(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "?"

    return {lib: _version(dist) for lib, dist in LIBRARIES.items()}


def _source(module: str) -> str:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot find the source of model module '{module}' to version it")
    return Path(spec.origin).read_text(encoding="utf-8")


def code_hash(module: str | None, sql: str = "", uses: tuple[str, ...] = ()) -> str:
    """sha256 of the model's module source, the sources of the project modules it `uses` (its calendar, say),
    plus its feature SQL ('' when no module is given)."""
    source = _source(module) if module else ""
    for used in uses:
        source += f"\n-- uses {used} --\n" + _source(used)
    return _digest(source + "\n-- feature SQL --\n" + sql)


def version_for(name: str, fingerprint: str, params: dict[str, Any], module: str | None = None,
                sql: str = "", uses: tuple[str, ...] = (), libraries: tuple[str, ...] = ()) -> str:
    """Content-addressed version: same data, parameters, code (module, the project modules it `uses`, feature
    SQL) and library versions (LIBRARIES plus the model's own `libraries`, distribution names) give the same
    version (retries stay idempotent); any of them changing gives a new one."""
    versions = library_versions()
    if libraries:
        from importlib.metadata import version

        versions = {**versions, **{lib: version(lib) for lib in libraries}}
    parts = [fingerprint, params, code_hash(module, sql, uses), versions]
    return f"{name}-{_digest(json.dumps(parts, sort_keys=True, default=str))[:12]}"


def training_window(first: Any, last: Any) -> str:
    """'2024-01-01 to 2025-10-26': the dates a model learnt from, for its card and metrics."""
    return f"{str(first)[:10]} to {str(last)[:10]}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def save_artefact(estimator: Any, directory: Path, version: str) -> Path:
    """Dump with skops and write the file's sha256 beside it (`<version>.skops.sha256`)."""
    import skops.io as sio

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{version}.skops"
    sio.dump(estimator, path)
    write_checksum(path)
    return path


def write_checksum(path: Path) -> None:
    """The file's sha256 beside it (`<name>.sha256`), checked by `verify_checksum` before it is used."""
    _checksum_path(path).write_text(file_sha256(path) + "\n", encoding="ascii")


RETRAIN = "retrain the model (`tonghop train --tenant <tenant> --model <model>`)"


def verify_checksum(path: Path, expected_sha256: str | None = None, remedy: str = RETRAIN) -> None:
    """ArtefactError (one sentence naming the file and `remedy`) unless `path`'s sha256 is the expected one:
    by default the one saved beside it at training."""
    if expected_sha256 is None:
        sidecar = _checksum_path(path)
        if not sidecar.is_file():
            raise ArtefactError(f"{path}: no checksum file {sidecar.name} beside it, so it cannot be verified — "
                                f"{remedy}")
        expected_sha256 = sidecar.read_text(encoding="ascii").strip()
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise ArtefactError(f"{path}: checksum {actual[:12]}… differs from the one saved at training "
                            f"({expected_sha256[:12]}…): the file was changed or corrupted after training and is "
                            f"not used — {remedy}")


def load_artefact(path: Path, expected_sha256: str | None = None) -> Any:
    """Load a saved model after checking its checksum and that every type is trusted or on ALLOWED_TYPES.

    `expected_sha256` defaults to the checksum saved beside the file. Raises ArtefactError (one sentence
    naming the file and what to do) when the checksum is missing or differs, or a type is not allowed.
    """
    import skops.io as sio

    path = Path(path)
    verify_checksum(path, expected_sha256)
    untrusted = set(sio.get_untrusted_types(file=path))
    refused = sorted(untrusted - ALLOWED_TYPES)
    if refused:
        raise ArtefactError(f"{path}: holds types outside the allow-list {refused} (models/registry.py "
                            "ALLOWED_TYPES): refused, not loaded — if a model legitimately needs one, add it there "
                            "after review")
    return sio.load(path, trusted=sorted(untrusted))


def record(con: duckdb.DuckDBPyConnection, run: ModelRun, run_id: str) -> None:
    """One row in meta.models; the params carry the library versions, the metrics the artefact's checksum."""
    run.params = {**run.params, "library_versions": library_versions()}
    if run.artefact_path is not None:
        run.metrics = {**run.metrics, "artefact_sha256": file_sha256(run.artefact_path)}
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
    if artefact and (not Path(artefact).exists()
                     or json.loads(metrics).get("artefact_sha256") != file_sha256(Path(artefact))):
        return None  # the saved model is gone or was changed since: train again rather than serve it
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
