"""The shipped runtime: a numpy logistic regression read from a weights JSON.

Usage:
    model = load_model()                       # the weights shipped in the package
    scores, decisions = model.score(txns)      # float32 in [0, 1], uint8 0/1/2
    model.info                                 # ModelInfo: name, version, features, thresholds

The weights file (`model_weights.json` beside this file, or any file
scripts/train_model.py writes) is one JSON object:
    {"format": "aegis-logreg-v1", "name": ..., "version": ..., "features": [...],
     "weights": [...], "bias": b, "thresholds": {"review": r, "decline": d}, "training": {...}}
Its metadata is checked when it loads (aegis_bridge.scoring.info_from_doc).

`load_model(spec)` loads any model the bridge can serve (aegis_bridge.loading);
it is here so that code written against this module keeps working.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .features import FEATURE_NAMES, MCC_BUCKET, MCC_LIMIT, NS_PER_HOUR, features
from .protocol import TXN_DTYPE
from .scoring import Decisions, ModelError, ModelInfo, Scorer, Scores, TxnRecords, decide, info_from_doc

__all__ = ["DEFAULT_WEIGHTS_PATH", "FEATURE_NAMES", "LogisticModel", "ModelError", "WEIGHTS_FORMAT", "decide",
           "features", "load_model", "logistic_from_doc"]

DEFAULT_WEIGHTS_PATH = Path(__file__).with_name("model_weights.json")
WEIGHTS_FORMAT = "aegis-logreg-v1"

# The currency and channel bytes (record offsets 48..51) read as one
# little-endian u32: currency in the low 24 bits, channel in the top 8.
_CURRENCY_CHANNEL_DTYPE = np.dtype({"names": ["currency_channel"], "formats": ["<u4"], "offsets": [48],
                                    "itemsize": TXN_DTYPE.itemsize})
assert TXN_DTYPE.fields is not None
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

    def __init__(self, weights: Any, bias: float, review: float, decline: float, meta: dict[str, Any] | None = None,
                 name: str = "aegis-fraud-logreg", version: str = "1"):
        self.weights = np.asarray(weights, dtype=np.float32)
        if self.weights.shape != (len(FEATURE_NAMES),):
            raise ModelError(f"logistic model {name}: {self.weights.shape} weights, one per feature "
                             f"({len(FEATURE_NAMES)}) needed")
        if not (np.all(np.isfinite(self.weights)) and math.isfinite(bias)):
            raise ModelError(f"logistic model {name}: weights and bias must be finite")
        self.bias = np.float32(bias)
        self.review = float(review)
        self.decline = float(decline)
        if not 0.0 <= self.review <= self.decline <= 1.0:
            raise ModelError(f"logistic model {name}: thresholds must satisfy 0 <= review <= decline <= 1, "
                             f"got review {self.review:g} decline {self.decline:g}")
        self.meta = meta or {}
        self.info = ModelInfo(name=name, version=version, features=FEATURE_NAMES, review=self.review,
                              decline=self.decline)
        # Scores are 1 / (1 + exp(-z)) with z finite and clamped, so in (0, 1], and
        # decisions come from decide(): the bridge need not check this model's output.
        self.output_in_contract = True
        w = self.weights
        self._w_amount = w[0]
        self._w_foreign = w[8]
        self._channel_table = np.zeros(256, dtype=np.float32)
        self._channel_table[1] = w[1]
        self._channel_table[2] = w[2]
        self._mcc_table = np.zeros(MCC_LIMIT, dtype=np.float32)
        self._mcc_table[MCC_BUCKET == 1] = w[3]
        self._mcc_table[MCC_BUCKET == 2] = w[4]
        # The same float32 steps as features(), one row per hour.
        hours = np.arange(24)
        angle = hours.astype(np.float32) * np.float32(2.0 * math.pi / 24.0)
        self._hour_table = (w[5] * np.sin(angle) + w[6] * np.cos(angle) + w[7] * (hours < 5)).astype(np.float32)
        self._bias_and_channel = self._channel_table + self.bias

    def score(self, txns: TxnRecords) -> tuple[Scores, Decisions]:
        if txns.dtype != TXN_DTYPE:
            raise TypeError(f"score needs TXN records (aegis_bridge.protocol.TXN_DTYPE), got dtype {txns.dtype}")
        z = np.maximum(txns["amount_minor"], 0).astype(np.float32)
        z *= np.float32(0.01)
        np.log1p(z, out=z)
        z *= self._w_amount
        cc = txns.view(_CURRENCY_CHANNEL_DTYPE)["currency_channel"]
        z += self._bias_and_channel[cc >> 24]
        foreign = (cc & 0xFFFFFF) != _HOME_CURRENCY_U24
        z += foreign * self._w_foreign
        z += self._mcc_table[np.minimum(txns["mcc"], MCC_LIMIT - 1)]
        hour = txns["timestamp_ns"] // NS_PER_HOUR
        hour %= 24
        z += self._hour_table[hour]
        np.maximum(z, -_Z_LIMIT, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += np.float32(1.0)
        scores: Scores = np.reciprocal(z, out=z)
        assert scores.dtype == np.float32 and len(scores) == len(txns)
        return scores, decide(scores, self.review, self.decline)

    def score_reference(self, txns: TxnRecords) -> npt.NDArray[np.float32]:
        """sigmoid(features . weights + bias) spelled out; tests compare `score` with it."""
        z = features(txns).astype(np.float64) @ self.weights.astype(np.float64) + float(self.bias)
        reference: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0)))).astype(np.float32)
        return reference

    def to_json(self) -> dict[str, Any]:
        return {
            "format": WEIGHTS_FORMAT,
            "name": self.info.name,
            "version": self.info.version,
            "features": list(FEATURE_NAMES),
            "weights": [float(w) for w in self.weights],
            "bias": float(self.bias),
            "thresholds": {"review": self.review, "decline": self.decline},
            "training": self.meta,
        }


def logistic_from_doc(doc: dict[str, Any], source: str) -> LogisticModel:
    """The model in a parsed weights JSON (its "format" already checked); ModelError if malformed."""
    info = info_from_doc(doc, source)
    if info.review is None or info.decline is None:
        raise ModelError(f"model {source}: logistic weights need thresholds (review, decline)")
    weights, bias = doc.get("weights"), doc.get("bias")
    if (not isinstance(weights, list) or len(weights) != len(FEATURE_NAMES)
            or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) for w in weights)):
        raise ModelError(f"model {source}: 'weights' must be {len(FEATURE_NAMES)} finite numbers, got {weights!r}")
    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not math.isfinite(bias):
        raise ModelError(f"model {source}: 'bias' must be a finite number, got {bias!r}")
    training = doc.get("training")
    return LogisticModel(weights, float(bias), info.review, info.decline,
                         training if isinstance(training, dict) else None, info.name, info.version)


def load_model(spec: str | Path | None = None) -> Scorer:
    """The scorer for `spec` (see aegis_bridge.loading.load_scorer); the shipped weights if None."""
    from .loading import load_scorer

    return load_scorer(None if spec is None else str(spec)).scorer
