"""The overdue-risk model compiled to arrays scores like scikit-learn (to 1e-12), unknown and missing
categories and missing numbers included; a changed file is refused; the scoring path imports no sklearn."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from models.overdue_risk import CATEGORICAL, NUMERIC, PARAMS, cutoffs, features_at, fit_and_evaluate
from models.registry import ArtefactError
from models.tree_scorer import NotCompilable, compile_model, load_scorer, save_scorer
from tests.models.test_overdue_risk import _staging

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fitted(demo_dossiers):
    con = duckdb.connect()
    _staging(con, demo_dossiers, "2025-10-31")
    as_of, longest = con.execute("select max(data_as_of), max(ngay_hen_tra - ngay_nhan) from staging.ho_so").fetchone()
    params = {**PARAMS, "max_rows": 20_000}
    rows = features_at(con, cutoffs(np.datetime64(as_of, "D"), int(longest), params), params["max_rows"])
    model, _, _ = fit_and_evaluate(rows, int(longest) + 1, params, production=False)
    open_now = features_at(con, [np.datetime64(as_of, "D")])
    return model, rows, open_now


def _awkward(frame):
    """The same rows with what a new day brings: an agency and a field never seen, missing values."""
    odd = frame.copy()
    n = len(odd)
    odd.loc[odd.index[: n // 10], "co_quan"] = "Cơ quan mới thành lập"
    odd.loc[odd.index[n // 10: n // 5], "linh_vuc"] = None
    odd.loc[odd.index[n // 5: n // 4], "agency_past_overdue_rate"] = np.nan
    odd.loc[odd.index[n // 4: n // 3], "load_at_receipt"] = np.nan
    return odd


def test_compiled_scorer_gives_sklearns_probabilities(fitted, tmp_path):
    model, rows, open_now = fitted
    path = save_scorer(compile_model(model, CATEGORICAL, NUMERIC), tmp_path / "m.scorer.npz")
    scorer = load_scorer(path)
    for frame in (open_now, rows.head(5000), _awkward(rows.head(5000))):
        expected = model.predict_proba(frame[CATEGORICAL + NUMERIC])[:, 1]
        got = scorer.predict_proba1(frame)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert len(np.unique(scorer.predict_proba1(rows.head(5000)))) > 20  # not a constant: the trees are walked


def test_changed_scorer_file_is_refused(fitted, tmp_path):
    model, _, _ = fitted
    path = save_scorer(compile_model(model, CATEGORICAL, NUMERIC), tmp_path / "m.scorer.npz")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtefactError, match="checksum"):
        load_scorer(path)
    with pytest.raises(ArtefactError, match="no compiled scorer"):
        load_scorer(tmp_path / "absent.scorer.npz")


def test_other_models_are_not_compiled():
    from sklearn.linear_model import LogisticRegression

    X, y = np.random.default_rng(0).normal(size=(200, 3)), np.arange(200) % 2
    with pytest.raises(NotCompilable):
        compile_model(LogisticRegression().fit(X, y), CATEGORICAL, NUMERIC)


def test_scoring_imports_no_sklearn(fitted, tmp_path):
    model, _, open_now = fitted
    path = save_scorer(compile_model(model, CATEGORICAL, NUMERIC), tmp_path / "m.scorer.npz")
    open_now[CATEGORICAL + NUMERIC].to_parquet(tmp_path / "open.parquet")
    code = (f"import sys, pandas as pd; from models.tree_scorer import load_scorer; "
            f"p = load_scorer(__import__('pathlib').Path({str(path)!r})).predict_proba1("
            f"pd.read_parquet({str(tmp_path / 'open.parquet')!r})); "
            f"print(len(p), any(m == 'sklearn' or m.startswith('sklearn.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(open_now)), "False"], out.stderr
