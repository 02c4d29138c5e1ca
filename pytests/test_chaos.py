"""Proves the accounting survives random fault schedules: a Hypothesis state machine over real processes.

Rules kill, start, stall and resume the bridge, burst libfiu failpoints in
the core, and change the load (end the core, check its summary, start
another at a new rate). After every step the invariants are checked on a
metrics scrape (offered = accepted + dropped, in-flight and ring depth
within capacity, counters monotonic, no ring_full drop in block mode, no
process dying on its own). Teardown heals every fault, requires verdicts to
flow again, SIGTERMs the core and checks the summary and the ledger exactly,
and that the core rejected no verdict (the bridges are honest).

- `tox -e py` runs one short schedule (test_chaos_schedule_short).
- `tox -e chaos -- --budget 2m` runs schedules for about 60% of the budget and
  prints what it injected and checked, then spends the rest on
  scripts/real_chaos.py, whose timeline plot lands in chaos-out/tox/timeline.png.

A failure prints the steps that led to it, an @reproduce_failure blob and the
seed to replay (`tox -e chaos -- --hypothesis-seed=N`); Hypothesis' database
(.hypothesis/chaos) keeps the failing example, and the next run replays it first.
"""

import re
import subprocess
import sys
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, \
    run_state_machine_as_test

from aegis_fixtures.chaos import FIU_SITES, ChaosWorld
from aegis_fixtures.harness import REPO, Harness, find_core_binary

DATABASE = DirectoryBasedExampleDatabase(str(REPO / ".hypothesis" / "chaos"))


def machine_factory(new_harness, tally, deadline):
    # No rule has a precondition on the processes' state: what a rule does
    # depends on that state, but what Hypothesis draws never does, so data
    # generation stays consistent (Hypothesis insists) even across the budget
    # cut-off, after which schedules do nothing.
    class ChaosMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            self.harness = None
            self.world = None
            self.params = None

        @initialize(nonminimal=st.integers(0, 255), mode=st.sampled_from(["block", "drop"]),
                    rate=st.sampled_from([5_000, 20_000, 50_000]), capacity=st.sampled_from([1024, 4096]),
                    retransmit=st.sampled_from(["200ms", "1s"]), ttl=st.sampled_from([None, "300ms"]))
        def choose(self, nonminimal, mode, rate, capacity, retransmit, ttl):
            # Hypothesis first tries "minimal" examples, zero-filled after a
            # short prefix. A zero here marks them; rejecting them makes it
            # give up on minimal examples early.
            reject_if(nonminimal == 0)
            # A TTL only in drop mode: block mode promises every payment a verdict.
            self.params = (mode, rate, capacity, retransmit, ttl if mode == "drop" else None)

        def _live(self) -> bool:
            """True when this step should act; the first step starts the world (so empty schedules cost nothing)."""
            if self.world is not None:
                return True
            if time.monotonic() > deadline:
                return False  # over budget: this schedule does nothing
            tally["schedules"] += 1
            self.harness = new_harness()
            self.world = ChaosWorld(self.harness, tally)
            self.world.start(*self.params)
            return False

        @rule()
        def kill_bridge(self):
            if self._live():
                if self.world.bridge_state() == "none":
                    self.world.start_bridge()
                else:
                    self.world.kill_bridge()

        @rule()
        def restart_bridge(self):
            if self._live():
                if self.world.bridge_state() != "none":
                    self.world.kill_bridge()
                self.world.start_bridge()

        @rule()
        def stall_or_resume_bridge(self):
            if self._live():
                state = self.world.bridge_state()
                if state == "running":
                    self.world.stall_bridge()
                elif state == "stopped":
                    self.world.resume_bridge()
                else:
                    self.world.start_bridge()

        @rule(site=st.sampled_from(FIU_SITES), probability=st.sampled_from([0.05, 0.3, 1.0]))
        def fiu_burst(self, site, probability):
            if self._live():
                self.world.fiu_burst(site, probability)

        @rule(rate=st.sampled_from([5_000, 20_000, 50_000]))
        def change_load(self, rate):
            if self._live():
                self.world.change_load(rate)

        @invariant()
        def accounting(self):
            if self.world is not None:
                self.world.check()

        def teardown(self):
            if self.harness is None:
                return  # a schedule of no steps, or over budget: nothing ran
            try:
                if self.harness.core is not None and self.harness.core.alive():
                    self.world.finish()
            finally:
                self.harness.teardown()

    return ChaosMachine


def reject_if(condition):
    from hypothesis import reject

    if condition:
        reject()


