"""Proves the real bridge process (the `aegis-bridge` console script) behaves as deployed, against a fake core.

No aegis-core is needed: FakeCore binds the endpoints in the harness's
directory, so these run in every build. They cover what only a real process
shows:
- SIGTERM and SIGINT end it promptly with exit code 0 and final counters.
- Bad arguments end it with exit code 2 and exactly one line on stderr.
- Its Prometheus endpoint parses with prometheus_client's parser, passes
  `promtool check metrics`, and its counters equal the traffic sent; the
  timing histograms count one observation per model call (records per
  call summing to the records scored), and aegis_bridge_model_info names
  the shipped model, its version and runtime.
- With `--model` it serves a model of each built-in runtime (numpy weights,
  scikit-learn, XGBoost) from the training script, names it in its start
  line and metrics, and answers exactly what that model scores in-process.
- Served the slow test model with poison records and `--unscored-decision
  decline`, it answers those records unscored with that decision, the rest
  normally, and its metrics and --stats-json count them.
- The stop-before-send hook freezes it after receiving and before answering,
  so a kill there leaves frames unanswered, which a new incarnation answers.
- It may start before the core, and it survives the core dying and a new
  core (new epoch) binding the same endpoints.
"""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from aegis_bridge import protocol as p
from aegis_fixtures.bridge_cli import bridge_argv, bridge_env
from aegis_fixtures.fake_core import FakeCore
from aegis_fixtures.harness import REPO
from aegis_fixtures.observe import promtool_check
from aegis_fixtures.waiting import wait_for, wait_value

pytestmark = pytest.mark.real


@pytest.fixture
def core(harness):
    harness.endpoint_dir.mkdir(mode=0o700)
    c = FakeCore(harness.endpoint_dir)
    yield c
    c.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_with_exit_code_0(harness, core, sig):
    stats = harness.dir / "stats.json"
    bridge = harness.start_bridge(extra=["--stats-json", stats])
    core.send_txns(500, per_frame=100)
    core.wait_verdict_records(500)
    bridge.signal(sig)
    assert bridge.wait(30) == 0
    doc = json.loads(stats.read_text())
    assert doc["verdict_records_sent"] == 500 and doc["incarnation"] == bridge.incarnation
    assert "aegis-bridge: stopped:" in bridge.log_text()


@pytest.mark.parametrize("args, message", [
    ([], "required: --offload, --verdicts"),
    (["--offload", "nonsense", "--verdicts", "ipc:///tmp/x"], "not a ZeroMQ endpoint"),
    (["--offload", "ipc:///tmp/a", "--verdicts", "ipc:///tmp/b", "--heartbeat", "200"], "is not a duration"),
    (["--offload", "ipc:///tmp/a", "--verdicts", "ipc:///tmp/b", "--batch-max", "0"], "outside 1.."),
    (["--offload", "ipc:///tmp/a", "--verdicts", "ipc:///tmp/b", "--metrics-port", "70000"], "outside 0..65535"),
    (["--offload", "ipc:///tmp/a", "--verdicts", "ipc:///tmp/b", "--model", "/nonexistent.json"],
     "cannot read model file /nonexistent.json"),
    (["--offload", "ipc:///tmp/a", "--verdicts", "ipc:///tmp/b", "--model", "nomodule:factory"],
     "--model nomodule:factory: no module named 'nomodule'"),
    (["--offload", "ipc:///tmp/a", "--verdicts", "ipc:///tmp/b", "--unscored-decision", "deny"],
     "'deny' is not one of approve, review, decline"),
])
def test_bad_arguments_give_one_line_and_exit_code_2(args, message):
    r = subprocess.run([*bridge_argv(), *args], capture_output=True, text=True, timeout=30, env=bridge_env(base={}))
    assert r.returncode == 2
    assert r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("aegis-bridge: error:") and message in r.stderr


def test_metrics_parse_pass_promtool_and_count_the_traffic(harness, core):
    bridge = harness.start_bridge()
    core.send_txns(1000, per_frame=250)
    core.send_raw(b"junk")
    core.send_raw(p.encode_hello(1, 1))
    core.wait_verdict_records(1000)

    def settled():
        m = harness.bridge_metrics()
        return m.value("aegis_bridge_frames_received_total") == 6 and m

    wait_for(settled, 30, "the bridge's counters to include all 6 frames")
    m = harness.bridge_metrics()
    assert m.value("aegis_bridge_txn_frames_total") == 4
    assert m.value("aegis_bridge_records_scored_total") == 1000
    assert m.value("aegis_bridge_verdict_records_sent_total") == 1000
    assert m.by_label("aegis_bridge_bad_frames_total", "reason") == {
        r: (1.0 if r in ("truncated", "unexpected_type") else 0.0) for r in (*p.REJECT_REASONS, "unexpected_type")}
    assert m.value("aegis_bridge_core_info", epoch=f"{core.epoch:#x}") == 1.0
    assert m.value("aegis_bridge_info", incarnation=f"{bridge.incarnation:#018x}") == 1.0
    assert m.samples["aegis_bridge_model_info"] == [
        ({"name": "aegis-fraud-logreg", "version": "1", "runtime": "numpy"}, 1.0)]
    # One observation per model call in each histogram; the records per call add up to the records scored.
    calls = m.value("aegis_bridge_batch_records_count")
    assert 1 <= calls <= 4 and m.value("aegis_bridge_batch_records_sum") == 1000
    for name in ("aegis_bridge_queue_duration_seconds", "aegis_bridge_score_duration_seconds"):
        assert m.value(f"{name}_count") == calls and 0 < m.value(f"{name}_sum") < 60
        assert m.value(f"{name}_bucket", le="+Inf") == calls
    ok, output = promtool_check(m.text)
    if ok is None:
        pytest.skip(output)
    assert ok, output


