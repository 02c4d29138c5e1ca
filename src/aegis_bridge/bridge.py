"""The bridge's I/O shell: sockets, poll, the clock, signals; the protocol itself is BridgeCore's.

Usage:
    bridge = Bridge(BridgeConfig(offload="ipc:///run/aegis/offload.sock",
                                 verdicts="ipc:///run/aegis/verdicts.sock"), load_model())
    bridge.run()            # until bridge.request_stop() (thread- and signal-safe)

Every protocol rule (decoding, dedupe, epochs, batches, chunks, scoring and
its fail-safe, VERDICT and HELLO frames, counters) lives in
`aegis_bridge.core.BridgeCore`, which performs no I/O and reads no clock.
This module owns what the core must not: the ZeroMQ sockets and their
monitors, the poll, the monotonic clock it passes to the core as `now_ns`,
the timing of the model (fed back to the core as its cost per record), the
stop pipe, and the test hook. It feeds the core what arrives and sends what
the core returns. It also reads, once, AEGIS_BRIDGE_MUTANT: a built-in
dishonest variant for tests (docs/FAULTS.md, "Bridge mutants"), unset in
production, handed to the core as CoreConfig.mutant.

Why the shell is shaped like this:
- The core owns reliability (PROTOCOL.md): the bridge keeps no state a crash
  could lose. It may die anywhere; the core resends what has no verdict.
- It never waits to fill a batch. Each wake-up takes what is already queued
  (up to `batch_max` frames) and hands it to the core in one call.
- A HELLO tells the core "send to me", so it goes out only while the
  offload channel's connection is up (a monitor on the PULL socket reports
  it, and the shell tells BridgeCore), and at once when it comes up. A HELLO
  that beat the offload connection would make a core resend into a socket
  with no peer and back off: at a start with both sockets reconnecting that
  cost milliseconds.
- The poll timeout is the time to the core's next deadline (the next
  heartbeat), so an idle bridge sleeps and a busy one never spins on an
  empty socket (two cores: libzmq's I/O threads need the CPU).
- It sleeps in one poll(2) on plain file descriptors (the sockets' ZMQ_FD
  and the self-pipe), not in zmq_poll, and asks a socket's ZMQ_EVENTS only
  when its descriptor fired, as libzmq documents for ZMQ_FD. On this VM a
  system call costs ~2.5 us, and every ZMQ_EVENTS is two or three of them
  (libzmq checks getpid() and polls its mailbox): zmq_poll over the PULL
  and the monitor asked four times per wake-up, and the Python thread spent
  about half its CPU in system calls.
- Stop requests arrive through a self-pipe in the same poll, so SIGTERM wakes
  the loop at once instead of after the next timeout.
- Counters are plain integers read by a Prometheus collector at scrape time:
  the hot path pays nothing for metrics. Timings (queued, scoring, records
  per model call) are observed once per model call, never per record, into
  histograms that cost a bisect each (aegis_bridge.histogram).
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from . import protocol as p
from .core import DEDUPE_SLOTS, MUTANTS, BridgeCore, BridgeStats, CoreConfig
from .histogram import RECORDS_BUCKETS, SECONDS_BUCKETS, Histogram
from .scoring import Decisions, ModelInfo, Scorer, Scores, TxnRecords

__all__ = ["DEDUPE_SLOTS", "Bridge", "BridgeConfig", "BridgeStats", "BridgeTimings", "log", "new_incarnation",
           "write_stats_json"]

# Plain ints: pyzmq's enum members make `&` a slow Python-level call.
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)

# Warm-up scores a full synthetic batch only if a few records predict it costs less than this.
_WARM_UP_BUDGET_S = 0.05

# Selects a built-in mutant (aegis_bridge.core.MUTANTS) for tests; unset or empty: the honest bridge.
MUTANT_ENV = "AEGIS_BRIDGE_MUTANT"


@dataclass
class BridgeConfig:
    """Everything the loop needs; the CLI builds one from its flags."""

    offload: str
    verdicts: str
    batch_max: int = 64  # frames taken per wake-up at most
    heartbeat_s: float = 0.2
    recv_hwm: int = 1000
    send_hwm: int = 1000
    reconnect_ivl_ms: int = 50
    # Test hook, off at 0: once this many TXN frames have been received, the
    # bridge logs a marker and SIGSTOPs itself after receiving that batch and
    # before sending any of its verdicts, so a test can kill it exactly there.
    hook_stop_before_send: int = 0
    # The decision of an `unscored` verdict (the model failed on the record).
    unscored_decision: int = p.DECISION_REVIEW
    # Model time per chunk: verdicts go out (and heartbeats between) at least this often.
    score_chunk_s: float = 0.02
    # A built-in mutant for tests (aegis_bridge.core.MUTANTS); "": honest, or what $AEGIS_BRIDGE_MUTANT says.
    mutant: str = ""

    def __post_init__(self) -> None:
        # Real checks, not asserts: they must hold under `python -O` too.
        if self.batch_max < 1:
            raise ValueError(f"batch_max must be at least 1, got {self.batch_max}")
        if not self.heartbeat_s > 0:
            raise ValueError(f"the heartbeat interval must be positive, got {self.heartbeat_s} s")
        if self.hook_stop_before_send < 0:
            raise ValueError(f"hook_stop_before_send is a count of frames, got {self.hook_stop_before_send}")
        if self.unscored_decision not in p.DECISIONS.values():
            raise ValueError(f"the fail-safe is approve, review or decline (0..2), got {self.unscored_decision}")
        if not self.score_chunk_s > 0:
            raise ValueError(f"a chunk of model time is positive, got {self.score_chunk_s} s")
        if self.mutant and self.mutant not in MUTANTS:
            raise ValueError(f"unknown bridge mutant {self.mutant!r}; the mutants are {', '.join(MUTANTS)}")

    def core_config(self, check_output: bool = True, mutant: str = "") -> CoreConfig:
        """The protocol's part of this configuration, in integer nanoseconds; `mutant` overrides self.mutant."""
        return CoreConfig(heartbeat_ns=max(1, round(self.heartbeat_s * 1e9)),
                          unscored_decision=self.unscored_decision,
                          score_chunk_ns=max(1, round(self.score_chunk_s * 1e9)),
                          check_output=check_output, mutant=mutant or self.mutant)


