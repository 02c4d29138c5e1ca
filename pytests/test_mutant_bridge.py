"""Proves the rejection check closes a hole the exactly-once checks leave: a bridge that lies about resends.

The bridge's built-in mutant `wrong_seq_on_resend` (AEGIS_BRIDGE_MUTANT,
docs/FAULTS.md) answers a record the core resent (one whose seq is at or
below a seq that bridge already received) the first time with seq + 1 and
the record's own txn_id. The core rejects such verdicts (`forged` where
seq + 1 is held, `unknown_seq` past what it sent) and resends; the mutant
answers the next resend honestly.

The scenario is test_real_faults.py's rolling restart: a second bridge
started beside the first, the first then SIGKILLed, so the core resends
what the killed one held to the survivor, after newer frames the survivor
already answered. Everything is verdicted exactly once and nothing is lost:
every check that scenario had before passes. Only the check that the core
rejected nothing (aegis_fixtures.observe.assert_no_rejections, which every
Harness.summary() read applies) fails, naming the reasons, their counts and
the command that replays the test.
"""

import pytest

from aegis_fixtures.observe import rejections
from test_real_faults import rolling_restart

pytestmark = pytest.mark.real


def test_a_bridge_lying_on_resends_passes_exactly_once_and_fails_the_rejection_check(core_harness):
    h = core_harness
    h.bridge_mutant = "wrong_seq_on_resend"
    # The old checks: exit 0, nothing lost, every id verdicted exactly once, the ledger exact.
    # 120k at 20k/s: 6 s of offers, so a bridge slow to start on a loaded machine still gets its share.
    s = rolling_restart(h, count=120_000, check_rejections=False)
    assert all("MUTANT wrong_seq_on_resend" in b.log_text() for b in h.bridges), "the bridges ran as the mutant"
    counts = rejections(s)
    assert counts["forged"] + counts["unknown_seq"] > 0, f"the lies were rejected: {counts}"
    assert sum(counts.values()) == counts["forged"] + counts["unknown_seq"], \
        f"a wrong seq is all the mutant gets wrong: {counts}"
    # The new check: the same summary, read as every other test reads it.
    with pytest.raises(AssertionError) as caught:
        h.summary()
    message = str(caught.value)
    print(f"\nthe rejection check caught the mutant:\n{message}")
    assert "the core rejected verdicts:" in message and "an honest bridge causes none" in message
    for reason in ("forged", "unknown_seq"):
        if counts[reason]:
            assert f"{reason} {counts[reason]} (expected 0)" in message
    assert "replay: " in message and "test_mutant_bridge.py::" in message
