"""Proves the offload path stays live under a realistic model: useful work keeps flowing, resends stay bounded.

The shipped model costs ~0.1 us per record; real ones cost 10 us to 1 ms.
These tests serve the slow test model (fixtures/aegis_fixtures/slow_model.py,
a busy-wait of COST_S per record) from a real bridge to the real aegis-core,
offer LOAD (half) of the model's own measured capacity for about LOAD_S
seconds in block mode, and check liveness the way safety is checked:

- no fault: nothing lost, no resend at all (a live bridge that keeps up is
  never resent to, not even while it clears the backlog of its own start),
  goodput (verdicts per second over the run, from the
  summary's `throughput_per_s`) at least GOODPUT_SHARE of the offered rate,
  and the drain finishes.
- one bridge SIGKILL a third of the way in, restarted at once: nothing lost;
  records resent at most RESEND_SLACK times what was outstanding at the kill
  (the core's in-flight gauge, read from a scrape taken right after the
  exporter refreshed, just before the kill), plus one frame
  (aegis_fixtures.liveness holds the constants, shared with chaos runs); duplicate
  verdicts at most what was outstanding; the same goodput.

A core that resends whole windows to a bridge that is merely slow fails
both: its resends queue behind the backlog, are scored again, and push the
bridge further behind (a retransmit storm). Every bound comes from the
parameters above and the measured capacity; every assertion prints the
figures and the command that reruns the test.
"""

import os
import shlex
from pathlib import Path

import pytest

from aegis_fixtures.liveness import DEFAULT_BATCH_MAX, GOODPUT_SHARE, FaultLedger
from aegis_fixtures.slow_model import measure_capacity, write_slow_model

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parent.parent
COST_S = 100e-6          # per record: a mid-range real model
LOAD = 0.5               # offered rate as a share of the model's own capacity
LOAD_S = 4.5             # seconds of offered load


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory):
    """(model path, capacity in records/s), measured alone before any process starts."""
    pytest.importorskip("sklearn", reason="the bridge loads pickled models only where scikit-learn is installed")
    path = write_slow_model(tmp_path_factory.mktemp("model"), COST_S)
    return path, measure_capacity(path)


def rerun_command(test_name: str) -> str:
    env = "".join(f"{k}={shlex.quote(os.environ[k])} " for k in ("AEGIS_CORE_BIN",) if os.environ.get(k))
    return (f"cd {REPO} && {env}PYTHONPATH=src:fixtures /usr/bin/python3 -m pytest "
            f"pytests/test_liveness.py::{test_name} -q")


def offered_load(capacity: float) -> tuple[int, int]:
    """(rate per second, count) for LOAD of `capacity` during LOAD_S."""
    rate = int(LOAD * capacity)
    assert rate >= 100, f"the slow model scores only {capacity:.0f} records/s alone: is the machine overloaded?"
    return rate, int(rate * LOAD_S)


def start_run(h, model, count: int, rate: int):
    """The core, offering at once, then one bridge serving the slow model.

    The bridge connects while the core already offers, as after any core
    restart or deployment, so it starts with a backlog of its own start-up
    time (about a second), which it can clear at the spare half of its
    capacity well within LOAD_S.
    """
    h.use_test_model(model)
    # The drain may take as long as the load itself: a run that keeps up needs milliseconds.
    h.start_core(mode="block", count=count, rate=rate, extra=["--drain-timeout", f"{int(LOAD_S * 1000)}ms"])
    h.start_bridge()


def figures(s: dict, rate: int, capacity: float, **extra) -> str:
    keys = ("offered", "verdicts", "in_flight", "lost", "retransmits", "retransmit_rounds", "duplicate_verdicts",
            "bridge_incarnations", "throughput_per_s", "produce_s", "drain_s", "drained", "exit_code",
            "abandoned", "unscored_verdicts")
    shown = {k: s[k] for k in keys if k in s}
    shown.update(extra)
    return (f"model {COST_S * 1e6:g} us/record, capacity {capacity:.0f}/s alone, offered {rate}/s "
            f"({LOAD:.0%}) for {LOAD_S:g}s; " + ", ".join(f"{k}={v}" for k, v in shown.items()))


