"""Fraud scoring: vectorised features from TXN records and a logistic model.

Usage:
    model = load_model()                       # the weights shipped in the package
    scores, decisions = model.score(txns)      # float32 in [0, 1], uint8 0/1/2

The default model is a numpy logistic regression whose weights
(`model_weights.json`, beside this file) come from scripts/train_model.py. A
scikit-learn classifier pickled with `--sklearn` by that script can be loaded
with `load_model(path)`; scikit-learn is imported only then, because the
bridge must run where it is not installed.

Every function works on whole columns: the bridge's throughput target
(millions of records a second) leaves no room for a Python loop per record.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .protocol import DECISION_APPROVE, DECISION_DECLINE, DECISION_REVIEW, TXN_DTYPE
from .synthetic import HIGH_RISK_MCC, TRAVEL_MCC

DEFAULT_WEIGHTS_PATH = Path(__file__).with_name("model_weights.json")
WEIGHTS_FORMAT = "aegis-logreg-v1"

FEATURE_NAMES = (
    "log_amount",
    "channel_ecommerce",
    "channel_recurring",
    "mcc_high_risk",
    "mcc_travel",
    "hour_sin",
    "hour_cos",
    "night",
    "foreign_currency",
)

# MCC bucket by table look-up: one gather instead of a membership test per set.
_MCC_LIMIT = 10_000
_MCC_BUCKET = np.zeros(_MCC_LIMIT, dtype=np.uint8)
_MCC_BUCKET[list(HIGH_RISK_MCC)] = 1
_MCC_BUCKET[list(TRAVEL_MCC)] = 2
_NS_PER_HOUR = 3_600_000_000_000
_HOME_CURRENCY = np.frombuffer(b"EUR", dtype="S3")[0]
# decide() computes the decision as (score >= review) + (score >= decline).
assert (DECISION_APPROVE, DECISION_REVIEW, DECISION_DECLINE) == (0, 1, 2), "decide() relies on 0/1/2"


class ModelError(RuntimeError):
    """A model file could not be loaded; the message says why in one line."""


def features(txns: np.ndarray) -> np.ndarray:
    """The (n, len(FEATURE_NAMES)) float32 feature matrix for TXN records."""
    assert txns.dtype == TXN_DTYPE, "features need TXN records"
    n = len(txns)
    x = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
    amount_major = np.maximum(txns["amount_minor"], 0).astype(np.float32) * np.float32(0.01)
    np.log1p(amount_major, out=x[:, 0])
    channel = txns["channel"]
    np.equal(channel, 1, out=x[:, 1], casting="unsafe")
    np.equal(channel, 2, out=x[:, 2], casting="unsafe")
    bucket = _MCC_BUCKET[np.minimum(txns["mcc"], _MCC_LIMIT - 1)]
    np.equal(bucket, 1, out=x[:, 3], casting="unsafe")
    np.equal(bucket, 2, out=x[:, 4], casting="unsafe")
    hour = (txns["timestamp_ns"] // _NS_PER_HOUR) % 24
    angle = hour.astype(np.float32) * np.float32(2.0 * math.pi / 24.0)
    np.sin(angle, out=x[:, 5])
    np.cos(angle, out=x[:, 6])
    np.less(hour, 5, out=x[:, 7], casting="unsafe")
    np.not_equal(txns["currency"], _HOME_CURRENCY, out=x[:, 8], casting="unsafe")
    assert x.shape == (n, len(FEATURE_NAMES))
    return x


def decide(scores: np.ndarray, review: float, decline: float) -> np.ndarray:
    """0 approve below `review`, 1 review below `decline`, 2 decline at or above it."""
    assert 0.0 <= review <= decline <= 1.0, "thresholds must be ordered within [0, 1]"
    decisions = np.greater_equal(scores, np.float32(review)).view(np.uint8)
    decisions += scores >= np.float32(decline)
    return decisions


# The currency and channel bytes (record offsets 48..51) read as one
# little-endian u32: currency in the low 24 bits, channel in the top 8.
_CURRENCY_CHANNEL_DTYPE = np.dtype({"names": ["currency_channel"], "formats": ["<u4"], "offsets": [48],
                                    "itemsize": TXN_DTYPE.itemsize})
assert TXN_DTYPE.fields["currency"][1] == 48 and TXN_DTYPE.fields["channel"][1] == 51
_HOME_CURRENCY_U24 = int.from_bytes(b"EUR", "little")
# z is raised to -80 before exp(-z) so that exp never overflows (sigmoid(-80)
# < 2e-35: approve either way), which saves np.errstate's cost per batch.
_Z_LIMIT = np.float32(80.0)


class LogisticModel:
    """p = sigmoid(features . weights + bias), with decision thresholds.

    `score` does not build the feature matrix: the model is linear, so every
    categorical feature's contribution (channel, MCC bucket, hour of day)
    is precomputed in a small table and gathered, and only the amount is
    computed per record. That is about a third of the numpy passes of
    `features(txns) @ weights`, with no (n, 9) temporary; the scores agree
    with that reference to float32 rounding (pytests/test_model.py).
    """

    def __init__(self, weights, bias: float, review: float, decline: float, meta: dict | None = None):
        self.weights = np.asarray(weights, dtype=np.float32)
        assert self.weights.shape == (len(FEATURE_NAMES),), "one weight per feature"
        assert np.all(np.isfinite(self.weights)) and math.isfinite(bias), "weights must be finite"
        self.bias = np.float32(bias)
        self.review = float(review)
        self.decline = float(decline)
        assert 0.0 <= self.review <= self.decline <= 1.0
        self.meta = meta or {}
        self.name = "numpy-logreg"
        # Scores are 1 / (1 + exp(-z)) with z finite and clamped, so in (0, 1], and
        # decisions come from decide(): the bridge need not check this model's output.
        self.output_in_contract = True
        w = self.weights
        self._w_amount = w[0]
        self._w_foreign = w[8]
        self._channel_table = np.zeros(256, dtype=np.float32)
        self._channel_table[1] = w[1]
        self._channel_table[2] = w[2]
        self._mcc_table = np.zeros(_MCC_LIMIT, dtype=np.float32)
        self._mcc_table[_MCC_BUCKET == 1] = w[3]
        self._mcc_table[_MCC_BUCKET == 2] = w[4]
        # The same float32 steps as features(), one row per hour.
        hours = np.arange(24)
        angle = hours.astype(np.float32) * np.float32(2.0 * math.pi / 24.0)
        self._hour_table = (w[5] * np.sin(angle) + w[6] * np.cos(angle) + w[7] * (hours < 5)).astype(np.float32)
        self._bias_and_channel = self._channel_table + self.bias

    def score(self, txns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert txns.dtype == TXN_DTYPE, "score needs TXN records"
        z = np.maximum(txns["amount_minor"], 0).astype(np.float32)
        z *= np.float32(0.01)
        np.log1p(z, out=z)
        z *= self._w_amount
        cc = txns.view(_CURRENCY_CHANNEL_DTYPE)["currency_channel"]
        z += self._bias_and_channel[cc >> 24]
        foreign = (cc & 0xFFFFFF) != _HOME_CURRENCY_U24
        z += foreign * self._w_foreign
        z += self._mcc_table[np.minimum(txns["mcc"], _MCC_LIMIT - 1)]
        hour = txns["timestamp_ns"] // _NS_PER_HOUR
        hour %= 24
        z += self._hour_table[hour]
        np.maximum(z, -_Z_LIMIT, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += np.float32(1.0)
        scores = np.reciprocal(z, out=z)
        assert scores.dtype == np.float32 and len(scores) == len(txns)
        return scores, decide(scores, self.review, self.decline)

    def score_reference(self, txns: np.ndarray) -> np.ndarray:
        """sigmoid(features . weights + bias) spelled out; tests compare `score` with it."""
        z = features(txns).astype(np.float64) @ self.weights.astype(np.float64) + float(self.bias)
        return (1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0)))).astype(np.float32)

    def to_json(self) -> dict:
        return {
            "format": WEIGHTS_FORMAT,
            "features": list(FEATURE_NAMES),
            "weights": [float(w) for w in self.weights],
            "bias": float(self.bias),
            "thresholds": {"review": self.review, "decline": self.decline},
            "training": self.meta,
        }


class SklearnModel:
    """Any fitted scikit-learn classifier with predict_proba over FEATURE_NAMES."""

    def __init__(self, estimator, review: float, decline: float):
        assert hasattr(estimator, "predict_proba"), "the estimator must have predict_proba"
        self.estimator = estimator
        self.review = float(review)
        self.decline = float(decline)
        self.name = f"sklearn-{type(estimator).__name__}"

    def score(self, txns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.estimator.predict_proba(features(txns))[:, 1].astype(np.float32)
        return scores, decide(scores, self.review, self.decline)


def load_model(path: str | Path | None = None):
    """Loads the shipped weights, a weights JSON, or a pickled sklearn model."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS_PATH
    if path.suffix in (".pkl", ".pickle", ".joblib"):
        return _load_sklearn(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read model weights {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
        raise ModelError(f"{path}: not an {WEIGHTS_FORMAT} weights file")
    features = doc.get("features")
    if not isinstance(features, list) or tuple(features) != FEATURE_NAMES:
        raise ModelError(f"{path}: features {doc.get('features')} do not match {list(FEATURE_NAMES)}")
    try:
        t = doc["thresholds"]
        return LogisticModel(doc["weights"], doc["bias"], t["review"], t["decline"], doc.get("training"))
    except (KeyError, TypeError, ValueError, AssertionError) as e:
        raise ModelError(f"{path}: malformed weights ({e!r})") from None


def _load_sklearn(path: Path):
    # scikit-learn is optional: only checked for here, and imported by
    # unpickling, so the bridge starts fast and runs where it is absent.
    import importlib.util
    import pickle

    if importlib.util.find_spec("sklearn") is None:
        raise ModelError(f"{path}: loading a scikit-learn model needs scikit-learn, which is not installed")

    try:
        with open(path, "rb") as f:
            doc = pickle.load(f)
    except Exception as e:  # noqa: BLE001 - unpickling arbitrary bytes can raise almost anything
        raise ModelError(f"cannot read scikit-learn model {path}: {type(e).__name__}: {e}") from None
    # The training script pickles {"estimator", "features", "thresholds"}.
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, (list, tuple)) or tuple(features) != FEATURE_NAMES:
        raise ModelError(f"{path}: expected a dict with estimator, features {list(FEATURE_NAMES)}, thresholds")
    estimator, t = doc.get("estimator"), doc.get("thresholds")
    try:
        review, decline = float(t["review"]), float(t["decline"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"{path}: malformed scikit-learn model: thresholds {t!r} need review and decline") from None
    if not 0.0 <= review <= decline <= 1.0:
        raise ModelError(f"{path}: malformed scikit-learn model: thresholds must satisfy 0 <= review <= decline <= 1")
    if not hasattr(estimator, "predict_proba"):
        raise ModelError(f"{path}: malformed scikit-learn model: {type(estimator).__name__} has no predict_proba")
    return SklearnModel(estimator, review, decline)
