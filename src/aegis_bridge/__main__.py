"""Command line: `aegis-bridge --offload EP --verdicts EP [--model SPEC] [options]` (or `python3 -m aegis_bridge`).

Bad arguments produce one line on stderr and exit code 2; SIGTERM and SIGINT
stop the loop and exit 0 after closing the sockets with linger 0.
`aegis-bridge --model SPEC --check-model` loads and checks the model, scores
synthetic records with it, prints one line and exits (0 if all is well).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import NoReturn

import numpy as np
import zmq

from .bridge import Bridge, BridgeConfig, log, write_stats_json
from .durations import format_duration_ns, parse_duration_ns, require_positive
from .loading import LoadedModel, load_scorer
from .protocol import DECISIONS
from .scoring import ModelError, check_output
from .synthetic import make_txns
from .sched import SLICE_MAX_S, SLICE_MIN_S, apply_scheduling, describe_scheduling

def parse_duration(text: str) -> float:
    """--heartbeat: '200ms' -> 0.2 seconds. The one duration grammar (aegis_bridge.durations); 0 is refused."""
    try:
        return require_positive(text, parse_duration_ns(text)) / 1e9
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _slice(text: str) -> float:
    """--sched-slice: 0 (off: the kernel's default) or a duration in 100us..100ms."""
    try:
        ns = parse_duration_ns(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if ns == 0:
        return 0.0
    if not round(SLICE_MIN_S * 1e9) <= ns <= round(SLICE_MAX_S * 1e9):
        raise argparse.ArgumentTypeError(f"'{text}' must be 0 or 100us..100ms")
    return ns / 1e9


def _endpoint(text: str) -> str:
    if not re.match(r"^(ipc|tcp)://.+", text):
        raise argparse.ArgumentTypeError(f"'{text}' is not a ZeroMQ endpoint like ipc:///run/aegis/offload.sock")
    return text


def _decision(text: str) -> int:
    """--unscored-decision: approve, review or decline."""
    value = DECISIONS.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"'{text}' is not one of {', '.join(DECISIONS)}")
    return value


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}..{hi}")
        return value

    return parse


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, so a supervisor's log shows the whole reason.
        self.exit(2, f"aegis-bridge: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _OneLineParser(prog="aegis-bridge", description="Aegis ML bridge: scores offloaded transactions.")
    # Required unless --check-model (checked in main, with argparse's own words).
    ap.add_argument("--offload", type=_endpoint, help="core's offload endpoint (PULL connects); required")
    ap.add_argument("--verdicts", type=_endpoint, help="core's verdict endpoint (PUSH connects); required")
    ap.add_argument("--metrics-port", type=_int_range(0, 65535), help="serve Prometheus metrics on 127.0.0.1:PORT")
    ap.add_argument("--batch-max", type=_int_range(1, 1 << 16), default=64, help="frames per wake-up at most")
    ap.add_argument("--heartbeat", type=parse_duration, default=0.2, help="HELLO interval, e.g. 200ms")
    ap.add_argument("--model", metavar="SPEC",
                    help="the model: a file (.json Aegis weights or XGBoost, .ubj XGBoost, .pkl/.pickle/.joblib "
                         "scikit-learn with FILE.meta.json), MODULE:FACTORY (a Python factory on PYTHONPATH), or "
                         "ep:NAME (an entry point in group aegis_bridge.scorers); default: the shipped weights")
    ap.add_argument("--check-model", action="store_true",
                    help="load and check the model, score synthetic records, print one line and exit "
                         "(no --offload/--verdicts needed)")
    ap.add_argument("--stats-json", help="write the final counters here on a clean exit")
    ap.add_argument("--sched-slice", type=_slice, default=100e-6,
                    help="scheduler slice (EEVDF, Linux 6.6+) the bridge's threads ask for; shorter wakes sooner; "
                         "0 = kernel default (default 100us)")
    ap.add_argument("--realtime-priority", type=_int_range(0, 99), default=0,
                    help="run SCHED_FIFO at this priority (needs CAP_SYS_NICE or ulimit -r); 0 = off")
    ap.add_argument("--unscored-decision", type=_decision, default=DECISIONS["review"],
                    metavar="{" + ",".join(DECISIONS) + "}",
                    help="decision of a record the model fails on (answered unscored); default review")
    ap.add_argument("--hook-stop-before-send", type=_int_range(0, 1 << 62), default=0, metavar="N",
                    help="TEST HOOK: SIGSTOP self after receiving N TXN frames, before sending their verdicts")
    return ap


def _check_writable(path: str) -> str | None:
    """Why `path` cannot be written (None if it can): tried now, not found out at exit."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w"):
            pass
        os.unlink(tmp)
    except OSError as e:
        return e.strerror or str(e)
    return None


CHECK_RECORDS = 2048


def check_model(loaded: LoadedModel) -> int:
    """--check-model: scores CHECK_RECORDS synthetic records; one line on stdout (0) or stderr (1)."""
    txns = make_txns(np.random.default_rng(1), CHECK_RECORDS)
    info = loaded.info
    try:
        loaded.scorer.score(txns[:16])  # first calls (imports, caches) are not timed
        t0 = time.perf_counter()
        scores, decisions = loaded.scorer.score(txns)
        elapsed = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 - the model's code; the serving bridge would answer these unscored
        print(f"aegis-bridge: error: model {loaded.source}: score() raised on synthetic records: "
              f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    problem = check_output(scores, decisions, len(txns))
    if problem:
        print(f"aegis-bridge: error: model {loaded.source}: {problem} (the bridge would answer those unscored)",
              file=sys.stderr)
        return 1
    counts = np.bincount(np.asarray(decisions, dtype=np.int64), minlength=3)
    features = f"{len(info.features)} features" if info.features is not None else "its own features"
    thresholds = (f"thresholds review {info.review:g} decline {info.decline:g}" if info.review is not None
                  and info.decline is not None else "its own decisions")
    print(f"aegis-bridge: model {loaded.describe()} from {loaded.source}: {features}, {thresholds}; scored "
          f"{len(txns)} synthetic records in {elapsed * 1e3:.2f} ms ({len(txns) / max(elapsed, 1e-9):,.0f} "
          f"records/s): {counts[0]} approve, {counts[1]} review, {counts[2]} decline")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    missing = [flag for flag, value in (("--offload", args.offload), ("--verdicts", args.verdicts)) if value is None]
    if missing and not args.check_model:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    if args.stats_json and (why := _check_writable(args.stats_json)):
        print(f"aegis-bridge: error: cannot write --stats-json {args.stats_json}: {why}", file=sys.stderr)
        return 2
    try:
        loaded = load_scorer(args.model)
    except ModelError as e:
        print(f"aegis-bridge: error: {e}", file=sys.stderr)
        return 2
    if args.check_model:
        return check_model(loaded)
    # Before the ZeroMQ context exists: its I/O thread inherits the policy.
    err = apply_scheduling(args.sched_slice, args.realtime_priority)
    if err and args.realtime_priority:
        print(f"aegis-bridge: error: --realtime-priority {args.realtime_priority}: {err}", file=sys.stderr)
        return 2
    if err:
        log(f"warning: --sched-slice: {err}; running with the kernel's default")
    config = BridgeConfig(offload=args.offload, verdicts=args.verdicts, batch_max=args.batch_max,
                          heartbeat_s=args.heartbeat, hook_stop_before_send=args.hook_stop_before_send,
                          unscored_decision=args.unscored_decision)
    try:
        bridge = Bridge(config, loaded.scorer, runtime=loaded.runtime)
    except ValueError as e:  # an unknown AEGIS_BRIDGE_MUTANT
        print(f"aegis-bridge: error: {e}", file=sys.stderr)
        return 2
    try:
        bridge.connect()
    except zmq.ZMQError as e:
        hint = " (an ipc:// path may have at most 107 bytes)" if e.errno == errno.ENAMETOOLONG else ""
        print(f"aegis-bridge: error: cannot connect ({e}){hint}", file=sys.stderr)
        bridge.close()
        return 2

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        bridge.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = None
    if args.metrics_port is not None:
        try:
            from .metrics import serve_metrics

            server = serve_metrics(bridge, args.metrics_port)
        except OSError as e:
            print(f"aegis-bridge: error: cannot serve metrics on 127.0.0.1:{args.metrics_port} ({e})", file=sys.stderr)
            bridge.close()
            return 2
    log(f"incarnation {bridge.incarnation:#018x} pid {os.getpid()} model {loaded.describe()} "
        f"offload {args.offload} verdicts {args.verdicts} batch-max {args.batch_max} "
        f"heartbeat {format_duration_ns(round(args.heartbeat * 1e9))} unscored-decision "
        f"{next(k for k, v in DECISIONS.items() if v == args.unscored_decision)} "
        f"scheduling {describe_scheduling()}"
        + (f" metrics http://127.0.0.1:{server.port}/metrics" if server else ""))
    try:
        stats = bridge.run()
    finally:
        bridge.close()
        if server:
            server.shutdown()
    log(f"stopped: {json.dumps(stats.as_dict(), sort_keys=True)}")
    if args.stats_json:
        try:
            write_stats_json(args.stats_json, bridge)
        except OSError as e:  # writable at start, not now: the counters are in the line above
            print(f"aegis-bridge: error: cannot write --stats-json {args.stats_json}: {e.strerror or e}",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
