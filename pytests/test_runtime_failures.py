"""Proves a scorer that raises never takes the bridge down, whatever loaded it: numpy, sklearn, xgboost, module:factory.

For each built-in runtime, a model trained by scripts/train_model.py is
loaded as the bridge loads it, and a fault is planted inside that runtime's
own machinery, not around its `score`: the numpy model's MCC contribution
table raises when a batch asks for one merchant code, the scikit-learn
estimator's predict_proba and the XGBoost booster's inplace_predict raise
when a feature row holds one amount. Records carrying that code or amount
are poison. The bridge (in-process, against the fake core, which checks
every verdict record as the real core does) must answer each poison record
`unscored` (flag bit 0, score 0, the configured fail-safe decision), every
other record exactly what the clean model scores, in TXN order, count them
(unscored, model_errors), keep heartbeating, and score the next clean
frames normally.

For module:factory, a real `aegis-bridge` process serves a scorer module
written outside the tree (on PYTHONPATH) that raises on every batch holding
a poison txn_id: the same verdicts, the counters on its metrics endpoint,
the model's name and runtime in aegis_bridge_model_info, and it still exits
0 on SIGTERM.
"""

import signal

import numpy as np
import pytest

from aegis_bridge import protocol as p
from aegis_bridge.features import MCC_LIMIT, features
from aegis_bridge.loading import load_scorer
from aegis_fixtures.fake_core import FakeCore
from aegis_fixtures.waiting import wait_for, wait_value

EVERY = 13                 # txn_id % EVERY == 0 are made poison
POISON_MCC = MCC_LIMIT - 1  # the numpy runtime's table raises when asked for this merchant code
POISON_AMOUNT = 1_313_131  # cents; the scikit-learn and XGBoost runtimes' models raise on this amount


class RaisingTable(np.ndarray):
    """The numpy model's MCC table, raising when gathered at POISON_MCC (as a corrupt model part would)."""

    def __getitem__(self, index):
        if isinstance(index, np.ndarray) and (index == POISON_MCC).any():
            raise FloatingPointError("corrupt MCC table entry")
        return super().__getitem__(index)


def poison_row(x: np.ndarray) -> np.ndarray:
    """Which rows of the bridge's feature matrix hold the poison amount."""
    sentinel = np.zeros(1, dtype=p.TXN_DTYPE)
    sentinel["amount_minor"] = POISON_AMOUNT
    return x[:, 0] == features(sentinel)[0, 0]


class RaisingOnPoisonRows:
    """A scikit-learn estimator or XGBoost booster that raises on any batch holding a poison row."""

    def __init__(self, inner):
        self.inner = inner

    def _check(self, x):
        if poison_row(np.asarray(x)).any():
            raise ValueError("model server rejected a feature row")

    def predict_proba(self, x):
        self._check(x)
        return self.inner.predict_proba(x)

    def inplace_predict(self, x, *args, **kwargs):
        self._check(x)
        return self.inner.inplace_predict(x, *args, **kwargs)


def plant_fault(runtime: str, scorer):
    """The fault inside the runtime's own machinery, and the field its poison records carry."""
    if runtime == "numpy":
        scorer._mcc_table = scorer._mcc_table.view(RaisingTable)
        return "mcc", POISON_MCC
    if runtime == "sklearn":
        scorer.estimator = RaisingOnPoisonRows(scorer.estimator)
    else:
        scorer.booster = RaisingOnPoisonRows(scorer.booster)
    return "amount_minor", POISON_AMOUNT


