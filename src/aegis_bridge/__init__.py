"""Aegis ML bridge: scores transactions the C++ core offloads over ZeroMQ.

Your own model (docs/BRIDGE.md, "Your own model"):
    from aegis_bridge import FEATURE_NAMES, ModelInfo, Scorer, decide, features

Modules: `scoring` (the Scorer protocol, ModelInfo, metadata checks),
`features` (the feature matrix), `loading` (`--model`: files, module:factory,
entry points), the runtimes `model` (numpy logistic, shipped),
`runtime_sklearn` and `runtime_xgboost`, `protocol` (wire format, pure
functions), `synthetic` (seeded payments for training and tests), `bridge`
(the loop), `histogram` and `metrics` (Prometheus), `__main__` (the CLI).
"""

from .features import FEATURE_NAMES, features
from .loading import LoadedModel, load_scorer
from .scoring import ENTRY_POINT_GROUP, Decisions, ModelError, ModelInfo, Scorer, Scores, TxnRecords, check_output, decide

__all__ = ["ENTRY_POINT_GROUP", "FEATURE_NAMES", "Decisions", "LoadedModel", "ModelError", "ModelInfo", "Scorer",
           "Scores", "TxnRecords", "check_output", "decide", "features", "load_scorer"]
__version__ = "0.1.0"
