"""Your model in the bridge: the Scorer protocol, and the metadata the bridge checks when it loads one.

Usage (a scorer of your own, served with `aegis-bridge --model mymodel:make_scorer`):

    import numpy as np
    from aegis_bridge import FEATURE_NAMES, ModelInfo, Scorer, decide, features

    class MyScorer:
        info = ModelInfo(name="mymodel", version="1.2.0", features=FEATURE_NAMES, review=0.3, decline=0.8)

        def score(self, txns):
            p = my_predict(features(txns))             # your model: P(fraud) per record
            scores = np.asarray(p, dtype=np.float32)
            return scores, decide(scores, 0.3, 0.8)

    def make_scorer() -> Scorer:                       # called once, with no arguments
        return MyScorer()

The contract, which the bridge relies on (docs/BRIDGE.md, "Your own model"):
- `score(txns)` gets a numpy array of TXN records (protocol.TXN_DTYPE: seq,
  txn_id, amount_minor, timestamp_ns, merchant_id, card_fp, currency,
  channel, mcc, offload_ns), one or many, and returns two arrays of
  len(txns): scores (float32 in [0, 1]) and decisions (uint8: 0 approve,
  1 review, 2 decline). It is called from one thread, never concurrently.
- It may raise. The bridge then isolates the records it fails on and
  answers them `unscored` with its fail-safe decision; every other record
  gets its score. Output outside the contract (NaN, a score outside [0, 1],
  a decision above 2, the wrong length) is treated the same way.
- `info` names the model (name and version appear in the bridge's metrics
  and log). `features`, if given, must be exactly FEATURE_NAMES, in order:
  say so when your model reads the bridge's feature matrix, and a bridge
  computing other features refuses to serve it instead of scoring nonsense.
  `review` and `decline`, if given, are the thresholds your decisions follow
  (0 <= review <= decline <= 1); the built-in runtimes require them.

Nothing here imports scikit-learn or XGBoost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .features import FEATURE_NAMES
from .protocol import DECISION_APPROVE, DECISION_DECLINE, DECISION_REVIEW

TxnRecords = npt.NDArray[np.void]
"""TXN records: a numpy structured array of protocol.TXN_DTYPE."""
Scores = npt.NDArray[np.float32]
"""One float32 score in [0, 1] per record."""
Decisions = npt.NDArray[np.uint8]
"""One decision per record: 0 approve, 1 review, 2 decline."""

# The entry-point group other packages register scorer factories in (`--model ep:NAME`).
ENTRY_POINT_GROUP = "aegis_bridge.scorers"

# decide() computes the decision as (score >= review) + (score >= decline).
assert (DECISION_APPROVE, DECISION_REVIEW, DECISION_DECLINE) == (0, 1, 2), "decide() relies on 0/1/2"


class ModelError(RuntimeError):
    """A model could not be loaded, or its metadata is wrong; the message says why in one line."""


@dataclass(frozen=True)
class ModelInfo:
    """What a scorer says about itself; checked by the bridge when it loads the model."""

    name: str
    """Shown in the log and the metrics (aegis_bridge_model_info{name})."""
    version: str
    """Shown in the log and the metrics (aegis_bridge_model_info{version})."""
    features: tuple[str, ...] | None = None
    """The feature names the model was trained on, in order; None if it reads the raw records."""
    review: float | None = None
    """Scores at or above this are reviewed (decision 1); None if the scorer decides otherwise."""
    decline: float | None = None
    """Scores at or above this are declined (decision 2); None if the scorer decides otherwise."""

    def __post_init__(self) -> None:
        # A list is accepted (JSON gives lists) and kept as a tuple: the info is frozen.
        if self.features is not None and not isinstance(self.features, tuple):
            object.__setattr__(self, "features", tuple(self.features))


@runtime_checkable
class Scorer(Protocol):
    """Scores TXN records. Any object with `info` and `score` is one; no base class is needed."""

    @property
    def info(self) -> ModelInfo:
        """Name, version and (optionally) features and thresholds of the model."""
        ...

    def score(self, txns: TxnRecords, /) -> tuple[Scores, Decisions]:
        """(scores, decisions) for `txns`, one of each per record, in order."""
        ...


def decide(scores: npt.NDArray[np.float32], review: float, decline: float) -> Decisions:
    """0 approve below `review`, 1 review below `decline`, 2 decline at or above it."""
    if not 0.0 <= review <= decline <= 1.0:
        raise ValueError(f"thresholds must satisfy 0 <= review <= decline <= 1, got review {review!r} "
                         f"decline {decline!r}")
    decisions = np.greater_equal(scores, np.float32(review)).view(np.uint8)
    decisions += scores >= np.float32(decline)
    return decisions


def check_output(scores: Any, decisions: Any, records: int) -> str | None:
    """None if (scores, decisions) keep the contract for `records` records, else what is wrong, in one line.

    For your own tests, and `aegis-bridge --check-model`; the serving bridge
    runs a faster check of the same rules on every batch.
    """
    for what, arr, kind in (("scores", scores, "f"), ("decisions", decisions, "u")):
        if not isinstance(arr, np.ndarray) or arr.ndim != 1:
            return f"{what} must be a 1-d numpy array, got {type(arr).__name__}"
        if len(arr) != records:
            return f"{len(arr)} {what} for {records} records"
        if arr.dtype.kind != kind and not (kind == "u" and arr.dtype.kind == "i"):
            return f"{what} have dtype {arr.dtype}, expected {'float32' if kind == 'f' else 'uint8'}"
    with np.errstate(invalid="ignore"):
        bad_score = ~((scores >= 0) & (scores <= 1))
        bad_decision = (decisions < 0) | (decisions > DECISION_DECLINE)
    if bad_score.any():
        return f"{int(bad_score.sum())} scores are NaN or outside [0, 1] (first: {scores[bad_score][0]!r})"
    if bad_decision.any():
        return f"{int(bad_decision.sum())} decisions are not 0, 1 or 2 (first: {decisions[bad_decision][0]!r})"
    return None


def _label(value: object, field: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ModelError(f"model {source}: metadata '{field}' must be a non-empty one-line string, got {value!r}")
    return value


def _threshold(value: object, field: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"model {source}: threshold '{field}' must be a number in [0, 1], got {value!r}")
    return float(value)


def feature_mismatch(declared: Sequence[str], source: str) -> str | None:
    """None if `declared` is FEATURE_NAMES; else one line naming the first difference."""
    declared = tuple(declared)
    if declared == FEATURE_NAMES:
        return None
    for i, (theirs, ours) in enumerate(zip(declared, FEATURE_NAMES)):
        if theirs != ours:
            return f"model {source}: feature {i} is {theirs!r}, the bridge computes {ours!r}"
    if len(declared) < len(FEATURE_NAMES):
        missing = FEATURE_NAMES[len(declared)]
        return (f"model {source}: {len(declared)} features, the bridge computes {len(FEATURE_NAMES)} "
                f"(feature {len(declared)} would be {missing!r})")
    extra = declared[len(FEATURE_NAMES)]
    return (f"model {source}: {len(declared)} features, the bridge computes {len(FEATURE_NAMES)} "
            f"(feature {len(FEATURE_NAMES)} is {extra!r})")


def check_info(info: object, source: str, *, needs_features: bool = False,
               needs_thresholds: bool = False) -> ModelInfo:
    """Returns `info` if it is a valid ModelInfo (with features and thresholds where required); else ModelError.

    `source` names the model in the message (a file, `module:factory`, `ep:NAME`).
    """
    if not isinstance(info, ModelInfo):
        raise ModelError(f"model {source}: info must be an aegis_bridge.ModelInfo, got {type(info).__name__}")
    _label(info.name, "name", source)
    _label(info.version, "version", source)
    if info.features is None:
        if needs_features:
            raise ModelError(f"model {source}: no feature names in its metadata (the bridge computes "
                             f"{list(FEATURE_NAMES)})")
    else:
        if not all(isinstance(f, str) for f in info.features):
            raise ModelError(f"model {source}: feature names must be strings, got {list(info.features)!r}")
        problem = feature_mismatch(info.features, source)
        if problem:
            raise ModelError(problem)
    if info.review is None and info.decline is None:
        if needs_thresholds:
            raise ModelError(f"model {source}: no thresholds in its metadata (review and decline, "
                             f"0 <= review <= decline <= 1)")
    else:
        review = _threshold(info.review, "review", source)
        decline = _threshold(info.decline, "decline", source)
        if not 0.0 <= review <= decline <= 1.0:
            raise ModelError(f"model {source}: thresholds must satisfy 0 <= review <= decline <= 1, "
                             f"got review {review:g} decline {decline:g}")
    return info


def info_from_doc(doc: object, source: str) -> ModelInfo:
    """The ModelInfo in a metadata document (a weights JSON, or a `<model>.meta.json` sidecar), checked.

    The document's fields: name, version, features (a list), thresholds
    ({"review": r, "decline": d}). All four are required here: the built-in
    runtimes only compute probabilities, so the bridge needs the features
    to feed them and the thresholds to decide.
    """
    if not isinstance(doc, Mapping):
        raise ModelError(f"model {source}: metadata must be a JSON object with name, version, features, thresholds")
    missing = [k for k in ("name", "version", "features", "thresholds") if k not in doc]
    if missing:
        raise ModelError(f"model {source}: metadata has no {', '.join(repr(k) for k in missing)} "
                         f"(needs name, version, features, thresholds)")
    features, thresholds = doc["features"], doc["thresholds"]
    if not isinstance(features, list):
        raise ModelError(f"model {source}: metadata 'features' must be a list of names, got {features!r}")
    if not isinstance(thresholds, Mapping) or "review" not in thresholds or "decline" not in thresholds:
        raise ModelError(f"model {source}: metadata 'thresholds' must be {{\"review\": r, \"decline\": d}}, "
                         f"got {thresholds!r}")
    info = ModelInfo(name=doc["name"], version=doc["version"], features=tuple(features),
                     review=thresholds["review"], decline=thresholds["decline"])
    return check_info(info, source, needs_features=True, needs_thresholds=True)


def info_to_doc(info: ModelInfo) -> dict[str, Any]:
    """The metadata document for `info` (what info_from_doc reads back)."""
    if info.features is None or info.review is None or info.decline is None:
        raise ValueError(f"model {info.name}: a metadata document holds features and thresholds; this info lacks "
                         f"{', '.join(k for k in ('features', 'review', 'decline') if getattr(info, k) is None)}")
    return {"name": info.name, "version": info.version, "features": list(info.features),
            "thresholds": {"review": info.review, "decline": info.decline}}
