"""Registry: content-addressed versions (data, parameters, code, libraries), order-independent fingerprints,
checksummed artefacts, and skops loading that refuses every type outside the exact allow-list."""

from __future__ import annotations

import duckdb
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from models import registry
from models.registry import (
    ALLOWED_TYPES,
    ArtefactError,
    data_fingerprint,
    load_artefact,
    save_artefact,
    version_for,
)


class NotAModel:
    """A type skops does not know: loading it could run arbitrary code, so it must be refused."""


def test_versions_depend_on_data_parameters_code_sql_and_libraries(monkeypatch):
    assert version_for("m", "fp", {"a": 1, "b": 2}) == version_for("m", "fp", {"b": 2, "a": 1})
    assert version_for("m", "fp", {"a": 1}) != version_for("m", "fp", {"a": 2})
    assert version_for("m", "fp", {"a": 1}) != version_for("m", "fp2", {"a": 1})
    real_source = registry._source
    base = version_for("m", "fp", {}, module="models.staffing", sql="select 1")
    assert base == version_for("m", "fp", {}, module="models.staffing", sql="select 1")
    assert base != version_for("m", "fp", {}, module="models.staffing", sql="select 2")  # feature SQL
    assert base != version_for("m", "fp", {}, module="models.anomalies", sql="select 1")  # model code
    # A module the model uses (the forecast's calendar of holidays and national events) and its own libraries.
    uses = version_for("m", "fp", {}, module="models.staffing", sql="select 1", uses=("models.calendar",))
    assert uses != base
    monkeypatch.setattr(registry, "_source", lambda m: "changed" if m == "models.calendar" else real_source(m))
    assert version_for("m", "fp", {}, module="models.staffing", sql="select 1", uses=("models.calendar",)) != uses
    monkeypatch.undo()
    assert version_for("m", "fp", {}, module="models.staffing", sql="select 1", libraries=("holidays",)) != base
    real = registry.library_versions()
    assert set(real) == {"sklearn", "numpy", "scipy", "duckdb", "polars"}
    import sklearn

    assert real["sklearn"] == sklearn.__version__  # read from the package metadata, without importing it
    monkeypatch.setattr(registry, "library_versions", lambda: {**real, "sklearn": "0.0.1"})
    assert base != version_for("m", "fp", {}, module="models.staffing", sql="select 1")  # a library upgrade


def test_fingerprint_ignores_row_order_but_not_content():
    con = duckdb.connect()
    con.execute("create table t as select * from (values (1, 'a'), (2, 'b')) v(x, y)")
    a = data_fingerprint(con, "select * from t order by x")
    assert a == data_fingerprint(con, "select * from t order by x desc")
    con.execute("update t set y = 'c' where x = 2")
    assert a != data_fingerprint(con, "select * from t")


def test_artefacts_round_trip_with_a_checksum(tmp_path):
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    path = save_artefact(model, tmp_path, "m-1")
    assert (tmp_path / "m-1.skops.sha256").read_text().strip() == registry.file_sha256(path)
    assert load_artefact(path).predict([[3.0]]).tolist() == [1]


def test_a_tampered_artefact_is_refused_before_loading(tmp_path):
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    path = save_artefact(model, tmp_path, "m-1")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    path.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="differs from the one saved at training.*retrain"):
        load_artefact(path)
    # A file swapped in whole, with no checksum of its own, is refused too.
    (tmp_path / "m-1.skops.sha256").unlink()
    with pytest.raises(ArtefactError, match="no checksum file"):
        load_artefact(path)


def test_types_outside_the_exact_allow_list_are_refused(tmp_path):
    bad = tmp_path / "bad.skops"
    sio.dump({"model": NotAModel()}, bad)
    with pytest.raises(ArtefactError, match="outside the allow-list.*NotAModel"):
        load_artefact(bad, expected_sha256=registry.file_sha256(bad))
    # A type under sklearn. that the project never saves is refused as well: no prefix is trusted.
    from sklearn.calibration import _SigmoidCalibration
    from sklearn.utils import Bunch

    odd = tmp_path / "odd.skops"
    sio.dump({"bunch": Bunch(a=1), "sigmoid": _SigmoidCalibration()}, odd)
    untrusted = set(sio.get_untrusted_types(file=odd))
    assert "sklearn.utils._bunch.Bunch" in untrusted and "sklearn.utils._bunch.Bunch" not in ALLOWED_TYPES
    with pytest.raises(ArtefactError, match="Bunch"):
        load_artefact(odd, expected_sha256=registry.file_sha256(odd))
    assert all(not t.endswith(".") and t.count(".") >= 1 for t in ALLOWED_TYPES)  # exact names, no prefixes


def test_the_projects_own_models_load(tmp_path):
    import numpy as np
    import pandas as pd

    from models.overdue_risk import CATEGORICAL, NUMERIC, PARAMS, build_estimator, calibrate

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.choice(list("abc"), 1200) for c in CATEGORICAL})
    for c in NUMERIC:
        frame[c] = rng.normal(size=1200)
    y = (rng.random(1200) < 0.3).astype(int)
    params = {**PARAMS, "max_iter": 5}
    for n in (1200, 300):  # isotonic calibration (production), sigmoid (a small office)
        model, _ = calibrate(build_estimator(params).fit(frame, y), frame[:n], y[:n])
        path = save_artefact(model, tmp_path, f"overdue_risk-{n}")
        assert np.allclose(load_artefact(path).predict_proba(frame)[:, 1], model.predict_proba(frame)[:, 1])
    from models.inflow_forecast import PARAMS as FORECAST_PARAMS
    from models.inflow_forecast import fit_forecast, panel_from_weekly

    weeks = pd.date_range("2024-01-01", periods=60, freq="7D")
    weekly = pd.DataFrame({"tuan_bat_dau": np.repeat(weeks, 2), "co_quan": ["A", "B"] * 60, "linh_vuc": "x",
                           "n_tiep_nhan": rng.poisson(20, 120).astype(float)})
    fitted = fit_forecast(panel_from_weekly(weekly), FORECAST_PARAMS).model
    path = save_artefact(fitted, tmp_path, "inflow_forecast-x")
    loaded = load_artefact(path)
    assert loaded["columns"] == fitted["columns"] and loaded["tier"] == "poisson_glm"
    assert np.allclose(loaded["common"], fitted["common"]) and np.allclose(loaded["field_month"], fitted["field_month"])


def test_digests_never_look_like_a_citizen_id_or_a_phone_number():
    # sha256 hex digests contain 12-digit runs often enough to trip the personal-data scan of the
    # snapshot (tests/test_pipeline.py); fingerprints and versions spell their digits as letters instead.
    con = duckdb.connect()
    fingerprints = [data_fingerprint(con, f"select {i} as x") for i in range(200)]
    assert all(len(f) == 64 and not any(c.isdigit() for c in f) for f in fingerprints)
    assert not any(c.isdigit() for c in version_for("m", fingerprints[0], {"a": 1}).removeprefix("m-"))
