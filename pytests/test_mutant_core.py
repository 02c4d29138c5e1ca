"""Proves the kill/restart test can fail: against an aegis-core with the rewind removed, it must.

Opt-in, because it needs a second core build with a planted bug
(faults/aegis/mutant.hpp). Build one and point AEGIS_MUTANT_CORE_BIN at it:

    cmake -S . -B build/mutant-no-rewind -G Ninja -DCMAKE_BUILD_TYPE=Release \\
          -DAEGIS_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS='-O2 -DAEGIS_MUTANT_NAME=\\"no_rewind\\"'
    cmake --build build/mutant-no-rewind --target aegis-core
    AEGIS_MUTANT_CORE_BIN=$PWD/build/mutant-no-rewind/src/aegis-core tox -e py -- -k mutant

With the rewind gone, frames a killed bridge held are only resent by the
retransmit timeout, which the scenario sets to 60 s: the restarted bridge
never sees them, progress stops, and the scenario must fail (a bounded wait
times out, or the core exits non-zero with lost > 0). Without the variable
the test is skipped.
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
        pytest.skip("set AEGIS_MUTANT_CORE_BIN to an aegis-core built with AEGIS_MUTANT_NAME=\"no_rewind\"")
    from conftest import session_root

    h = Harness(session_root().new_test_dir(), path)
    yield h
    h.teardown()


def test_kill_restart_scenario_fails_against_the_no_rewind_mutant(mutant_harness):
    with pytest.raises(AssertionError):
        block_mode_kill_and_restart(mutant_harness, 60_000)