def test_serves_a_model_of_each_runtime_from_the_training_script(harness, core, runtime_model):
    from aegis_bridge.loading import load_scorer

    runtime, path = runtime_model
    expected = load_scorer(str(path))
    bridge = harness.start_bridge(extra=["--model", path])
    assert f"model {expected.info.name} version 1 ({runtime})" in bridge.log_text()
    frames = core.send_txns(2000, per_frame=100)
    core.wait_verdict_records(2000)
    verdicts = core.verdict_records()
    txns = np.concatenate(frames)
    assert verdicts["seq"].tolist() == txns["seq"].tolist() and np.array_equal(verdicts["txn_id"], txns["txn_id"])
    # What the process answered is what that model scores in-process.
    scores, decisions = expected.scorer.score(txns)
    assert np.array_equal(verdicts["score"], scores) and np.array_equal(verdicts["decision"], decisions)
    assert harness.bridge_metrics().samples["aegis_bridge_model_info"] == [
        ({"name": expected.info.name, "version": "1", "runtime": runtime}, 1.0)]


def test_poison_records_are_answered_unscored_with_the_configured_decision(harness, core):
    pytest.importorskip("sklearn", reason="the bridge loads pickled models only where scikit-learn is installed")
    from aegis_fixtures.slow_model import poison_mask, write_slow_model

    every = 50
    harness.use_test_model(write_slow_model(harness.dir, 0.0, poison_every=every))
    stats = harness.dir / "stats.json"
    bridge = harness.start_bridge(extra=["--unscored-decision", "decline", "--stats-json", stats])
    txns = np.concatenate(core.send_txns(4000, per_frame=500))
    core.wait_verdict_records(len(txns))
    v = core.verdict_records()
    poison = poison_mask(txns, every)
    k = int(poison.sum())
    assert k > 0 and np.array_equal(v["seq"], txns["seq"])
    assert (v["flags"][poison] == p.FLAG_UNSCORED).all() and (v["decision"][poison] == p.DECISION_DECLINE).all()
    assert (v["flags"][~poison] == 0).all() and not core.record_rejects
    m = wait_value(lambda: (m := harness.bridge_metrics()).value("aegis_bridge_verdict_records_sent_total") == len(txns)
                 and m, 30, "the bridge to count its verdicts")
    assert m.value("aegis_bridge_unscored_total") == k and m.value("aegis_bridge_model_errors_total") >= k
    assert m.value("aegis_bridge_records_scored_total") == len(txns) - k
    bridge.signal(signal.SIGTERM)
    assert bridge.wait(30) == 0
    doc = json.loads(stats.read_text())
    assert doc["unscored"] == k and doc["duplicates_skipped"] == 0 and doc["model_errors"] >= k


def test_killed_between_receiving_and_sending_then_a_new_incarnation_answers(harness, core):
    first = harness.start_bridge(extra=["--hook-stop-before-send", 3])
    frames = core.make_frames(5 * 10, per_frame=10)
    for records in frames[:2]:
        core.send_records(records)
        core.wait_verdict_records(sum(len(f) for f in frames[:2]) if records is frames[1] else 10)
    core.send_records(frames[2])
    first.wait_stopped(60)  # received frame 3, has not answered it
    assert "hook: stopped before send, holding 1 frames, seqs 21..30" in first.log_text()
    first.kill()
    core.pump(0)
    assert core.verdict_record_count() == 20, "nothing for frame 3 was sent before the kill"

    second = harness.start_bridge()
    assert second.incarnation != first.incarnation
    core.wait(lambda: any(h.incarnation == second.incarnation for h in core.hellos), 60, "the new incarnation's HELLO")
    for records in frames[2:]:  # what a core does on a new incarnation: resend the unverdicted
        core.send_records(records)
    core.wait_verdict_records(50)
    late = core.verdict_frames[2:]
    assert sum(f.count for f in late) == 30 and {f.incarnation for f in late} == {second.incarnation}
    assert core.verdict_records()["seq"].tolist() == list(range(1, 51))


def test_bridge_started_before_the_core_then_the_core_restarts(harness):
    bridge = harness.start_bridge(heartbeat="50ms")  # nothing bound yet: it keeps retrying
    harness.endpoint_dir.mkdir(mode=0o700)
    old = FakeCore(harness.endpoint_dir, epoch=111)
    try:
        old.wait_hellos(1)
        old.send_txns(100, per_frame=50)
        old.wait_verdict_records(100)
    finally:
        old.close()  # the core dies; its socket files stay behind, as after SIGKILL
    new = FakeCore(harness.endpoint_dir, epoch=222)
    try:
        new.wait(lambda: any(h.epoch == 111 for h in new.hellos), 60, "a HELLO carrying the last epoch seen")
        new.send_txns(100, per_frame=50)
        new.wait_verdict_records(100)
        assert {f.epoch for f in new.verdict_frames} == {222}
        assert {f.incarnation for f in new.verdict_frames} == {bridge.incarnation}
        assert bridge.alive()
        wait_for(lambda: harness.bridge_metrics().value("aegis_bridge_epochs_seen_total") == 2, 30,
                 "the bridge to count the second epoch")
    finally:
        new.close()


def test_module_runs_from_a_plain_checkout():
    r = subprocess.run([sys.executable, "-m", "aegis_bridge", "--help"], capture_output=True, text=True,
                       timeout=30, cwd=REPO / "src")
    assert r.returncode == 0 and "--offload" in r.stdout
