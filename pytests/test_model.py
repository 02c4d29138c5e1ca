"""Proves the bridge's fraud model (aegis_bridge.model) scores like a real model, not a stub.

- Shape, type and range: one float32 score in [0, 1] and one decision in
  {0, 1, 2} per record, for 0, 1 and many records.
- Determinism: the same records score the same, whether scored alone or
  inside a larger batch (the bridge batches several frames together, so a
  record's verdict must not depend on its neighbours).
- It learned something: on fresh synthetic data with held-out labels its AUC
  is well above chance, riskier records (high-risk MCC, e-commerce) score
  higher, and the decisions follow the thresholds.
- The shipped weights are exactly what scripts/train_model.py produces.
- Loading errors are one clear ModelError, including asking for a
  scikit-learn model where scikit-learn is not installed, and a pickle that
  is not a servable estimator or lacks its metadata sidecar.
(The other runtimes, the metadata checks and --model's grammar have their
own files: test_runtimes.py, test_model_metadata.py, test_model_loading.py.)
"""

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aegis_bridge import protocol as p
from aegis_bridge.model import FEATURE_NAMES, ModelError, decide, features, load_model
from aegis_bridge.synthetic import fraud_labels, make_txns

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model():
    return load_model()


def txns(n, seed=7):
    return make_txns(np.random.default_rng(seed), n)


@pytest.mark.parametrize("n", [0, 1, 256, 10_000])
def test_scores_have_the_right_shape_type_and_range(model, n):
    scores, decisions = model.score(txns(n))
    assert scores.shape == (n,) and scores.dtype == np.float32
    assert decisions.shape == (n,) and decisions.dtype == np.uint8
    assert np.all((scores >= 0) & (scores <= 1)) and np.all(np.isfinite(scores))
    assert set(np.unique(decisions)) <= {0, 1, 2}


def test_scoring_is_deterministic_and_independent_of_batch_neighbours(model):
    t = txns(1000)
    whole, d_whole = model.score(t)
    again, _ = model.score(t.copy())
    parts = np.concatenate([model.score(t[i : i + 37])[0] for i in range(0, 1000, 37)])
    assert np.array_equal(whole, again)
    assert np.array_equal(whole, parts)
    assert np.array_equal(d_whole, decide(whole, model.review, model.decline))


def test_table_scoring_equals_the_feature_matrix_reference(model):
    # score() gathers per-feature contributions from tables instead of
    # building features(); it must still be sigmoid(features . w + b).
    t = txns(20_000, seed=11)
    t["channel"][:50] = 255  # an unknown channel contributes nothing, as in features()
    t["currency"][50:100] = b"EU\0"
    scores, decisions = model.score(t)
    reference = model.score_reference(t)
    assert np.max(np.abs(scores - reference)) < 1e-6
    ties = np.sum(decisions != decide(reference, model.review, model.decline))
    assert ties <= 2, f"{ties} decisions differ: only a score within rounding of a threshold may"


def test_extreme_fields_do_not_break_scoring(model):
    t = np.zeros(4, dtype=p.TXN_DTYPE)
    t["amount_minor"] = [-(2**63), 0, 2**63 - 1, 1]
    t["mcc"] = [0, 2**32 - 1, 4829, 10_000]
    t["timestamp_ns"] = [-(2**63), 0, 2**63 - 1, -1]
    t["channel"] = [0, 1, 2, 255]
    t["currency"] = [b"\0\0\0", b"EUR", b"XXX", b"usd"]
    scores, _ = model.score(t)
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))


def test_model_ranks_held_out_fraud_above_chance(model):
    rng = np.random.default_rng(99)  # not the training seed
    t = make_txns(rng, 50_000)
    y = fraud_labels(rng, t)
    scores, decisions = model.score(t)
    order = np.argsort(scores)
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = y.sum()
    auc = (ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos))
    assert auc > 0.75, f"AUC {auc:.3f}: the shipped model should clearly beat chance (0.5)"
    flagged = decisions > 0
    assert y[flagged].mean() > 2 * y.mean(), "reviewed/declined traffic is enriched in fraud"
    assert 0.01 < flagged.mean() < 0.15, "thresholds send a few percent to review or decline"


def test_riskier_records_score_higher(model):
    base = txns(1)
    base["channel"] = 0
    base["mcc"] = 5411
    base["currency"] = b"EUR"
    risky = base.copy()
    risky["channel"] = 1
    risky["mcc"] = 7995
    risky["currency"] = b"USD"
    assert model.score(risky)[0][0] > model.score(base)[0][0]


def test_features_are_vectorised_and_named():
    x = features(txns(10))
    assert x.shape == (10, len(FEATURE_NAMES)) and x.dtype == np.float32


def test_decide_thresholds():
    s = np.array([0.0, 0.2, 0.5, 0.89, 0.9, 1.0], dtype=np.float32)
    assert decide(s, 0.5, 0.9).tolist() == [0, 0, 1, 1, 2, 2]


