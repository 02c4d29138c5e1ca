"""Proves each built-in runtime serves a model scripts/train_model.py trained: numpy weights, scikit-learn, XGBoost.

For each runtime (the `runtime_model` fixture trains one small model each,
on the same synthetic samples):
- it loads through the bridge's own `--model` path (load_scorer), which
  names the runtime and carries the model's name, version, features and
  thresholds;
- it scores the TXN records of the shared protocol vectors
  (fixtures/protocol/*.json, decoded by the bridge's decoder) plus fresh
  synthetic ones: one float32 in [0, 1] and one uint8 decision per record,
  and every decision follows that model's thresholds (below review: approve;
  below decline: review; else decline), with each decision present;
- it learned the task: held-out AUC well above chance; scikit-learn's
  logistic regression agrees with the numpy one; XGBoost's scores rank
  like them;
- a record's score does not depend on its batch neighbours (the bridge
  batches frames together);
- file formats: .joblib serves like .pkl and .ubj like .json, and a .json
  is told apart by content (Aegis weights or XGBoost), not by name;
- an absent library is one clear line, not a traceback.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from aegis_bridge import FEATURE_NAMES
from aegis_bridge import protocol as p
from aegis_bridge.loading import load_scorer
from aegis_bridge.scoring import ModelError, check_output, decide
from aegis_bridge.synthetic import fraud_labels, make_txns
from aegis_fixtures.trained_models import train_models

VECTOR_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "protocol"


def vector_txns() -> np.ndarray:
    """Every TXN record of the valid protocol vectors, decoded by the bridge's decoder."""
    records = []
    for path in sorted(VECTOR_DIR.glob("*.json")):
        for v in json.loads(path.read_text())["vectors"]:
            if v["expect"]["valid"] and v["expect"]["type"] == "txn":
                records.append(p.decode_frame(bytes.fromhex(v["hex"])).records)
    assert records, "the protocol vectors hold TXN frames"
    return np.concatenate(records)


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, len(scores) + 1)
    pos = int(y.sum())
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos)))


def test_each_runtime_loads_with_its_metadata(runtime_model):
    runtime, path = runtime_model
    loaded = load_scorer(str(path))
    info = loaded.info
    assert loaded.runtime == runtime and loaded.source == str(path)
    assert info.name == {"numpy": "aegis-fraud-logreg", "sklearn": "aegis-fraud-sklearn-logreg",
                         "xgboost": "aegis-fraud-xgboost"}[runtime]
    assert info.version == "1"
    assert info.features == FEATURE_NAMES
    assert 0 < info.review < info.decline < 1
    assert loaded.describe() == f"{info.name} version 1 ({runtime})"


def test_each_runtime_scores_the_protocol_vectors_and_follows_its_thresholds(runtime_model):
    runtime, path = runtime_model
    loaded = load_scorer(str(path))
    review, decline = loaded.info.review, loaded.info.decline
    # The vectors (edge values included: negative amounts, odd currencies) and
    # enough synthetic records for every decision to occur.
    txns = np.concatenate([vector_txns(), make_txns(np.random.default_rng(5), 20_000)])
    scores, decisions = loaded.scorer.score(txns)
    assert check_output(scores, decisions, len(txns)) is None
    assert scores.dtype == np.float32 and decisions.dtype == np.uint8
    assert np.array_equal(decisions == 0, scores < np.float32(review)), "approve exactly below review"
    assert np.array_equal(decisions == 2, scores >= np.float32(decline)), "decline exactly at or above decline"
    assert np.array_equal(decisions == 1, (scores >= np.float32(review)) & (scores < np.float32(decline)))
    assert set(np.unique(decisions).tolist()) == {0, 1, 2}, f"{runtime}: every decision occurs"
    # The vectors alone, scored as their own batch, score the same: no neighbour effects.
    alone, _ = loaded.scorer.score(vector_txns())
    assert np.array_equal(alone, scores[:len(alone)])


