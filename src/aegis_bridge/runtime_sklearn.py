"""The scikit-learn runtime: a fitted classifier with predict_proba, pickled, with a metadata sidecar.

Usage:
    scorer = load_sklearn(Path("fraud.joblib"))     # reads fraud.joblib.meta.json beside it
    scores, decisions = scorer.score(txns)

The model file is the estimator alone: `pickle.dump(clf, f)` for .pkl and
.pickle, `joblib.dump(clf, path)` for .joblib. A pickle cannot carry the
bridge's metadata reliably (feature_names_in_ needs a pandas DataFrame at
fit time), so it lives beside the model in `<model file>.meta.json`:
    {"name": ..., "version": ..., "features": [...], "thresholds": {"review": r, "decline": d}}
The estimator is fed the bridge's feature matrix (aegis_bridge.features) and
its predict_proba(x)[:, 1] is the score. Where the estimator knows its
input (n_features_in_, feature_names_in_), that is checked against the
metadata too. scikit-learn is imported only here, and only when such a model
is loaded, so the bridge runs where it is not installed.

Unpickling runs code from the file: load only models you built.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .features import FEATURE_NAMES, features
from .scoring import Decisions, ModelError, ModelInfo, Scores, TxnRecords, decide, info_from_doc

SUFFIXES = (".pkl", ".pickle", ".joblib")


def sidecar_path(path: Path) -> Path:
    """Where a model file's metadata lives: `<model file>.meta.json`."""
    return path.with_name(path.name + ".meta.json")


class SklearnScorer:
    """Any fitted scikit-learn classifier with predict_proba over FEATURE_NAMES."""

    def __init__(self, estimator: Any, info: ModelInfo):
        if not hasattr(estimator, "predict_proba"):
            raise ModelError(f"model {info.name}: a {type(estimator).__name__} has no predict_proba; the bridge "
                             f"needs a fitted classifier")
        if info.review is None or info.decline is None:
            raise ModelError(f"model {info.name}: the bridge decides from the thresholds (review, decline), "
                             f"which the metadata lacks")
        self.estimator = estimator
        self.info = info
        self.review = info.review
        self.decline = info.decline

    def score(self, txns: TxnRecords) -> tuple[Scores, Decisions]:
        proba = self.estimator.predict_proba(features(txns))
        scores: Scores = np.asarray(proba[:, 1], dtype=np.float32)
        return scores, decide(scores, self.review, self.decline)


def read_sidecar(path: Path) -> ModelInfo:
    """The checked metadata of model file `path`, from its sidecar; ModelError if absent or wrong."""
    meta = sidecar_path(path)
    try:
        doc = json.loads(meta.read_text())
    except FileNotFoundError:
        raise ModelError(f"model {path}: no metadata file {meta} (name, version, features, thresholds; "
                         f"scripts/train_model.py --sklearn writes one)") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"model {path}: cannot read its metadata {meta}: {e}") from None
    return info_from_doc(doc, str(path))


def load_sklearn(path: Path) -> SklearnScorer:
    """The scorer in pickle/joblib file `path`; ModelError (one line) if it cannot serve."""
    if path.suffix not in SUFFIXES:
        raise ModelError(f"model {path}: not a scikit-learn model file (suffix one of {', '.join(SUFFIXES)})")
    # scikit-learn is optional: only checked for here, and imported by
    # unpickling, so the bridge starts fast and runs where it is absent.
    if importlib.util.find_spec("sklearn") is None:
        raise ModelError(f"model {path}: loading a scikit-learn model needs scikit-learn, which is not installed "
                         f"(pip install 'aegis-bridge[sklearn]', or apt install python3-sklearn)")
    info = read_sidecar(path)
    try:
        if path.suffix == ".joblib":
            import joblib  # type: ignore[import]  # scikit-learn depends on it; it has no type hints

            estimator = joblib.load(path)
        else:
            with open(path, "rb") as f:
                estimator = pickle.load(f)
    except Exception as e:  # noqa: BLE001 - unpickling arbitrary bytes can raise almost anything
        raise ModelError(f"cannot read scikit-learn model {path}: {type(e).__name__}: {e}") from None
    if isinstance(estimator, dict) and "estimator" in estimator:
        raise ModelError(f"model {path}: holds an {{estimator, features, thresholds}} dict; pickle the estimator "
                         f"alone and put its metadata in {sidecar_path(path).name} "
                         f"(scripts/train_model.py --sklearn writes both)")
    if not callable(getattr(estimator, "predict_proba", None)):
        raise ModelError(f"model {path}: {type(estimator).__name__} has no predict_proba")
    n_in = getattr(estimator, "n_features_in_", None)
    if isinstance(n_in, int) and n_in != len(FEATURE_NAMES):
        raise ModelError(f"model {path}: the estimator takes {n_in} features, the bridge computes "
                         f"{len(FEATURE_NAMES)}")
    names_in = getattr(estimator, "feature_names_in_", None)
    if names_in is not None and tuple(str(n) for n in names_in) != info.features:
        raise ModelError(f"model {path}: the estimator was fitted on features {[str(n) for n in names_in]}, "
                         f"its metadata says {list(info.features or ())}")
    return SklearnScorer(estimator, info)
