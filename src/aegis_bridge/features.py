"""The bridge's feature matrix: what scikit-learn and XGBoost models (and your own, if you like) see.

Usage:
    x = features(txns)          # (n, 9) float32, columns in FEATURE_NAMES order
    FEATURE_NAMES               # ('log_amount', 'channel_ecommerce', ...)

A model trained on this matrix declares FEATURE_NAMES as its features (in
its metadata), and the bridge refuses to serve it if that list is not
exactly this one, in this order: a model fed its columns in another order
would score nonsense without a word.

Every function works on whole columns: the bridge's throughput target
(millions of records a second) leaves no room for a Python loop per record.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .protocol import TXN_DTYPE
from .synthetic import HIGH_RISK_MCC, TRAVEL_MCC

FEATURE_NAMES: tuple[str, ...] = (
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
MCC_LIMIT = 10_000
MCC_BUCKET = np.zeros(MCC_LIMIT, dtype=np.uint8)
MCC_BUCKET[list(HIGH_RISK_MCC)] = 1
MCC_BUCKET[list(TRAVEL_MCC)] = 2
NS_PER_HOUR = 3_600_000_000_000
_HOME_CURRENCY = np.frombuffer(b"EUR", dtype="S3")[0]


def features(txns: npt.NDArray[np.void]) -> npt.NDArray[np.float32]:
    """The (n, len(FEATURE_NAMES)) float32 feature matrix for TXN records."""
    if txns.dtype != TXN_DTYPE:
        raise TypeError(f"features need TXN records (aegis_bridge.protocol.TXN_DTYPE), got dtype {txns.dtype}")
    n = len(txns)
    x = np.empty((n, len(FEATURE_NAMES)), dtype=np.float32)
    amount_major = np.maximum(txns["amount_minor"], 0).astype(np.float32) * np.float32(0.01)
    np.log1p(amount_major, out=x[:, 0])
    channel = txns["channel"]
    np.equal(channel, 1, out=x[:, 1], casting="unsafe")
    np.equal(channel, 2, out=x[:, 2], casting="unsafe")
    bucket = MCC_BUCKET[np.minimum(txns["mcc"], MCC_LIMIT - 1)]
    np.equal(bucket, 1, out=x[:, 3], casting="unsafe")
    np.equal(bucket, 2, out=x[:, 4], casting="unsafe")
    hour = (txns["timestamp_ns"] // NS_PER_HOUR) % 24
    angle = hour.astype(np.float32) * np.float32(2.0 * math.pi / 24.0)
    np.sin(angle, out=x[:, 5])
    np.cos(angle, out=x[:, 6])
    np.less(hour, 5, out=x[:, 7], casting="unsafe")
    np.not_equal(txns["currency"], _HOME_CURRENCY, out=x[:, 8], casting="unsafe")
    assert x.shape == (n, len(FEATURE_NAMES))
    return x