def test_each_runtime_learned_the_task(trained_models, runtime_model):
    runtime, path = runtime_model
    rng = np.random.default_rng(99)  # not the training seed
    txns = make_txns(rng, 50_000)
    y = fraud_labels(rng, txns)
    scores, _ = load_scorer(str(path)).scorer.score(txns)
    assert auc(scores, y) > 0.75, f"{runtime}: AUC {auc(scores, y):.3f}"
    reference, _ = load_scorer(str(trained_models["numpy"])).scorer.score(txns)
    if runtime == "sklearn":
        assert np.max(np.abs(scores - reference)) < 1e-3, "the same regularised logistic regression"
    # A different model family ranks records alike: Spearman correlation from ranks.
    rank = lambda a: np.argsort(np.argsort(a))  # noqa: E731
    assert np.corrcoef(rank(scores), rank(reference))[0, 1] > 0.8


@pytest.mark.parametrize("runtime, suffix", [("sklearn", ".joblib"), ("xgboost", ".ubj")])
def test_other_file_formats_serve_the_same_model(tmp_path, trained_models, runtime, suffix):
    if runtime not in trained_models:
        pytest.skip(f"the {runtime} runtime's library is not installed")
    other = train_models(tmp_path, sklearn_suffix=".joblib", xgboost_suffix=".ubj")[runtime]
    assert other.suffix == suffix
    txns = make_txns(np.random.default_rng(8), 5_000)
    a, b = load_scorer(str(trained_models[runtime])), load_scorer(str(other))
    assert b.runtime == runtime and b.info == a.info
    assert np.array_equal(a.scorer.score(txns)[0], b.scorer.score(txns)[0])


def test_a_json_is_weights_or_xgboost_by_content_not_by_name(tmp_path, trained_models):
    if "xgboost" not in trained_models:
        pytest.skip("the xgboost runtime's library is not installed")
    # Swapped names: each still loads with its own runtime.
    swapped_weights = tmp_path / "xgboost-looking.json"
    swapped_weights.write_text(trained_models["numpy"].read_text())
    swapped_xgb = tmp_path / "weights-looking.json"
    swapped_xgb.write_text(trained_models["xgboost"].read_text())
    assert load_scorer(str(swapped_weights)).runtime == "numpy"
    assert load_scorer(str(swapped_xgb)).runtime == "xgboost"
    neither = tmp_path / "neither.json"
    neither.write_text(json.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ModelError) as e:
        load_scorer(str(neither))
    assert str(e.value) == (f"model {neither}: neither Aegis logistic weights (\"format\": \"aegis-logreg-v1\") "
                            f"nor an XGBoost model (\"learner\")")


def test_an_unknown_file_type_or_missing_file_is_one_clear_line(tmp_path):
    legacy = tmp_path / "model.bin"
    legacy.write_bytes(b"\0binary xgboost")
    with pytest.raises(ModelError, match=r"unknown model file type '\.bin'.*MODULE:FUNCTION.*ep:NAME"):
        load_scorer(str(legacy))
    with pytest.raises(ModelError, match=r"^no model file fraudnet \(a Python factory is MODULE:FUNCTION"):
        load_scorer("fraudnet")


@pytest.mark.parametrize("runtime, library, words", [
    ("sklearn", "sklearn", "needs scikit-learn, which is not installed (pip install 'aegis-bridge[sklearn]'"),
    ("xgboost", "xgboost", "needs xgboost, which is not installed (pip install 'aegis-bridge[xgboost]'"),
])
def test_an_absent_library_is_one_clear_line(trained_models, monkeypatch, runtime, library, words):
    if runtime not in trained_models:
        pytest.skip(f"the {runtime} runtime's library is not installed")
    monkeypatch.setitem(sys.modules, library, None)  # find_spec(library) is None: as if not installed
    with pytest.raises(ModelError) as e:
        load_scorer(str(trained_models[runtime]))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_decide_boundaries_are_inclusive_at_the_thresholds():
    s = np.array([0.0, 0.2, 0.5, 0.89, 0.9, 1.0], dtype=np.float32)
    assert decide(s, 0.5, 0.9).tolist() == [0, 0, 1, 1, 2, 2]
