"""Proves a model's metadata is checked when it loads, in every runtime, with one line naming the mismatch.

Metadata: feature names and their order, thresholds, name and version.
Where it lives: in a weights JSON (its fields), in an XGBoost model
(feature_names and the aegis_* attributes), in `<model>.meta.json` beside
a scikit-learn pickle, in a Python scorer's `info`. For each, a model
whose features are the bridge's in another order, or another set, is
refused with "feature i is X, the bridge computes Y"; missing or
disordered thresholds, an empty name or version, an XGBoost objective that
gives no probabilities, and an estimator fitted on other features are
refused too. The bridge process refuses to start on such a model: exit 2
and that one line, before it connects to anything.
"""

import json
import pickle
import subprocess

import numpy as np
import pytest

from aegis_bridge import FEATURE_NAMES, ModelInfo
from aegis_bridge.loading import load_scorer
from aegis_bridge.scoring import ModelError, check_info, feature_mismatch
from aegis_fixtures.bridge_cli import bridge_argv, bridge_env

SWAPPED = list(FEATURE_NAMES)
SWAPPED[3], SWAPPED[4] = SWAPPED[4], SWAPPED[3]  # mcc_travel where the bridge computes mcc_high_risk


def refused(spec: str) -> str:
    """The one-line ModelError loading `spec` raises."""
    with pytest.raises(ModelError) as e:
        load_scorer(spec)
    text = str(e.value)
    assert "\n" not in text, text
    return text


def test_weights_json_with_features_in_another_order(tmp_path, trained_models):
    doc = json.loads(trained_models["numpy"].read_text())
    doc["features"] = SWAPPED
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    assert refused(str(path)) == f"model {path}: feature 3 is 'mcc_travel', the bridge computes 'mcc_high_risk'"


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(features=FEATURE_NAMES[:8]), "8 features, the bridge computes 9 (feature 8 would be "
                                                     "'foreign_currency')"),
    (lambda d: d.update(features=[*FEATURE_NAMES, "velocity"]), "10 features, the bridge computes 9 (feature 9 is "
                                                                "'velocity')"),
    (lambda d: d.update(thresholds={"review": 0.9, "decline": 0.5}), "0 <= review <= decline <= 1, got review 0.9"),
    (lambda d: d.update(thresholds={"review": 0.1}), "'thresholds' must be {\"review\": r, \"decline\": d}"),
    (lambda d: d.update(thresholds={"review": "0.1", "decline": 0.5}), "threshold 'review' must be a number"),
    (lambda d: d.update(name=""), "'name' must be a non-empty one-line string"),
    (lambda d: d.update(version="1\n2"), "'version' must be a non-empty one-line string"),
    (lambda d: d.pop("version"), "metadata has no 'version'"),
])
def test_weights_json_metadata_mistakes(tmp_path, trained_models, change, words):
    doc = json.loads(trained_models["numpy"].read_text())
    change(doc)
    path = tmp_path / "w.json"
    path.write_text(json.dumps(doc))
    assert words in refused(str(path))


def test_sklearn_sidecar_with_features_in_another_order(trained_models, tmp_path):
    if "sklearn" not in trained_models:
        pytest.skip("scikit-learn is not installed")
    path = tmp_path / "m.pkl"
    path.write_bytes(trained_models["sklearn"].read_bytes())
    meta = json.loads((trained_models["sklearn"].parent / "sklearn.pkl.meta.json").read_text())
    meta["features"] = SWAPPED
    (tmp_path / "m.pkl.meta.json").write_text(json.dumps(meta))
    assert refused(str(path)) == f"model {path}: feature 3 is 'mcc_travel', the bridge computes 'mcc_high_risk'"


def test_sklearn_estimator_fitted_on_named_features_must_match_its_sidecar(trained_models, tmp_path):
    if "sklearn" not in trained_models:
        pytest.skip("scikit-learn is not installed")
    estimator = pickle.loads(trained_models["sklearn"].read_bytes())
    # What fitting on a DataFrame records (pandas may be absent here, so it is set by hand).
    estimator.feature_names_in_ = np.array(SWAPPED, dtype=object)
    path = tmp_path / "named.pkl"
    path.write_bytes(pickle.dumps(estimator))
    (tmp_path / "named.pkl.meta.json").write_text((trained_models["sklearn"].parent / "sklearn.pkl.meta.json")
                                                  .read_text())
    assert "the estimator was fitted on features ['log_amount', 'channel_ecommerce', 'channel_recurring', " \
           "'mcc_travel'" in refused(str(path))


def xgboost_copy(trained_models, tmp_path, edit):
    """A copy of the trained XGBoost model after `edit(booster)`."""
    xgboost = pytest.importorskip("xgboost", reason="xgboost is not installed")
    booster = xgboost.Booster()
    booster.load_model(str(trained_models["xgboost"]))
    edit(booster)
    path = tmp_path / "edited.json"
    booster.save_model(str(path))
    return path


def test_xgboost_feature_names_in_another_order(trained_models, tmp_path):
    path = xgboost_copy(trained_models, tmp_path, lambda b: setattr(b, "feature_names", SWAPPED))
    assert refused(str(path)) == f"model {path}: feature 3 is 'mcc_travel', the bridge computes 'mcc_high_risk'"


@pytest.mark.parametrize("edit, words", [
    (lambda b: setattr(b, "feature_names", None), "the booster has no feature_names"),
    (lambda b: b.set_attr(aegis_version=None), "no attribute aegis_version"),
    (lambda b: b.set_attr(aegis_review="high"), "attribute aegis_review must be a number, got 'high'"),
    (lambda b: b.set_attr(aegis_review="0.9", aegis_decline="0.1"), "0 <= review <= decline <= 1"),
    (lambda b: b.set_param({"objective": "binary:logitraw"}), "objective 'binary:logitraw' does not give "
                                                              "probabilities"),
])
def test_xgboost_metadata_mistakes(trained_models, tmp_path, edit, words):
    path = xgboost_copy(trained_models, tmp_path, edit)
    assert words in refused(str(path))


@pytest.mark.parametrize("info, words", [
    (ModelInfo("m", "1", features=SWAPPED), "model mymodel:make: feature 3 is 'mcc_travel', the bridge computes "
                                            "'mcc_high_risk'"),
    (ModelInfo("m", "1", review=0.5), "threshold 'decline' must be a number"),
    (ModelInfo("", "1"), "'name' must be a non-empty one-line string"),
    ({"name": "m", "version": "1"}, "info must be an aegis_bridge.ModelInfo, got dict"),
])
def test_python_scorer_info_mistakes(info, words):
    with pytest.raises(ModelError) as e:
        check_info(info, "mymodel:make")
    assert words in str(e.value)


def test_a_python_scorer_may_read_raw_records_and_decide_itself():
    # No features and no thresholds: nothing to check but the name and version.
    info = ModelInfo("rules", "2026.1")
    assert check_info(info, "rules:make") is info
    assert feature_mismatch(FEATURE_NAMES, "x") is None


def test_the_bridge_refuses_to_start_on_a_mismatched_model(tmp_path, trained_models):
    doc = json.loads(trained_models["numpy"].read_text())
    doc["features"] = SWAPPED
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    r = subprocess.run([*bridge_argv(), "--offload", "ipc:///tmp/aegis-never-o", "--verdicts",
                        "ipc:///tmp/aegis-never-v", "--model", str(path)],
                       capture_output=True, text=True, timeout=60, env=bridge_env())
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"aegis-bridge: error: model {path}: feature 3 is 'mcc_travel', the bridge computes "
                        f"'mcc_high_risk'\n")