@dataclass
class BridgeTimings:
    """Per model call (a chunk of a wake-up's records), never per record; written by the loop thread only.

    queued_s: from taking the wake-up's first frame off the offload socket to
    the model call's start (the chunks before it in the same wake-up
    included); scoring_s: the model call, with any bisection after it
    raised; records: records per model call.
    """

    queued_s: Histogram = field(default_factory=lambda: Histogram(SECONDS_BUCKETS))
    scoring_s: Histogram = field(default_factory=lambda: Histogram(SECONDS_BUCKETS))
    records: Histogram = field(default_factory=lambda: Histogram(RECORDS_BUCKETS))


def new_incarnation() -> int:
    """A random non-zero u64: 0 means "no bridge" on the wire."""
    while True:
        value = secrets.randbits(64)
        if value != 0:
            return value


def log(msg: str) -> None:
    print(f"aegis-bridge: {msg}", file=sys.stderr, flush=True)


class _TimedScorer:
    """Wraps the model for BridgeCore and times its calls: the core never reads a clock, the shell does.

    Per chunk (reset before each core.step): when the first call started,
    how long it took, and when the last call ended.
    """

    def __init__(self, model: Scorer):
        self.model = model
        self.calls = 0
        self.first_start_s = 0.0
        self.first_ns = 0
        self.last_end_s = 0.0

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    def reset(self) -> None:
        self.calls = 0

    def score(self, txns: TxnRecords, /) -> tuple[Scores, Decisions]:
        started = time.perf_counter()
        try:
            return self.model.score(txns)
        finally:
            ended = time.perf_counter()
            if self.calls == 0:
                self.first_start_s = started
                self.first_ns = max(0, round((ended - started) * 1e9))
            self.last_end_s = ended
            self.calls += 1


# Socket types that cannot talk to each other (the bridge's PULL connected to
# the core's PULL: --offload and --verdicts swapped) fail the ZeroMQ handshake,
# and libzmq 4.3 reports that only as CONNECTED then DISCONNECTED, after which
# it never reconnects that socket (a protocol error ends the session). Without
# a word from the bridge, both sides would wait in silence.
_CONNECTION_EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


