"""Seeded synthetic payments: TXN records, and fraud labels for training.

Usage:
    rng = np.random.default_rng(seed)
    txns = make_txns(rng, 256, first_seq=1)          # TXN_DTYPE array
    labels = fraud_labels(rng, txns)                 # bool array, for training

The training script (scripts/train_model.py) learns the shipped weights from
these labels, and the tests and benchmarks use the same generator as a fake
core, so what the model sees in tests looks like what it was trained on.
The label process is hidden from the model: it uses the same raw fields but
with its own shape and noise, so the learned weights are an estimate, not a
copy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .protocol import TXN_DTYPE

# Merchant category codes with the share of traffic each gets. The high-risk
# ones (money transfer, quasi-cash, gambling, direct marketing, digital goods)
# are the classic card-fraud categories.
MCC_TABLE = np.array(
    [5411, 5812, 5541, 5999, 5311, 4121, 5732, 7011, 4511, 4829, 6051, 7995, 5967, 5816],
    dtype=np.uint32,
)
MCC_SHARE = np.array([0.22, 0.16, 0.10, 0.10, 0.08, 0.06, 0.06, 0.05, 0.04, 0.03, 0.03, 0.03, 0.02, 0.02])
HIGH_RISK_MCC = (4829, 6051, 7995, 5967, 5816)
TRAVEL_MCC = (7011, 4511)

CURRENCIES = np.array([b"EUR", b"USD", b"GBP", b"CHF", b"JPY"], dtype="S3")
CURRENCY_SHARE = np.array([0.70, 0.14, 0.10, 0.03, 0.03])

CHANNEL_SHARE = np.array([0.55, 0.35, 0.10])  # card-present, e-commerce, recurring

# 2026-01-01T00:00:00Z: the stream spans 30 days from here.
BASE_TIMESTAMP_NS = 1_767_225_600 * 1_000_000_000
SPAN_NS = 30 * 86_400 * 1_000_000_000


def make_txns(rng: np.random.Generator, n: int, first_seq: int = 1, first_txn_id: int = 1) -> npt.NDArray[np.void]:
    """`n` TXN records with contiguous seqs and ids; all columns set at once."""
    if n < 0 or first_seq < 1:
        raise ValueError(f"make_txns needs n >= 0 and seqs from 1, got n {n} first_seq {first_seq}")
    t = np.zeros(n, dtype=TXN_DTYPE)
    t["seq"] = np.arange(first_seq, first_seq + n, dtype=np.uint64)
    t["txn_id"] = np.arange(first_txn_id, first_txn_id + n, dtype=np.uint64)
    # Log-normal amounts around 40 major units with a heavy tail, in cents.
    t["amount_minor"] = np.maximum(1, rng.lognormal(mean=8.3, sigma=1.2, size=n)).astype(np.int64)
    t["timestamp_ns"] = BASE_TIMESTAMP_NS + rng.integers(0, SPAN_NS, size=n, dtype=np.int64)
    t["merchant_id"] = rng.integers(1, 2**63, size=n, dtype=np.uint64)
    t["card_fp"] = rng.integers(1, 2**63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    t["currency"] = CURRENCIES[rng.choice(len(CURRENCIES), size=n, p=CURRENCY_SHARE)]
    t["channel"] = rng.choice(3, size=n, p=CHANNEL_SHARE).astype(np.uint8)
    t["mcc"] = MCC_TABLE[rng.choice(len(MCC_TABLE), size=n, p=MCC_SHARE)]
    t["offload_ns"] = t["timestamp_ns"] + rng.integers(1_000, 50_000, size=n, dtype=np.int64)
    assert t.dtype == TXN_DTYPE
    return t


def fraud_labels(rng: np.random.Generator, txns: npt.NDArray[np.void]) -> npt.NDArray[np.bool_]:
    """Draws a fraud label per TXN from a hidden, noisy process (about 5% positive)."""
    amount_major = txns["amount_minor"].astype(np.float64) / 100.0
    hour = (txns["timestamp_ns"] // 3_600_000_000_000) % 24
    logit = (
        -6.9
        + 0.55 * np.log1p(amount_major)
        + 1.3 * (txns["channel"] == 1)
        - 0.4 * (txns["channel"] == 2)
        + 1.7 * np.isin(txns["mcc"], HIGH_RISK_MCC)
        + 0.5 * np.isin(txns["mcc"], TRAVEL_MCC)
        + 1.0 * ((hour >= 1) & (hour < 5))
        + 0.9 * (txns["currency"] != b"EUR")
        + rng.normal(0.0, 0.6, size=len(txns))
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    labels: npt.NDArray[np.bool_] = rng.random(len(txns)) < p
    return labels