def check_nothing_lost(s: dict, rc: int, count: int, about: str, rerun: str) -> None:
    assert rc == 0, f"aegis-core exit code {rc}: {about}\nrerun: {rerun}"
    assert s["lost"] == 0 and s["in_flight"] == 0 and s["drained"], f"lost transactions: {about}\nrerun: {rerun}"
    assert s["offered"] == s["verdicts"] == count, f"not every offered transaction verdicted: {about}\nrerun: {rerun}"
    assert s.get("abandoned", 0) == 0, f"transactions abandoned: {about}\nrerun: {rerun}"


def check_goodput(s: dict, rate: int, about: str, rerun: str) -> None:
    floor = GOODPUT_SHARE * rate
    assert s["throughput_per_s"] >= floor, \
        (f"goodput {s['throughput_per_s']:.0f}/s below {GOODPUT_SHARE:.0%} of the offered {rate}/s "
         f"({floor:.0f}/s): {about}\nrerun: {rerun}")


def test_a_slow_model_at_half_its_capacity_is_never_resent_to(core_harness, slow_model):
    h = core_harness
    model, capacity = slow_model
    rate, count = offered_load(capacity)
    rerun = rerun_command("test_a_slow_model_at_half_its_capacity_is_never_resent_to")
    start_run(h, model, count, rate)
    rc = h.wait_core_exit(LOAD_S * 4 + 60)
    s = h.summary()
    about = figures(s, rate, capacity)
    assert s["retransmits"] == 0, f"records resent with no fault ({s['retransmits']}): {about}\nrerun: {rerun}"
    check_nothing_lost(s, rc, count, about, rerun)
    check_goodput(s, rate, about, rerun)


def test_a_bridge_killed_under_a_slow_model_costs_only_what_it_held(core_harness, slow_model):
    h = core_harness
    model, capacity = slow_model
    rate, count = offered_load(capacity)
    rerun = rerun_command("test_a_bridge_killed_under_a_slow_model_costs_only_what_it_held")
    start_run(h, model, count, rate)
    h.wait_core_metric("aegis_verdicts_total", lambda v: v >= count // 3, timeout_s=LOAD_S * 4 + 30)
    m = h.fresh_core_metrics()
    outstanding = int(m.value("aegis_in_flight", 0.0))  # accepted, no verdict: sent-unverdicted at most
    verdicts_at_kill = int(m.value("aegis_verdicts_total", 0.0))
    h.restart_bridge()
    rc = h.wait_core_exit(LOAD_S * 4 + 60)
    s = h.summary()
    batch_max = s.get("config", {}).get("batch_max", DEFAULT_BATCH_MAX)
    faults = FaultLedger()
    faults.kill(outstanding)
    resend_bound = faults.resend_bound(batch_max)  # RESEND_SLACK x outstanding + one frame
    about = figures(s, rate, capacity, outstanding_at_kill=outstanding, verdicts_at_kill=verdicts_at_kill,
                    resend_bound=resend_bound)
    assert s["retransmits"] <= resend_bound, \
        (f"resent {s['retransmits']} records for one kill; bound {resend_bound} ({outstanding} outstanding "
         f"with slack, + {batch_max}, one frame): {about}\nrerun: {rerun}")
    assert s["duplicate_verdicts"] <= outstanding, \
        (f"{s['duplicate_verdicts']} duplicate verdicts, more than the {outstanding} outstanding at the kill: "
         f"{about}\nrerun: {rerun}")
    check_nothing_lost(s, rc, count, about, rerun)
    assert s["bridge_incarnations"] == 2, f"one kill, one restart: {about}\nrerun: {rerun}"
    check_goodput(s, rate, about, rerun)