def run_schedules(new_harness, tally, steps, examples, deadline=float("inf")):
    run_state_machine_as_test(machine_factory(new_harness, tally, deadline), settings=settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, database=DATABASE, print_blob=True,
        # Shrinking re-runs real processes for minutes; the steps, blob and seed already replay a failure.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=list(HealthCheck)))


@pytest.fixture
def new_harness(core_harness):
    from conftest import session_root

    made = []

    def make():
        h = Harness(session_root().new_test_dir(), core_harness.core_bin, core_harness.core_bin_reason)
        made.append(h)
        return h

    yield make
    for h in made:
        h.teardown()


@pytest.mark.real
def test_chaos_schedule_short(new_harness):
    tally = Counter()
    # Hypothesis' first valid example is an empty schedule (free); the next is a real one.
    run_schedules(new_harness, tally, steps=8, examples=2)
    # Hypothesis sizes its early schedules itself; at least one ran and was checked throughout.
    assert tally["schedules"] >= 1 and tally["invariant checks"] >= tally["schedules"], tally
    assert tally["summaries checked"] >= tally["schedules"], tally
    assert tally["rejection checks"] == tally["summaries checked"], tally


# `tox -e chaos -- --budget B` spends about 60% of B on Hypothesis schedules
# (test_chaos_budget) and the rest, at least REAL_CHAOS_MIN_S, on the timeline
# run of scripts/real_chaos.py (test_chaos_timeline), which renders the PNG.
REAL_CHAOS_MIN_S = 40.0


def real_chaos_share(budget_s: float) -> float:
    return max(REAL_CHAOS_MIN_S, 0.4 * budget_s)


def hypothesis_share(budget_s: float) -> float:
    return max(budget_s - real_chaos_share(budget_s), 30.0)


def parse_budget(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)", text.strip())
    if not m:
        raise pytest.UsageError(f"--budget {text!r}: expected a duration like 90s, 2m or 1h")
    seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    if seconds <= 0:
        raise pytest.UsageError(f"--budget {text!r}: must be positive")
    return seconds


@pytest.mark.chaos
def test_chaos_budget(new_harness, request):
    budget_text = request.config.getoption("--budget") or "2m"
    budget_s = hypothesis_share(parse_budget(budget_text))
    tally = Counter()
    started = time.monotonic()
    # A schedule takes ~10-40 s: none starts in the last 30 s of its share of
    # the budget; after that Hypothesis runs out its examples as empty schedules.
    run_schedules(new_harness, tally, steps=12, examples=400, deadline=started + max(budget_s - 30, 1))
    elapsed = time.monotonic() - started
    faults = {k: v for k, v in sorted(tally.items()) if k not in ("schedules", "invariant checks",
                                                                   "summaries checked", "transactions accounted",
                                                                   "rejection checks")}
    print(f"\nchaos summary ({elapsed:.0f}s of a {budget_text} budget): {tally['schedules']} schedules, "
          f"{sum(faults.values())} faults injected, {tally['invariant checks']} invariant checks, "
          f"{tally['summaries checked']} summaries and ledgers checked exactly (no rejected verdict), "
          f"{tally['transactions accounted']} transactions accounted for")
    for name, n in faults.items():
        print(f"  {name:32s} {n}")
    print("all accounting held")
    assert tally["summaries checked"] >= tally["schedules"]


@pytest.mark.chaos
def test_chaos_timeline(request):
    """The rest of the budget: scripts/real_chaos.py kills, stalls and bursts failpoints on a timeline.

    It checks the accounting after each epoch and renders chaos-out/tox/timeline.png
    (verdict rate, ring depth, in-flight, fault markers). A failure prints the
    seed; `scripts/real_chaos.py --seed N --budget ...` replays the schedule.
    """
    core_bin, why = find_core_binary()
    if core_bin is None:
        pytest.skip(why)
    budget_text = request.config.getoption("--budget") or "2m"
    share = real_chaos_share(parse_budget(budget_text))
    out = REPO / "chaos-out" / "tox"
    seed = request.config.getoption("--chaos-seed")
    cmd = [sys.executable, str(REPO / "scripts" / "real_chaos.py"), "--budget", f"{share:.0f}s",
           "--out", str(out), "--core-bin", str(core_bin)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    print("\n" + " ".join(cmd), flush=True)
    # real_chaos.py bounds itself by its budget plus the epoch tails; the
    # timeout only catches a hang.
    rc = subprocess.run(cmd, timeout=share + 180).returncode
    assert rc == 0, f"real-process chaos failed (exit {rc}); its report is in {out}, replay: {' '.join(cmd)}"
    assert (out / "timeline.png").stat().st_size > 0
    assert (out / "summary.json").is_file()
    print(f"timeline: {out / 'timeline.png'}")