class _HandshakeWatch:
    """Follows one connecting socket's monitor events; says when a connection ends before its handshake."""

    def __init__(self, flag: str, endpoint: str, expected_peer: str):
        self.flag, self.endpoint, self.expected_peer = flag, endpoint, expected_peer
        self.pending = False  # connected, handshake not done yet
        self.failures = 0     # consecutive connections closed before their handshake

    def on_event(self, event: int) -> bool:
        """True for the first of a run of failed handshakes (a completed one ends the run)."""
        if event == zmq.EVENT_CONNECTED:
            self.pending = True
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self.pending, self.failures = False, 0
        elif event == zmq.EVENT_DISCONNECTED and self.pending:
            self.pending = False
            self.failures += 1
            return self.failures == 1
        return False

    def message(self) -> str:
        return (f"warning: {self.flag} {self.endpoint}: the peer closed the connection before the ZeroMQ handshake "
                f"completed. A core dying mid-handshake does that once; a peer that is not a {self.expected_peer} "
                f"socket does it for good, and ZeroMQ then stops reconnecting: check that --offload and --verdicts "
                f"are not swapped")


class Bridge:
    """One bridge process's loop. Not reusable after `run` returns."""

    def __init__(self, config: BridgeConfig, model: Scorer, context: zmq.Context[Any] | None = None,
                 incarnation: int | None = None, runtime: str = "python"):
        self.config = config
        self.model = model
        # What the metrics and logs call the model. Test models may lack `info`.
        self.model_info: ModelInfo = getattr(model, "info", None) or ModelInfo(
            name=str(getattr(model, "name", type(model).__name__)), version="unknown")
        self.runtime = runtime
        self._timed = _TimedScorer(model)
        # The shipped model's output is in range by construction; any other's is checked per call.
        check_output = not getattr(model, "output_in_contract", False)
        # Read here, once per process (one Bridge each); the core gets it as a config field.
        mutant = config.mutant or os.environ.get(MUTANT_ENV, "")
        if mutant and mutant not in MUTANTS:
            raise ValueError(f"{MUTANT_ENV}={mutant!r} names no bridge mutant; the mutants are {', '.join(MUTANTS)}")
        if mutant:
            log(f"warning: MUTANT {mutant} ({MUTANT_ENV}): a deliberately dishonest bridge, for tests only")
        self.core = BridgeCore(self._timed, incarnation if incarnation is not None else new_incarnation(),
                               config.core_config(check_output, mutant), log=log)
        self.incarnation = self.core.incarnation
        assert self.incarnation != 0, "an incarnation is never 0"
        # One counters object: the core writes the protocol's, the shell the sockets'.
        self.stats: BridgeStats = self.core.stats
        self.timings = BridgeTimings()
        self._received_at = 0.0  # perf_counter when the current wake-up's first frame was taken
        self._own_context = context is None
        self._ctx: zmq.Context[Any] = context if context is not None else zmq.Context.instance()
        self._stop = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pull = self._ctx.socket(zmq.PULL)
        self._push = self._ctx.socket(zmq.PUSH)
        for s in (self._pull, self._push):
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RECONNECT_IVL, config.reconnect_ivl_ms)
        # No ZMQ_MAXMSGSIZE here, on purpose: on a connecting socket libzmq
        # treats an oversized message as a protocol error and never
        # reconnects, so one bad frame would make the bridge deaf for good.
        # The core's decoder rejects and counts it as `oversized` instead.
        self._pull.setsockopt(zmq.RCVHWM, config.recv_hwm)
        self._push.setsockopt(zmq.SNDHWM, config.send_hwm)
        # Set up before connect(), so the first connection is reported too.
        self._offload_monitor = self._pull.get_monitor_socket(_CONNECTION_EVENTS)
        self._verdict_monitor = self._push.get_monitor_socket(_CONNECTION_EVENTS)
        self._offload_watch = _HandshakeWatch("--offload", config.offload, "PUSH (the core's offload)")
        self._verdict_watch = _HandshakeWatch("--verdicts", config.verdicts, "PULL (the core's verdicts)")
        # ZMQ_FD becomes readable when the socket's mailbox has commands
        # (such as "messages arrived"); ZMQ_EVENTS processes them and then
        # says whether a message is there.
        self._pull_fd = self._pull.get(zmq.FD)
        self._monitor_fd = self._offload_monitor.get(zmq.FD)
        self._verdict_monitor_fd = self._verdict_monitor.get(zmq.FD)
        self._poller = select.poll()
        for fd in (self._pull_fd, self._monitor_fd, self._verdict_monitor_fd, self._wake_r):
            self._poller.register(fd, select.POLLIN)
        self._send_poller = zmq.Poller()
        self._send_poller.register(self._push, zmq.POLLOUT)
        self._send_poller.register(self._wake_r, zmq.POLLIN)
        self._closed = False
        # The monotonic clock the core's deadlines are in: nanoseconds since this bridge was built.
        self._clock_origin_ns = time.monotonic_ns()

    @property
    def wake_fd(self) -> int:
        """Write end of the self-pipe; `signal.set_wakeup_fd` may use it."""
        return self._wake_w

    @property
    def _cost_per_record_s(self) -> float | None:
        """The core's estimate of the model's cost per record, in seconds (None until measured)."""
        cost = self.core.cost_per_record_ns
        return None if cost is None else cost / 1e9

    def _now_ns(self) -> int:
        return time.monotonic_ns() - self._clock_origin_ns

    def request_stop(self) -> None:
        """Asks the loop to return. Safe from any thread and from signal handlers."""
        self._stop = True
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (a wake-up is pending anyway) or already closed

    def connect(self) -> None:
        """Connects both sockets; raises zmq.ZMQError on a bad endpoint."""
        self._pull.connect(self.config.offload)
        self._push.connect(self.config.verdicts)

    def run(self) -> BridgeStats:
        """The loop. Returns the final counters when a stop is requested."""
        self._warm_up()
        core = self.core
        # Whether a TXN frame may be queued. While it is False the last
        # ZMQ_EVENTS said "none", so the PULL's ZMQ_FD will fire for the next.
        pending = self._pull_readable()
        self._offload_events()
        while not self._stop:
            if not pending:
                timeout_ms = max(0, (core.next_deadline_ns - self._now_ns() + 999_999) // 1_000_000)
                for fd, _ in self._poller.poll(timeout_ms):
                    if fd == self._pull_fd:
                        pending = self._pull_readable()
                    elif fd == self._monitor_fd:
                        self._offload_events()  # (re)connected: the core makes a HELLO due at once
                    elif fd == self._verdict_monitor_fd:
                        self._verdict_events()
                    else:
                        self._drain_wake_pipe()
                if self._stop:
                    break
            # Before serving: a HELLO due at a (re)connection announces this
            # incarnation ahead of its first verdicts, however long they take.
            self._heartbeat_if_due()
            if pending:
                pending = self._serve_batch()
        return self.stats

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pull.disable_monitor()
        self._push.disable_monitor()
        self._offload_monitor.close(linger=0)
        self._verdict_monitor.close(linger=0)
        self._pull.close(linger=0)
        self._push.close(linger=0)
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- internals -----------------------------------------------------

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _warm_up(self) -> None:
        """Runs one full-size synthetic batch through decode, score and encode, sending nothing.

        The first call of each numpy routine and the first use of the reused
        buffers cost milliseconds; paid here, before the HELLO announces the
        bridge, they do not land on the first transactions' latency. The
        model's cost per record measured here sizes the first chunks.
        """
        self.core.warm_up()
        batch = self.core.synthetic_batch()
        # A slow model (a real one costs up to a millisecond per record) would
        # spend seconds on the full batch: a few records, timed after a first
        # untimed call, say whether it is cheap enough to warm up in full.
        few = batch[:16]
        try:
            self.model.score(few)
            t0 = time.perf_counter()
            self.model.score(few)
            elapsed = time.perf_counter() - t0
            if elapsed / len(few) * len(batch) <= _WARM_UP_BUDGET_S:
                t0 = time.perf_counter()
                self.model.score(batch)
                elapsed = time.perf_counter() - t0
                self.core.note_cost(len(batch), round(elapsed * 1e9))
            else:
                self.core.note_cost(len(few), round(elapsed * 1e9), force=True)
        except Exception as e:  # noqa: BLE001 - a model may raise anything; serving copes (bisection)
            log(f"warning: the model raised on the warm-up batch ({type(e).__name__}: {e}); records it "
                f"fails on will be answered unscored")

    def _pull_readable(self) -> bool:
        return bool(self._pull.get(_EVENTS) & _POLLIN)

    def _offload_events(self, announce: bool = True) -> None:
        """Reads the offload socket's monitor and tells the core when its connection comes up or goes down.

        With `announce`, a connection that came up makes a HELLO due at once.
        """
        for event in self._monitor_events(self._offload_monitor, self._offload_watch):
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.stats.offload_connects += 1
                self.core.set_offload_up(True, announce=announce)
            elif event == zmq.EVENT_DISCONNECTED:
                self.core.set_offload_up(False)

    def _verdict_events(self) -> None:
        """Reads the verdict socket's monitor (only to report failing handshakes)."""
        for _ in self._monitor_events(self._verdict_monitor, self._verdict_watch):
            pass

    def _monitor_events(self, mon: zmq.Socket[Any], watch: _HandshakeWatch) -> Iterator[int]:
        """Yields the queued events of one monitor, after `watch` has seen each."""
        while cast(int, mon.get(_EVENTS)) & _POLLIN:
            event = recv_monitor_message(mon, zmq.NOBLOCK)["event"]
            if event == zmq.EVENT_DISCONNECTED and watch.pending:
                self.stats.handshake_failures += 1
            if watch.on_event(event):
                log(watch.message())
            yield event

    def _refresh_monitors(self, now_ns: int) -> None:
        """Before a due heartbeat: a busy bridge skips the poll, so the monitors are read here too,
        and a disconnection stops the HELLOs within a heartbeat."""
        if self.core.hello_due(now_ns):
            self._offload_events(announce=False)
            self._verdict_events()

    def _heartbeat_if_due(self) -> None:
        now_ns = self._now_ns()
        self._refresh_monitors(now_ns)
        for raw in self.core.tick(now_ns):
            self._send_hello(raw)

    def _send_hello(self, raw: bytes) -> None:
        assert raw[5] == p.TYPE_HELLO, "only HELLO frames go out without waiting"
        try:
            self._push.send(raw, zmq.NOBLOCK, copy=True)
            self.stats.hellos_sent += 1
        except zmq.Again:
            # The core is absent and the pipe is full of older HELLOs: this
            # one adds nothing, and a heartbeat must never block the loop.
            self.stats.hellos_dropped += 1

    def _serve_batch(self) -> bool:
        """Serves the queued TXN frames (up to batch_max); True if more may be queued."""
        # Takes what is queued, never waiting to fill a batch. Asking
        # ZMQ_EVENTS costs less than the zmq.Again a final recv would raise.
        pull = self._pull
        batch_max = self.config.batch_max
        raws: list[bytes] = [pull.recv(zmq.NOBLOCK, copy=True)]
        # Once per wake-up: what the queued-time histogram counts from.
        self._received_at = time.perf_counter()
        more = self._pull_readable()
        while more and len(raws) < batch_max:
            raws.append(pull.recv(zmq.NOBLOCK, copy=True))
            more = self._pull_readable()
        core = self.core
        frames = core.receive(raws, self._now_ns())
        if frames and self.config.hook_stop_before_send and \
                self.stats.txn_frames >= self.config.hook_stop_before_send:
            self._hook_stop(frames)
        timed = self._timed
        timings = self.timings
        while core.busy:
            now_ns = self._now_ns()
            self._refresh_monitors(now_ns)
            timed.reset()
            out = core.step(now_ns)
            chunk = core.last_chunk
            assert chunk is not None, "a step reports its chunk"
            if chunk.records:
                assert timed.calls >= 1, "a chunk with records called the model"
                timings.scoring_s.observe(timed.last_end_s - timed.first_start_s)
                timings.queued_s.observe(timed.first_start_s - self._received_at)
                timings.records.observe(chunk.records)
                if chunk.model_ok:
                    core.note_cost(chunk.records, timed.first_ns)
            for raw in out:
                if raw[5] == p.TYPE_HELLO:
                    self._send_hello(raw)
                elif not self._send(raw):
                    return more  # stopping: the core will resend what has no verdict
        return more

    def _send(self, raw: bytes) -> bool:
        """Sends one frame, waiting for room; False only when a stop is requested."""
        try:
            self._push.send(raw, zmq.NOBLOCK, copy=True)
            return True
        except zmq.Again:
            pass
        # The verdict pipe is at its high-water mark (the core is slow, or gone
        # and not yet back). Back-pressure is correct here; just stay stoppable.
        self.stats.send_waits += 1
        while not self._stop:
            events = dict(self._send_poller.poll(int(self.config.heartbeat_s * 1000)))
            if self._wake_r in events:
                self._drain_wake_pipe()
            if self._push in events and not self._stop:
                try:
                    self._push.send(raw, zmq.NOBLOCK, copy=True)
                    return True
                except zmq.Again:
                    continue  # POLLOUT raced with the pipe filling again
        return False

    def _hook_stop(self, frames: list[p.Frame]) -> None:
        self.config.hook_stop_before_send = 0  # fires once
        seqs = np.concatenate([f.records["seq"] for f in frames])
        first, last = (int(seqs.min()), int(seqs.max())) if len(seqs) else (0, 0)
        log(f"hook: stopped before send, holding {len(frames)} frames, seqs {first}..{last}")
        os.kill(os.getpid(), signal.SIGSTOP)


def write_stats_json(path: str, bridge: Bridge) -> None:
    doc = bridge.stats.as_dict()
    doc["incarnation"] = bridge.incarnation
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
