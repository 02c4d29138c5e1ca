"""The one duration grammar (fixtures/durations/grammar.json), as the bridge parses and prints it.

Usage:
    parse_duration_ns("200ms")   # 200_000_000
    parse_duration_ns("0")       # 0: the one string without a unit
    parse_duration_ns("1.5s")    # ValueError: fractions are not durations; write 1500ms
    format_duration_ns(1_500_000_000)   # "1500ms": the largest unit that divides it exactly

A duration is a non-negative decimal integer (ASCII digits) and a required
unit, `ns`, `us`, `ms`, `s`, `m` or `h`, with nothing around them; a bare `0`
is the one string without a unit. It must fit a signed 64-bit count of
nanoseconds. aegis-core and aegis-sim parse the same grammar, and each
side's tests check every string of the shared file. Whether 0 is allowed
(it means "off") is the option's choice: `require_positive` says so.
"""

from __future__ import annotations

import re

UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
           "h": 3_600_000_000_000}
MAX_NS = (1 << 63) - 1

# [0-9], not \d: \d also matches other scripts' digits, which int() would accept.
_DURATION = re.compile(r"([0-9]+)(ns|us|ms|s|m|h)")


def parse_duration_ns(text: str) -> int:
    """The duration `text` in nanoseconds; ValueError with the reason if it is not one."""
    if text == "0":
        return 0
    m = _DURATION.fullmatch(text)
    if m is None:
        if re.fullmatch(r"[0-9]*\.[0-9]+(ns|us|ms|s|m|h)?", text):
            raise ValueError(f"'{text}' is not a duration: fractions are not allowed, use a smaller unit "
                             f"(1500ms, not 1.5s)")
        if re.fullmatch(r"[0-9]+", text):
            raise ValueError(f"'{text}' is not a duration: a unit is required (ns, us, ms, s, m, h), e.g. {text}ms")
        raise ValueError(f"'{text}' is not a duration like 200ms, 500us or 2s (an integer and a unit: ns, us, "
                         f"ms, s, m, h)")
    value = int(m.group(1)) * UNIT_NS[m.group(2)]
    if value > MAX_NS:
        raise ValueError(f"'{text}' is too long a duration (at most {MAX_NS}ns, about 292 years)")
    assert 0 <= value <= MAX_NS
    return value


def require_positive(text: str, ns: int) -> int:
    """`ns`, unless it is 0: for options where 0 means nothing sensible (not "off")."""
    if ns <= 0:
        raise ValueError(f"'{text}' must be positive")
    return ns


def format_duration_ns(ns: int) -> str:
    """`ns` in the grammar, with the largest unit that divides it exactly (0 is "0")."""
    if not 0 <= ns <= MAX_NS:
        raise ValueError(f"{ns} ns is not a duration (0..{MAX_NS})")
    if ns == 0:
        return "0"
    for unit, size in sorted(UNIT_NS.items(), key=lambda kv: -kv[1]):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    raise AssertionError("every integer is a whole number of nanoseconds")