def test_shipped_weights_match_the_training_script():
    r = subprocess.run([sys.executable, str(REPO / "scripts/train_model.py"), "--check"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_training_with_another_seed_changes_the_weights(tmp_path):
    out = tmp_path / "w.json"
    r = subprocess.run([sys.executable, str(REPO / "scripts/train_model.py"), "--seed", "5", "--samples", "20000",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    other = load_model(out)
    assert not np.allclose(other.weights, load_model().weights)
    assert json.loads(out.read_text())["training"]["seed"] == 5


def test_bad_weight_files_raise_one_clear_error(tmp_path):
    named = {"format": "aegis-logreg-v1", "name": "m", "version": "1"}
    cases = {
        "missing.json": None,
        "garbage.json": "{not json",
        "wrong_format.json": json.dumps({"format": "other"}),
        "wrong_features.json": json.dumps({**named, "features": ["x"], "thresholds": {"review": .5, "decline": .9}}),
        "features_not_a_list.json": json.dumps({**named, "features": 5,  # was: TypeError
                                                "thresholds": {"review": .5, "decline": .9}}),
        "weights_not_numbers.json": json.dumps({**named, "features": list(FEATURE_NAMES),
                                                "weights": ["a"] * 9, "bias": 0,
                                                "thresholds": {"review": .5, "decline": .9}}),
        "short_weights.json": json.dumps({**named, "features": list(FEATURE_NAMES),
                                          "weights": [1.0], "bias": 0, "thresholds": {"review": .5, "decline": .9}}),
        "no_version.json": json.dumps({"format": "aegis-logreg-v1", "name": "m", "features": list(FEATURE_NAMES),
                                       "weights": [1.0] * 9, "bias": 0, "thresholds": {"review": .5, "decline": .9}}),
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(ModelError) as e:
            load_model(path)
        assert "\n" not in str(e.value) and name in str(e.value)


def train_sklearn(tmp_path):
    """Trains both models on the same 20k samples: (weights JSON, pickled sklearn model)."""
    weights, pkl = tmp_path / "w.json", tmp_path / "m.pkl"
    r = subprocess.run([sys.executable, str(REPO / "scripts/train_model.py"), "--samples", "20000",
                        "--out", str(weights), "--sklearn", str(pkl)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return weights, pkl


def test_sklearn_model_from_the_training_script_scores_like_the_numpy_model(tmp_path):
    pytest.importorskip("sklearn", reason="the optional scikit-learn path (scripts/bootstrap.sh installs it)")
    weights, pkl = train_sklearn(tmp_path)
    sk, ref = load_model(pkl), load_model(weights)
    assert sk.info.name == "aegis-fraud-sklearn-logreg" and ref.info.name == "aegis-fraud-logreg"
    t = txns(5_000, seed=3)
    scores, decisions = sk.score(t)
    assert scores.shape == (5_000,) and scores.dtype == np.float32 and decisions.dtype == np.uint8
    assert np.array_equal(decisions, decide(scores, sk.review, sk.decline))
    # The same L2-regularised logistic regression fitted by two solvers: the
    # scores agree closely (and so do the thresholds, each from its own
    # scores' quantiles). Features in another order, or another scaling,
    # would not.
    assert abs(sk.review - ref.review) < 1e-3 and abs(sk.decline - ref.decline) < 1e-3
    ref_scores, ref_decisions = ref.score(t)
    assert np.max(np.abs(scores - ref_scores)) < 1e-3
    assert np.mean(decisions == ref_decisions) > 0.995


def test_sklearn_model_without_sklearn_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # find_spec("sklearn") is None: as if not installed
    path = tmp_path / "model.pkl"
    path.write_bytes(b"irrelevant")
    with pytest.raises(ModelError, match="needs scikit-learn"):
        load_model(path)


def test_unreadable_or_foreign_pickles_are_one_clear_error(tmp_path):
    pytest.importorskip("sklearn", reason="the optional scikit-learn path (scripts/bootstrap.sh installs it)")
    from sklearn.linear_model import LogisticRegression

    meta = json.dumps({"name": "m", "version": "1", "features": list(FEATURE_NAMES),
                       "thresholds": {"review": 0.2, "decline": 0.5}})
    rng = np.random.default_rng(0)
    eight = LogisticRegression().fit(rng.random((50, 8)), np.arange(50) % 2)

    def pickled(name, data, sidecar=meta):
        path = tmp_path / name
        path.write_bytes(data)
        if sidecar is not None:
            (tmp_path / f"{name}.meta.json").write_text(sidecar)
        return path

    cases = [
        (pickled("garbage.pkl", b"not a pickle"), "cannot read scikit-learn model"),
        # a pickle GET opcode with a bad argument: ValueError inside pickle
        (pickled("garbage_get.pkl", b"garbage\n"), "cannot read scikit-learn model"),
        # GLOBAL of a module that does not exist
        (pickled("missing_class.pkl", b"cno_such_module\nNoSuchClass\n."), "cannot read scikit-learn model"),
        (pickled("old_dict.pkl", pickle.dumps({"estimator": eight, "features": list(FEATURE_NAMES)})),
         "pickle the estimator alone"),
        (pickled("not_an_estimator.pkl", pickle.dumps(42)), "int has no predict_proba"),
        (pickled("eight_features.pkl", pickle.dumps(eight)), "the estimator takes 8 features, the bridge computes 9"),
        (pickled("no_sidecar.pkl", pickle.dumps(eight), sidecar=None), "no metadata file"),
        (pickled("sidecar_garbage.pkl", pickle.dumps(eight), sidecar="{"), "cannot read its metadata"),
        (pickled("no_thresholds.pkl", pickle.dumps(eight),
                 sidecar=json.dumps({"name": "m", "version": "1", "features": list(FEATURE_NAMES)})),
         "metadata has no 'thresholds'"),
        (pickled("bad_thresholds.pkl", pickle.dumps(eight),
                 sidecar=json.dumps({"name": "m", "version": "1", "features": list(FEATURE_NAMES),
                                     "thresholds": {"review": 0.9, "decline": 0.5}})),
         "review <= decline"),
    ]
    for path, words in cases:
        with pytest.raises(ModelError, match=re.escape(words)) as e:
            load_model(path)
        assert "\n" not in str(e.value) and path.name in str(e.value), str(e.value)
