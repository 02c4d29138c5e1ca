"""The XGBoost runtime: a binary:logistic booster in XGBoost's own JSON or UBJSON format.

Usage:
    scorer = load_xgboost(Path("fraud-xgb.json"))    # or .ubj
    scores, decisions = scorer.score(txns)

The metadata travels inside the model file, where XGBoost keeps it:
- the booster's `feature_names` must be the bridge's FEATURE_NAMES, in order;
- its attributes `aegis_name`, `aegis_version`, `aegis_review` and
  `aegis_decline` name the model and give its thresholds.
To add them to a model you trained (XGBClassifier or xgboost.train):
    booster = clf.get_booster()                 # or the Booster itself
    booster.feature_names = list(FEATURE_NAMES)
    booster.set_attr(aegis_name="fraud-xgb", aegis_version="3", aegis_review="0.31", aegis_decline="0.72")
    booster.save_model("fraud-xgb.json")
The objective must give probabilities (binary:logistic or reg:logistic).

Prediction runs on one thread (nthread=1), the bridge's own: the other CPUs
belong to the core. xgboost is imported only when such a model is loaded.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .features import FEATURE_NAMES, features
from .scoring import Decisions, ModelError, ModelInfo, Scores, TxnRecords, check_info, decide

SUFFIXES = (".json", ".ubj")
PROBABILITY_OBJECTIVES = ("binary:logistic", "reg:logistic")
ATTRIBUTES = ("aegis_name", "aegis_version", "aegis_review", "aegis_decline")


def is_xgboost_json(doc: object) -> bool:
    """Whether a parsed JSON document is an XGBoost model (it has a "learner" object)."""
    return isinstance(doc, dict) and isinstance(doc.get("learner"), dict)


class XGBoostScorer:
    """A booster's probability for each record's feature row, with decision thresholds."""

    def __init__(self, booster: Any, info: ModelInfo):
        if info.review is None or info.decline is None:
            raise ModelError(f"model {info.name}: the bridge decides from the thresholds (review, decline), "
                             f"which the metadata lacks")
        self.booster = booster
        self.info = info
        self.review = info.review
        self.decline = info.decline

    def score(self, txns: TxnRecords) -> tuple[Scores, Decisions]:
        if len(txns) == 0:
            empty: Scores = np.zeros(0, dtype=np.float32)
            return empty, decide(empty, self.review, self.decline)
        # inplace_predict skips building a DMatrix: about half the fixed cost per call.
        scores: Scores = np.asarray(self.booster.inplace_predict(features(txns)), dtype=np.float32)
        return scores, decide(scores, self.review, self.decline)


def _import_xgboost(path: Path) -> Any:
    if importlib.util.find_spec("xgboost") is None:
        raise ModelError(f"model {path}: an XGBoost model needs xgboost, which is not installed "
                         f"(pip install 'aegis-bridge[xgboost]', or apt install python3-xgboost)")
    # xgboost's input checks try `import pandas` (and modin) on every predict
    # call; where they are absent each failed import searches sys.path again,
    # ~0.3 ms a call. A None in sys.modules makes the import fail at once,
    # as it would anyway: done only for modules that are not installed.
    for name in ("pandas", "modin"):
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]
    import xgboost

    return xgboost


def _attr_float(value: str, field: str, source: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ModelError(f"model {source}: attribute {field} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ModelError(f"model {source}: attribute {field} must be a finite number, got {value!r}")
    return number


def load_xgboost(path: Path) -> XGBoostScorer:
    """The scorer in XGBoost model file `path` (.json or .ubj); ModelError (one line) if it cannot serve."""
    xgboost = _import_xgboost(path)
    source = str(path)
    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except Exception as e:  # noqa: BLE001 - XGBoostError, OSError, ...: any is one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ModelError(f"cannot read XGBoost model {path}: {type(e).__name__}: {first}") from None
    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    if objective not in PROBABILITY_OBJECTIVES:
        raise ModelError(f"model {source}: objective {objective!r} does not give probabilities "
                         f"(train with {' or '.join(PROBABILITY_OBJECTIVES)})")
    names = booster.feature_names
    if names is None:
        raise ModelError(f"model {source}: the booster has no feature_names (set booster.feature_names = "
                         f"{list(FEATURE_NAMES)} before save_model)")
    attrs = booster.attributes()
    missing = [a for a in ATTRIBUTES if a not in attrs]
    if missing:
        raise ModelError(f"model {source}: no attribute {', '.join(missing)} (booster.set_attr(aegis_name=..., "
                         f"aegis_version=..., aegis_review=..., aegis_decline=...) before save_model)")
    info = ModelInfo(name=attrs["aegis_name"], version=attrs["aegis_version"], features=tuple(names),
                     review=_attr_float(attrs["aegis_review"], "aegis_review", source),
                     decline=_attr_float(attrs["aegis_decline"], "aegis_decline", source))
    check_info(info, source, needs_features=True, needs_thresholds=True)
    booster.set_param({"nthread": 1})
    return XGBoostScorer(booster, info)
