"""Score a fitted overdue-risk model with numpy alone: the run that only scores needs no scikit-learn.

Six daily runs of seven keep the overdue-risk model and only score the dossiers open now (models/retrain.py).
Loading the skops artefact imports scikit-learn, which on a small run costs more than the scoring itself
(~1.3 s of a ~2 s `train` step at 1M dossiers; docs/performance.md). So at training time the fitted model is
also *compiled* into plain arrays — the ordinal encoding of each category, every tree's nodes and category
bitsets, the calibration curve — saved as an `.npz` (loaded with `allow_pickle=False`: numbers and strings
only, nothing that can run code) with its sha256 beside it, and scored here the way scikit-learn does:

- categories → their ordinal code (unknown or missing → NaN, as `OrdinalEncoder(handle_unknown=
  "use_encoded_value", unknown_value=nan)`);
- each tree walked as `sklearn/ensemble/_hist_gradient_boosting/_predictor.pyx::_predict_one_from_raw_data`
  (NaN and unknown categories follow `missing_go_to_left`), leaf values added to the baseline tree by tree
  in the same order;
- the calibrators (isotonic: clipped linear interpolation; sigmoid: expit(-(a·f + b))) averaged.

Exactly one shape is compiled — `CalibratedClassifierCV(FrozenEstimator(Pipeline([ColumnTransformer([cat:
OrdinalEncoder, num: passthrough]), HistGradientBoostingClassifier (binary)])))`, what
`models/overdue_risk.py` fits; anything else raises `NotCompilable` and the model is scored through skops.
`tests/models/test_tree_scorer.py` checks the probabilities equal scikit-learn's to 1e-12.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "tonghop-tree-scorer/1"
_NODE_FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf",
                "is_categorical", "bitset_idx")


class NotCompilable(ValueError):
    """The model is not of the one shape this module scores; score it through its skops artefact."""


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise NotCompilable(what)


def compile_model(model: Any, categorical: list[str], numeric: list[str]) -> dict[str, np.ndarray]:
    """The arrays that score `model` (see the module docstring), or NotCompilable."""
    arrays: dict[str, np.ndarray] = {}
    calibrated = getattr(model, "calibrated_classifiers_", None)
    _check(bool(calibrated), "not a fitted CalibratedClassifierCV")
    _check(list(getattr(model, "classes_", [])) == [0, 1], "not a binary 0/1 classifier")
    cals: list[dict] = []
    pipeline = None
    for k, cc in enumerate(calibrated):
        frozen = getattr(cc.estimator, "estimator", cc.estimator)  # FrozenEstimator wraps the pipeline
        _check(pipeline is None or frozen is pipeline, "calibrated over several estimators")
        pipeline = frozen
        _check(len(cc.calibrators) == 1, "more than one calibrator for a binary model")
        cal = cc.calibrators[0]
        if cc.method == "isotonic":
            _check(getattr(cal, "out_of_bounds", None) == "clip", "isotonic calibration not clipped")
            arrays[f"cal{k}_x"] = np.asarray(cal.X_thresholds_, dtype=np.float64)
            arrays[f"cal{k}_y"] = np.asarray(cal.y_thresholds_, dtype=np.float64)
            cals.append({"method": "isotonic", "x_min": float(cal.X_min_), "x_max": float(cal.X_max_)})
        elif cc.method == "sigmoid":
            cals.append({"method": "sigmoid", "a": float(cal.a_), "b": float(cal.b_)})
        else:
            raise NotCompilable(f"calibration method {cc.method!r}")
    steps = dict(getattr(pipeline, "named_steps", {}))
    _check(list(steps) == ["features", "clf"], "not the features → clf pipeline")
    encode, clf = steps["features"], steps["clf"]
    _check(type(clf).__name__ == "HistGradientBoostingClassifier" and clf.n_trees_per_iteration_ == 1,
           "not a binary HistGradientBoostingClassifier")
    transformers = [(n, t, list(c)) for n, t, c in encode.transformers_ if n != "remainder"]
    _check([n for n, _, _ in transformers] == ["cat", "num"] and transformers[0][2] == categorical
           and transformers[1][2] == numeric and dict((n, t) for n, t, _ in encode.transformers).get("num") == "passthrough",
           "not [cat: OrdinalEncoder, num: passthrough] on the expected columns")
    encoder = transformers[0][1]
    _check(type(encoder).__name__ == "OrdinalEncoder" and np.isnan(encoder.unknown_value)
           and np.isnan(encoder.encoded_missing_value), "categories not encoded with NaN for unknown/missing")
    # The classifier re-encodes its categorical columns (their codes, as numbers) with its own encoder, placed
    # first: the category → tree code map is both encoders composed, read off by encoding every category.
    n_cat = len(categorical)
    inner = getattr(clf, "_preprocessor", None)
    _check(list(np.flatnonzero(clf.is_categorical_)) == list(range(n_cat)), "categorical columns not first")
    _check(inner is None or inner.output_indices_["encoder"] == slice(0, n_cat), "unexpected column order")
    import pandas as pd

    for j, cats in enumerate(encoder.categories_):
        known = [c for c in cats if isinstance(c, str)]
        _check(all(c is None or (isinstance(c, float) and np.isnan(c)) for c in cats if not isinstance(c, str)),
               f"column {categorical[j]}: categories that are not text")
        probe = pd.DataFrame({c: [encoder.categories_[jj][0]] * len(known) for jj, c in enumerate(categorical)}
                             | {c: np.zeros(len(known)) for c in numeric})
        probe[categorical[j]] = known
        outer = encode.transform(probe)
        codes = (inner.transform(outer) if inner is not None else outer)[:, j].astype(np.float64)
        _check(bool(np.all(np.isnan(codes) | (codes < 256))), "a category code does not fit a bitset")
        arrays[f"cat{j}_values"] = np.array(known, dtype=np.str_)
        arrays[f"cat{j}_codes"] = codes
    known_bitsets, f_idx_map = clf._bin_mapper.make_known_categories_bitsets()
    arrays["known_cat_bitsets"] = np.ascontiguousarray(known_bitsets, dtype=np.uint32)
    arrays["f_idx_map"] = np.asarray(f_idx_map, dtype=np.int64)
    nodes, bitsets, node_off, bitset_off = [], [], [0], [0]
    for (predictor,) in clf._predictors:
        n = predictor.nodes
        nodes.append(np.stack([n[f].astype(np.float64) for f in _NODE_FIELDS], axis=1))
        b = np.asarray(predictor.raw_left_cat_bitsets, dtype=np.uint32).reshape(-1, 8)
        bitsets.append(b)
        node_off.append(node_off[-1] + len(n))
        bitset_off.append(bitset_off[-1] + len(b))
    arrays["nodes"] = np.concatenate(nodes) if nodes else np.zeros((0, len(_NODE_FIELDS)))
    arrays["left_bitsets"] = np.concatenate(bitsets) if bitsets else np.zeros((0, 8), dtype=np.uint32)
    arrays["node_offsets"], arrays["bitset_offsets"] = np.array(node_off), np.array(bitset_off)
    arrays["baseline"] = np.asarray(clf._baseline_prediction, dtype=np.float64).reshape(-1)[:1]
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, "categorical": categorical, "numeric": numeric,
                                          "calibrators": cals}))
    return arrays


def _in_bitset(bitsets: np.ndarray, row: np.ndarray, value: np.ndarray) -> np.ndarray:
    v = value.astype(np.int64)
    return ((bitsets[row, v // 32] >> (v % 32).astype(np.uint32)) & 1).astype(bool)


@dataclass
class TreeScorer:
    arrays: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self.meta = json.loads(str(self.arrays["meta"]))
        if self.meta.get("format") != FORMAT:
            raise NotCompilable(f"unknown scorer format {self.meta.get('format')!r}")
        self.categorical, self.numeric = self.meta["categorical"], self.meta["numeric"]
        self.codes = [dict(zip(self.arrays[f"cat{j}_values"].tolist(), self.arrays[f"cat{j}_codes"].tolist(),
                               strict=True)) for j in range(len(self.categorical))]

    def features(self, frame: Any) -> np.ndarray:
        """The matrix the trees read: category codes (NaN when unknown or missing), then the numbers."""
        X = np.empty((len(frame), len(self.categorical) + len(self.numeric)), dtype=np.float64)
        for j, column in enumerate(self.categorical):
            codes = self.codes[j]
            X[:, j] = [codes.get(v, np.nan) if isinstance(v, str) else np.nan for v in frame[column].tolist()]
        for j, column in enumerate(self.numeric):
            X[:, len(self.categorical) + j] = np.asarray(frame[column], dtype=np.float64)
        return X

    def decision(self, X: np.ndarray) -> np.ndarray:
        a = self.arrays
        raw = np.full(len(X), a["baseline"][0])
        known, f_idx_map = a["known_cat_bitsets"], a["f_idx_map"]
        rows = np.arange(len(X))
        for t in range(len(a["node_offsets"]) - 1):
            nodes = a["nodes"][a["node_offsets"][t]:a["node_offsets"][t + 1]]
            left_bits = a["left_bitsets"][a["bitset_offsets"][t]:a["bitset_offsets"][t + 1]]
            value, feat, thr, miss_left, left, right, leaf, is_cat, bidx = nodes.T
            at = np.zeros(len(X), dtype=np.int64)
            while True:
                open_ = ~leaf[at].astype(bool)
                if not open_.any():
                    break
                r, n = rows[open_], at[open_]
                f = feat[n].astype(np.int64)
                v = X[r, f]
                missing = np.isnan(v)
                cat = is_cat[n].astype(bool) & ~missing
                with np.errstate(invalid="ignore"):
                    go_left = np.where(missing, miss_left[n].astype(bool), v <= thr[n])
                if cat.any():
                    nc, vc = n[cat], v[cat]
                    unknown = vc < 0
                    safe = np.where(unknown, 0, vc)
                    in_left = _in_bitset(left_bits, bidx[nc].astype(np.int64), safe) & ~unknown
                    in_known = _in_bitset(known, f_idx_map[f[cat]], safe) & ~unknown
                    go_left[cat] = np.where(in_left, True, np.where(in_known, False, miss_left[nc].astype(bool)))
                at[open_] = np.where(go_left, left[n], right[n]).astype(np.int64)
            raw += value[at]
        return raw

    def predict_proba1(self, frame: Any) -> np.ndarray:
        """P(class 1) for each row of `frame` (a DataFrame with the model's columns), as scikit-learn gives it."""
        if len(frame) == 0:
            return np.zeros(0)
        f = self.decision(self.features(frame))
        out = np.zeros(len(f))
        for k, cal in enumerate(self.meta["calibrators"]):
            if cal["method"] == "isotonic":
                out += np.interp(np.clip(f, cal["x_min"], cal["x_max"]), self.arrays[f"cal{k}_x"],
                                 self.arrays[f"cal{k}_y"])
            else:
                out += 1.0 / (1.0 + np.exp(cal["a"] * f + cal["b"]))
        return out / len(self.meta["calibrators"])


def save_scorer(arrays: dict[str, np.ndarray], path: Path) -> Path:
    """Write the compiled arrays and their sha256 beside them (`<name>.sha256`)."""
    from models.registry import write_checksum

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    write_checksum(path)
    return path


def load_scorer(path: Path) -> TreeScorer:
    """The scorer saved at `path` after checking its sha256; ArtefactError when missing, changed or unreadable."""
    from models.registry import ArtefactError, verify_checksum

    if not path.is_file():
        raise ArtefactError(f"{path}: no compiled scorer — the model is scored through its skops artefact")
    verify_checksum(path, remedy="the model is scored through its skops artefact")
    try:
        with np.load(path, allow_pickle=False) as data:
            return TreeScorer({k: data[k] for k in data.files})
    except (ValueError, KeyError, NotCompilable, OSError) as exc:
        raise ArtefactError(f"{path}: not a scorer this version reads ({exc})") from None
