"""An example fraud scorer written outside the Aegis tree, for `aegis-bridge --model mymodel:make_scorer`.

Copy this file anywhere and put its directory on PYTHONPATH, or install this
directory with pip (pyproject.toml registers the entry point `mymodel`, for
`--model ep:mymodel`). docs/BRIDGE.md, "Your own model", walks through both.

What the bridge needs from it (aegis_bridge.Scorer):
- `make_scorer()`, called once with no arguments at start-up, returns the
  scorer (read any configuration, such as where your weights are, from the
  environment or a file here);
- `score(txns)` gets numpy TXN records and returns float32 scores in [0, 1]
  and uint8 decisions (0 approve, 1 review, 2 decline), one per record;
- `info` names the model. Declaring `features=FEATURE_NAMES` says this model
  reads the bridge's feature matrix, so a bridge computing other features
  refuses to start with it; the thresholds are the ones `score` applies.
If `score` raises, the bridge answers the records it fails on `unscored`
with its fail-safe decision (--unscored-decision) and keeps running.
"""

from __future__ import annotations

import numpy as np

from aegis_bridge import FEATURE_NAMES, Decisions, ModelInfo, Scorer, Scores, TxnRecords, decide, features

# A logistic model fitted elsewhere (say, in a notebook): one coefficient per
# column of the bridge's feature matrix, in FEATURE_NAMES order, and an intercept.
COEFFICIENTS = np.array([0.55, 1.3, -0.4, 1.7, 0.5, 0.0, 0.0, 1.0, 0.9], dtype=np.float32)
INTERCEPT = np.float32(-6.9)
REVIEW, DECLINE = 0.2, 0.5
assert len(COEFFICIENTS) == len(FEATURE_NAMES), "one coefficient per feature"


class MyScorer:
    """sigmoid(features . COEFFICIENTS + INTERCEPT), decided at REVIEW and DECLINE."""

    info = ModelInfo(name="mymodel", version="0.1.0", features=FEATURE_NAMES, review=REVIEW, decline=DECLINE)

    def score(self, txns: TxnRecords) -> tuple[Scores, Decisions]:
        z = features(txns) @ COEFFICIENTS + INTERCEPT
        scores: Scores = (1.0 / (1.0 + np.exp(-np.clip(z, -80.0, 80.0)))).astype(np.float32)
        return scores, decide(scores, REVIEW, DECLINE)


def make_scorer() -> Scorer:
    return MyScorer()
