"""Proves the kill/restart test can fail: against an aegis-core with the rewind removed, it must.

It needs a second core build with a planted bug (faults/aegis/mutant.hpp):
the CMake target `aegis-core-mutant-no-rewind`, built with the tests. `make test`
points AEGIS_MUTANT_CORE_BIN at it (and sets AEGIS_REQUIRE_CORE=1, so a missing
binary fails instead of skipping). By hand:

    cmake --build --preset release --target aegis-core-mutant-no-rewind
    AEGIS_MUTANT_CORE_BIN=$PWD/build/release/src/aegis-core-mutant-no-rewind tox -e py -- -k mutant

With the rewind gone, frames a killed bridge held are only resent by the
retransmit timeout, which the scenario sets to 60 s: the restarted bridge
never sees them, progress stops, and the scenario must fail (a bounded wait
(15 s here) times out, or the core's 10 s drain ends with lost > 0 and a non-zero exit).
Without the variable the test is skipped, unless AEGIS_REQUIRE_CORE=1.
"""

import os

import pytest

from aegis_fixtures.harness import Harness
from test_kill_restart import block_mode_kill_and_restart

pytestmark = pytest.mark.real


@pytest.fixture
def mutant_harness():
    path = os.environ.get("AEGIS_MUTANT_CORE_BIN")
    if not path or not os.access(path, os.X_OK):
        if os.environ.get("AEGIS_REQUIRE_CORE") == "1":
            pytest.fail(f"AEGIS_REQUIRE_CORE=1 but AEGIS_MUTANT_CORE_BIN={path!r} is not an executable "
                        "(build the aegis-core-mutant-no-rewind target)")
        pytest.skip("set AEGIS_MUTANT_CORE_BIN to an aegis-core built with AEGIS_MUTANT_NAME=\"no_rewind\"")
    from conftest import session_root

    h = Harness(session_root().new_test_dir(), path)
    yield h
    h.teardown()


def test_kill_restart_scenario_fails_against_the_no_rewind_mutant(mutant_harness):
    with pytest.raises(AssertionError):
        block_mode_kill_and_restart(mutant_harness, 60_000, drain_timeout_s=10, wait_s=15)