def test_a_raising_runtime_costs_unscored_verdicts_never_the_bridge(fake_core, run_bridge, runtime_model):
    runtime, path = runtime_model
    clean = load_scorer(str(path)).scorer
    poisoned = load_scorer(str(path))
    assert poisoned.runtime == runtime
    field, value = plant_fault(runtime, poisoned.scorer)
    r = run_bridge(model=poisoned.scorer, unscored_decision=p.DECISION_DECLINE, heartbeat_s=0.05)
    frames = fake_core.make_frames(3000, per_frame=500)
    for records in frames:
        records[field][records["txn_id"] % EVERY == 0] = value
        fake_core.send_records(records)
    sent = np.concatenate(frames)
    poison = sent[field] == value
    k = int(poison.sum())
    assert 0 < k < len(sent)
    fake_core.wait_verdict_records(len(sent))
    v = fake_core.verdict_records()
    assert np.array_equal(v["seq"], sent["seq"]), "every record answered, in TXN order"
    assert (v["flags"][poison] == p.FLAG_UNSCORED).all() and (v["score"][poison] == 0).all()
    assert (v["decision"][poison] == p.DECISION_DECLINE).all(), "the configured fail-safe decision"
    scores, decisions = clean.score(sent[~poison])
    assert (v["flags"][~poison] == 0).all()
    assert np.array_equal(v["score"][~poison], scores) and np.array_equal(v["decision"][~poison], decisions)
    assert not fake_core.record_rejects, dict(fake_core.record_rejects)
    wait_for(lambda: r.stats.verdict_records_sent == len(sent), 30, "the bridge to count its verdicts")
    st = r.stats
    assert st.unscored == k and st.records_scored == len(sent) - k and st.model_errors >= k
    # It lives on: heartbeats continue, and clean records afterwards are scored, not unscored.
    fake_core.wait_hellos(len(fake_core.hellos) + 2)
    more = np.concatenate(fake_core.send_txns(600, per_frame=300))
    fake_core.wait_verdict_records(len(sent) + len(more))
    after = fake_core.verdict_records()[len(sent):]
    assert (after["flags"] == 0).all() and np.array_equal(after["score"], clean.score(more)[0])
    assert r.thread.is_alive()


POISON_MODULE = '''
"""A user's scorer that fails on some records: raises for any batch holding a txn_id divisible by 13."""
from aegis_bridge import ModelInfo, load_scorer


class PoisonOnTxnId:
    info = ModelInfo(name="poison-factory", version="3.0")

    def __init__(self):
        self.inner = load_scorer(None).scorer  # the shipped model does the scoring

    def score(self, txns):
        if (txns["txn_id"] % 13 == 0).any():
            raise KeyError("feature store has no row for this card")
        return self.inner.score(txns)


def make_scorer():
    return PoisonOnTxnId()
'''


@pytest.mark.real
def test_a_raising_module_factory_scorer_costs_unscored_verdicts_never_the_bridge_process(harness, tmp_path):
    (tmp_path / "poisonmod.py").write_text(POISON_MODULE)
    harness.use_model("poisonmod:make_scorer", [tmp_path])
    harness.endpoint_dir.mkdir(mode=0o700)
    core = FakeCore(harness.endpoint_dir)
    try:
        bridge = harness.start_bridge(extra=["--unscored-decision", "approve"])
        assert "model poison-factory version 3.0 (module)" in bridge.log_text()
        sent = np.concatenate(core.send_txns(2600, per_frame=260))
        core.wait_verdict_records(len(sent))
        v = core.verdict_records()
        poison = sent["txn_id"] % EVERY == 0
        k = int(poison.sum())
        assert k > 0 and np.array_equal(v["seq"], sent["seq"])
        assert (v["flags"][poison] == p.FLAG_UNSCORED).all() and (v["decision"][poison] == p.DECISION_APPROVE).all()
        assert (v["flags"][~poison] == 0).all() and not core.record_rejects
        scores, _ = load_scorer(None).scorer.score(sent[~poison])
        assert np.array_equal(v["score"][~poison], scores)
        m = wait_value(lambda: (m := harness.bridge_metrics()).value("aegis_bridge_verdict_records_sent_total")
                       == len(sent) and m, 30, "the bridge to count its verdicts")
        assert m.value("aegis_bridge_unscored_total") == k and m.value("aegis_bridge_model_errors_total") >= k
        assert m.samples["aegis_bridge_model_info"] == [
            ({"name": "poison-factory", "version": "3.0", "runtime": "module"}, 1.0)]
        core.wait_hellos(len(core.hellos) + 2)  # still heartbeating
        assert bridge.alive()
        bridge.signal(signal.SIGTERM)
        assert bridge.wait(30) == 0
    finally:
        core.close()
