"""The bridge parses durations by the one shared grammar, and validates with real checks.

What it proves: every string in fixtures/durations/grammar.json's accept
list parses to its nanoseconds and every string of its reject list is
refused, by the bridge's parser (aegis_bridge.durations) and by the flags
built on it: --heartbeat refuses 0 (it is not "off"), --sched-slice takes 0
as "the kernel's default", and the slow test model's cost (parse_cost, the
scripts' --model-cost) refuses 0. Durations the bridge prints (its start-up
line, replay commands) are in the grammar. And the bridge's validation of
configuration and model metadata raises clear errors under `python -O`,
which strips asserts.

How: the grammar file drives parametrized cases; the -O case runs a child
interpreter with -O and checks the errors it reports.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aegis_bridge.__main__ import _slice, build_parser, parse_duration
from aegis_bridge.durations import MAX_NS, format_duration_ns, parse_duration_ns
from aegis_fixtures.slow_model import parse_cost

GRAMMAR = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "durations" / "grammar.json").read_text())


@pytest.mark.parametrize("text, ns", GRAMMAR["accept"])
def test_the_grammar_accepts(text, ns):
    assert parse_duration_ns(text) == ns
    assert format_duration_ns(ns) == text or parse_duration_ns(format_duration_ns(ns)) == ns


@pytest.mark.parametrize("text", GRAMMAR["reject"])
def test_the_grammar_rejects(text):
    with pytest.raises(ValueError, match="not a duration|too long"):
        parse_duration_ns(text)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)
    with pytest.raises(argparse.ArgumentTypeError):
        _slice(text)


def test_a_fraction_or_a_missing_unit_is_named_in_the_message():
    with pytest.raises(ValueError, match="fractions are not allowed.*1500ms"):
        parse_duration_ns("1.5s")
    with pytest.raises(ValueError, match="a unit is required"):
        parse_duration_ns("200")


@pytest.mark.parametrize("text", ["0", "0ns", "0s"])
def test_zero_is_off_where_off_exists_and_refused_elsewhere(text):
    assert _slice(text) == 0.0, "--sched-slice 0: the kernel's default"
    with pytest.raises(argparse.ArgumentTypeError, match="must be positive"):
        parse_duration(text)  # --heartbeat
    with pytest.raises(argparse.ArgumentTypeError, match="must be positive"):
        parse_cost(text)  # the slow model's cost, --model-cost


def test_the_flags_use_the_grammar():
    args = build_parser().parse_args(["--offload", "ipc:///a", "--verdicts", "ipc:///b", "--heartbeat", "1500us",
                                      "--sched-slice", "2ms"])
    assert args.heartbeat == 0.0015 and args.sched_slice == 0.002
    assert parse_cost("100us") == 100e-6


def test_printed_durations_are_in_the_grammar():
    for ns in (0, 1, 999, 1000, 1_500_000, 200_000_000, 1_000_000_000, 90_000_000_000, 7_200_000_000_000, MAX_NS):
        assert parse_duration_ns(format_duration_ns(ns)) == ns
    assert format_duration_ns(1_500_000_000) == "1500ms" and format_duration_ns(120_000_000_000) == "2m"


_UNDER_O = """
import sys
from aegis_bridge.bridge import BridgeConfig
from aegis_bridge.core import CoreConfig
from aegis_bridge.model import LogisticModel
from aegis_bridge.scoring import ModelError, decide
from aegis_bridge.features import FEATURE_NAMES
import numpy as np
assert False, "asserts must be off under -O"
cases = [
    ("batch_max", lambda: BridgeConfig(offload="ipc:///a", verdicts="ipc:///b", batch_max=0), ValueError),
    ("heartbeat", lambda: BridgeConfig(offload="ipc:///a", verdicts="ipc:///b", heartbeat_s=0), ValueError),
    ("fail-safe", lambda: CoreConfig(unscored_decision=7), ValueError),
    ("thresholds", lambda: LogisticModel([0.0] * len(FEATURE_NAMES), 0.0, 0.9, 0.5), ModelError),
    ("weight", lambda: LogisticModel([0.0], 0.0, 0.1, 0.5), ModelError),
    ("thresholds", lambda: decide(np.zeros(1, np.float32), 0.9, 0.5), ValueError),
]
for word, make, kind in cases:
    try:
        make()
    except kind as e:
        if word not in str(e):
            print(f"{word}: unclear message {e}")
            sys.exit(1)
        continue
    print(f"{word}: accepted under -O")
    sys.exit(1)
print("ok")
"""


def test_validation_holds_under_python_O():
    r = subprocess.run([sys.executable, "-O", "-c", _UNDER_O], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
