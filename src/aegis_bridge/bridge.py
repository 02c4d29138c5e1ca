"""The bridge loop: pull TXN frames, score them in batches, push VERDICT frames.

Usage:
    bridge = Bridge(BridgeConfig(offload="ipc:///run/aegis/offload.sock",
                                 verdicts="ipc:///run/aegis/verdicts.sock"), load_model())
    bridge.run()            # until bridge.request_stop() (thread- and signal-safe)

Why it is shaped like this:
- The core owns reliability (PROTOCOL.md): the bridge keeps no state a crash
  could lose. It may die anywhere; the core resends what has no verdict.
- Within one incarnation and one core epoch it never scores a seq twice: a
  resent record it already answered is skipped (its verdict is on the way;
  ipc:// loses nothing between two live processes). The test is one numpy
  gather and compare per batch against a table indexed by seq (below).
- The model may raise. The batch is then bisected until the failing records
  are single; they get `unscored` verdicts with the fail-safe decision and
  every other record its score. The bridge never dies of a model error, and
  the core never sees a score it would reject (NaN, outside [0, 1]).
- A slow model must not hide the bridge: a batch is scored in chunks of
  about `score_chunk_s` of model time, each chunk's verdicts are sent as
  soon as it is scored, and heartbeats go out between chunks, so the core
  sees progress (verdicts, HELLOs whose read_serial advances) while the
  bridge works through a backlog, and never mistakes it for a dead one.
- It never waits to fill a batch. Each wake-up takes what is already queued
  (up to `batch_max` frames), scores it as one array, and answers its
  records in order, in VERDICT frames of up to MAX_RECORDS records; a
  VERDICT frame covers consecutive TXN frames of one epoch and echoes it.
- A HELLO tells the core "send to me", so it goes out only while the
  offload channel's connection is up (a monitor on the PULL socket reports
  it), and at once when it comes up. A HELLO that beat the offload
  connection would make a core resend into a socket with no peer and back
  off: at a start with both sockets reconnecting that cost milliseconds.
- The poll timeout is the time to the next heartbeat, so an idle bridge
  sleeps and a busy one never spins on an empty socket (two cores: libzmq's
  I/O threads need the CPU).
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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import zmq
from zmq.utils.monitor import recv_monitor_message

from . import protocol as p
from .histogram import RECORDS_BUCKETS, SECONDS_BUCKETS, Histogram
from .scoring import Decisions, ModelInfo, Scorer, Scores, TxnRecords

Flags = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

# Plain ints: pyzmq's enum members make `&` a slow Python-level call.
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)

# The dedupe table: slot seq & (DEDUPE_SLOTS - 1) holds the last seq stored
# there (docs/PROTOCOL.md, bridge rule 1). A core ring larger than this can
# only make a duplicate look new (scored twice), never a new record look
# like a duplicate: a slot holds one exact seq.
DEDUPE_SLOTS = 1 << 20
_DEDUPE_MASK = np.uint64(DEDUPE_SLOTS - 1)
# Warm-up scores a full synthetic batch only if a few records predict it costs less than this.
_WARM_UP_BUDGET_S = 0.05
# Runs of at most this many records are checked for "fresh and consecutive" with list operations.
_SMALL_RUN = 64
# A model call on fewer records than this says more about its fixed cost than its cost per record.
_COST_SAMPLE_MIN_RECORDS = 32


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

    def __post_init__(self) -> None:
        assert self.batch_max >= 1, "batch_max must be at least 1"
        assert self.heartbeat_s > 0, "the heartbeat interval must be positive"
        assert self.hook_stop_before_send >= 0
        assert self.unscored_decision in p.DECISIONS.values(), "the fail-safe is approve, review or decline"
        assert self.score_chunk_s > 0, "a chunk of model time is positive"


@dataclass
class BridgeStats:
    """Counters; written by the loop thread only, read by anyone."""

    frames_received: int = 0
    txn_frames: int = 0
    records_scored: int = 0
    verdict_frames_sent: int = 0
    verdict_records_sent: int = 0
    hellos_sent: int = 0
    hellos_dropped: int = 0
    offload_connects: int = 0
    handshake_failures: int = 0
    send_waits: int = 0
    batches: int = 0
    epochs_seen: int = 0
    current_epoch: int = 0
    read_serial: int = 0         # highest TXN serial of current_epoch read and fully answered
    duplicates_skipped: int = 0  # TXN records skipped: already answered in this epoch
    unscored: int = 0            # records answered `unscored` (the model failed on them)
    model_errors: int = 0        # exceptions the model raised (each bisection step counts)
    bad_scores: int = 0          # records whose model output the core would reject (answered unscored)
    bad_frames: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "bad_frames"}
        d["bad_frames"] = dict(self.bad_frames)
        return d


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
        self.incarnation = incarnation if incarnation is not None else new_incarnation()
        assert self.incarnation != 0, "an incarnation is never 0"
        self.stats = BridgeStats()
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
        # decode_frame rejects and counts it as `oversized` instead.
        self._pull.setsockopt(zmq.RCVHWM, config.recv_hwm)
        self._push.setsockopt(zmq.SNDHWM, config.send_hwm)
        # Set up before connect(), so the first connection is reported too.
        self._offload_monitor = self._pull.get_monitor_socket(_CONNECTION_EVENTS)
        self._verdict_monitor = self._push.get_monitor_socket(_CONNECTION_EVENTS)
        self._offload_watch = _HandshakeWatch("--offload", config.offload, "PUSH (the core's offload)")
        self._verdict_watch = _HandshakeWatch("--verdicts", config.verdicts, "PULL (the core's verdicts)")
        self._offload_up = False
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
        # Reused between batches (see _gather); the verdict buffer's flags and
        # reserved bytes stay zero (an unscored chunk zeroes its flags again).
        self._txn_buffer = np.empty(0, dtype=p.TXN_DTYPE)
        self._verdict_buffer = np.zeros(0, dtype=p.VERDICT_DTYPE)
        # Seqs answered in stats.current_epoch (its pages are touched by the warm-up).
        self._dedupe = np.zeros(DEDUPE_SLOTS, dtype=np.uint64)
        self._dedupe_used = False
        self._seq_high = 0  # the highest seq stored in the table this epoch: above it, nothing was answered
        # The shipped model's output is in range by construction; any other's is checked per call.
        self._check_output = not getattr(model, "output_in_contract", False)
        self._heartbeat_ms = max(1, round(config.heartbeat_s * 1000))
        self._next_hello = 0.0
        self._cost_per_record_s: float | None = None  # the model's, smoothed; None until measured

    @property
    def wake_fd(self) -> int:
        """Write end of the self-pipe; `signal.set_wakeup_fd` may use it."""
        return self._wake_w

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
        self._next_hello = time.monotonic()  # due: sent as soon as the offload channel is up
        # Whether a TXN frame may be queued. While it is False the last
        # ZMQ_EVENTS said "none", so the PULL's ZMQ_FD will fire for the next.
        pending = self._pull_readable()
        if self._offload_events():
            self._next_hello = 0.0
        while not self._stop:
            if not pending:
                timeout_ms = max(0, int((self._next_hello - time.monotonic()) * 1000.0 + 0.999))
                for fd, _ in self._poller.poll(timeout_ms):
                    if fd == self._pull_fd:
                        pending = self._pull_readable()
                    elif fd == self._monitor_fd:
                        if self._offload_events():
                            self._next_hello = 0.0  # (re)connected: announce this incarnation now
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
        bridge, they do not land on the first transactions' latency.
        """
        txns = np.zeros(p.MAX_RECORDS, dtype=p.TXN_DTYPE)
        txns["seq"] = np.arange(1, p.MAX_RECORDS + 1)
        txns["currency"] = b"EUR"
        frame = p.decode_frame(p.encode_txns(1, 1, txns))
        batch = self._gather([frame, frame])
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
                self._note_cost(len(batch), elapsed)
            else:
                self._note_cost(len(few), elapsed, force=True)
        except Exception as e:  # noqa: BLE001 - a model may raise anything; serving copes (bisection)
            log(f"warning: the model raised on the warm-up batch ({type(e).__name__}: {e}); records it "
                f"fails on will be answered unscored")
        self._verdict_buffer = np.zeros(len(batch), dtype=p.VERDICT_DTYPE)
        verdicts = p.make_verdicts(batch, np.zeros(len(batch), np.float32), np.zeros(len(batch), np.uint8),
                                   out=self._verdict_buffer)
        p.encode_verdicts(1, self.incarnation, verdicts[: p.MAX_RECORDS])
        # The duplicate table's 8 MB are mapped on first write, a page fault
        # per 512 seqs: taken here (~2 ms) rather than on the first million records.
        self._dedupe.fill(0)

    def _pull_readable(self) -> bool:
        return bool(self._pull.get(_EVENTS) & _POLLIN)

    def _offload_events(self) -> bool:
        """Reads the offload socket's monitor; True if its connection came up."""
        came_up = False
        for event in self._monitor_events(self._offload_monitor, self._offload_watch):
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._offload_up = came_up = True
                self.stats.offload_connects += 1
            elif event == zmq.EVENT_DISCONNECTED:
                self._offload_up = False
        return came_up

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

    def _heartbeat_if_due(self) -> None:
        now = time.monotonic()
        if now < self._next_hello:
            return
        # A busy bridge skips the poll: read the monitors here too, so a
        # disconnection stops the HELLOs within a heartbeat.
        self._offload_events()
        self._verdict_events()
        if self._offload_up:
            self._send_hello()
        self._next_hello = now + self.config.heartbeat_s

    def _send_hello(self) -> None:
        st = self.stats
        status = p.make_hello_status(st.read_serial, self._heartbeat_ms, st.verdict_records_sent,
                                     st.duplicates_skipped)
        raw = p.encode_hello(st.current_epoch, self.incarnation, status)
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
        self.stats.frames_received += len(raws)
        frames = []
        for raw in raws:
            try:
                frame = p.decode_frame(raw)
            except p.FrameError as e:
                self._count_bad(e.reason, str(e))
                continue
            if frame.type != p.TYPE_TXN:
                self._count_bad("unexpected_type", p.TYPE_NAMES[frame.type])
                continue
            frames.append(frame)
        if not frames:
            return more
        self.stats.batches += 1
        self.stats.txn_frames += len(frames)
        if self.config.hook_stop_before_send and self.stats.txn_frames >= self.config.hook_stop_before_send:
            self._hook_stop(frames)
        if len(frames) == 1:
            txns = frames[0].records
        else:
            txns = self._gather(frames)
        # The verdicts go back in record order, one epoch's consecutive TXN
        # frames at a time (a VERDICT frame never mixes epochs).
        start = 0
        i = 0
        while i < len(frames):
            epoch = frames[i].epoch
            first = i
            end = start
            while i < len(frames) and frames[i].epoch == epoch:
                end += frames[i].count
                i += 1
            if not self._serve_run(epoch, frames[first:i], txns[start:end]):
                return more  # stopping: the core will resend what has no verdict
            start = end
        assert start == len(txns), "every record was answered or skipped"
        return more

    def _serve_run(self, epoch: int, frames: list[p.Frame], txns: TxnRecords) -> bool:
        """Answers consecutive TXN frames of one epoch (their records are `txns`); False if stopping."""
        st = self.stats
        if epoch != st.current_epoch:
            # A new epoch is a new core process: its seqs start again at 1.
            st.epochs_seen += 1
            log(f"core epoch {epoch:#018x} (was {st.current_epoch:#018x})")
            st.current_epoch = epoch
            st.read_serial = 0
            if self._dedupe_used:
                self._dedupe.fill(0)
            self._dedupe_used = True
            self._seq_high = 0
        keep = self._dedupe_mark(txns)
        # Where each frame's records end, and its serial: a frame is fully
        # answered, and read_serial may pass it, once every chunk up to its end is sent.
        frame_ends = []
        total = 0
        for f in frames:
            total += f.count
            frame_ends.append((total, f.serial))
        assert total == len(txns)
        chunk = self._chunk_records()
        done_frames = 0
        lo = 0
        while True:
            hi = min(lo + chunk, len(txns))
            if hi > lo:
                part = txns[lo:hi] if keep is None else txns[lo:hi][keep[lo:hi]]
                if len(part) and not self._answer(epoch, part):
                    return False
            while done_frames < len(frame_ends) and frame_ends[done_frames][0] <= hi:
                st.read_serial = max(st.read_serial, frame_ends[done_frames][1])
                done_frames += 1
            if hi >= len(txns):
                break
            lo = hi
            self._heartbeat_if_due()
            chunk = self._chunk_records()
        assert done_frames == len(frames), "every frame of the run was answered"
        return True

    def _dedupe_mark(self, txns: TxnRecords) -> Mask | None:
        """Stores the seqs of `txns` as answered; returns which to answer (None: all of them).

        Vectorised. Consecutive seqs (the usual case: frames as first sent)
        are compared with, then stored into, one slice of the table. Anything
        else takes one gather and compare and one scatter, plus a check that
        the seqs increase; only if they do not (the core resent something
        within this batch) does np.unique look for a seq seen twice here.
        A slot only ever holds a seq that was stored, so a record is skipped
        only if it was answered; a collision can only make one look new.
        """
        seq = txns["seq"]
        n = len(seq)
        if n == 0:
            return None
        # The usual case, a run of consecutive seqs (frames as first sent):
        # its slots are one slice of the table, no gather or scatter, and
        # above the highest seq stored nothing can have been answered.
        if n <= _SMALL_RUN:
            # A few records (a paced core's frames): list operations run in C
            # and cost less than the numpy calls below, ~1 us against ~8.
            listed = seq.tolist()
            first = listed[0]
            lo = first & (DEDUPE_SLOTS - 1)
            if first > self._seq_high and lo + n <= DEDUPE_SLOTS and listed == list(range(first, first + n)):
                self._dedupe[lo:lo + n] = seq
                self._seq_high = listed[-1]
                return None
        first = seq.item(0)
        last = seq.item(n - 1)
        if last - first == n - 1 and (n == 1 or bool((seq[1:] > seq[:-1]).all())):
            lo = first & (DEDUPE_SLOTS - 1)
            if lo + n <= DEDUPE_SLOTS:
                view = self._dedupe[lo:lo + n]
                if first > self._seq_high or not (view == seq).any():
                    view[:] = seq
                    self._seq_high = max(self._seq_high, last)
                    return None
        slots = seq & _DEDUPE_MASK
        seen = self._dedupe[slots] == seq
        self._dedupe[slots] = seq
        self._seq_high = max(self._seq_high, int(seq.max()))
        increasing = n < 2 or bool((seq[1:] > seq[:-1]).all())
        if increasing and not seen.any():
            return None
        # Out of order (a resend among new records) or something seen: the
        # first occurrence of each seq here is answered unless seen before.
        first_here = np.zeros(n, dtype=bool)
        first_here[np.unique(seq, return_index=True)[1]] = True
        keep: Mask = first_here & ~seen
        skipped = n - int(np.count_nonzero(keep))
        assert 0 <= skipped <= n
        if skipped == 0:
            return None
        self.stats.duplicates_skipped += skipped
        return keep

    def _chunk_records(self) -> int:
        """Records per model call: about score_chunk_s of model time (everything, for a fast model)."""
        cost = self._cost_per_record_s
        if not cost:
            return _COST_SAMPLE_MIN_RECORDS  # not measured yet (the warm-up failed): a few, timed
        records = int(self.config.score_chunk_s / cost)
        if records >= p.MAX_RECORDS:
            return records - records % p.MAX_RECORDS  # whole VERDICT frames: no extra partial frame per chunk
        return max(1, records)

    def _note_cost(self, records: int, elapsed_s: float, force: bool = False) -> None:
        """Smooths the model's cost per record, from calls large (or slow) enough to say.

        A small, fast call says little, except that a record costs at most
        that much: it may lower the estimate, never raise it. Otherwise an
        estimate inflated once (the process stopped by a signal in the middle
        of a model call) would shrink the chunks to a record or two, whose
        calls are then too small to be sampled: the bridge would crawl at
        its per-call overhead for good (seen after a SIGSTOP: 12k records/s
        against 20k offered, the core's ring full for a minute). For the
        same reason one sample moves the estimate up by at most 4x.
        """
        per = elapsed_s / max(records, 1)
        old = self._cost_per_record_s
        small = records < _COST_SAMPLE_MIN_RECORDS and not force and elapsed_s < self.config.score_chunk_s / 4
        if small and (old is None or per >= old):
            return
        if old is not None and per > 4 * old:
            per = 4 * old
        self._cost_per_record_s = per if old is None else old + 0.25 * (per - old)

    def _answer(self, epoch: int, txns: TxnRecords) -> bool:
        """Scores `txns` and sends their verdicts in order; False only when a stop is requested."""
        n = len(txns)
        started = time.perf_counter()
        scores, decisions, flags = self._score(txns, started)
        timings = self.timings
        timings.scoring_s.observe(time.perf_counter() - started)
        timings.queued_s.observe(started - self._received_at)
        timings.records.observe(n)
        if len(self._verdict_buffer) < n:
            self._verdict_buffer = np.zeros(max(n, 2 * len(self._verdict_buffer)), dtype=p.VERDICT_DTYPE)
        out = self._verdict_buffer[:n]
        verdicts = p.make_verdicts(txns, scores, decisions, out=out, flags=flags)
        unscored = 0 if flags is None else int(np.count_nonzero(flags))
        self.stats.records_scored += n - unscored
        self.stats.unscored += unscored
        # As few frames as possible: every message costs both ends and both
        # libzmq I/O threads a wake-up, whatever its size.
        sent = True
        for lo in range(0, n, p.MAX_RECORDS):
            hi = min(lo + p.MAX_RECORDS, n)
            if not self._send(p.encode_verdicts(epoch, self.incarnation, verdicts[lo:hi])):
                sent = False
                break
            self.stats.verdict_frames_sent += 1
            self.stats.verdict_records_sent += hi - lo
        if flags is not None:
            out["flags"] = 0  # the buffer's flags stay zero for the next batch
        return sent

    def _score(self, txns: TxnRecords, t0: float) -> tuple[Scores, Decisions, Flags | None]:
        """(scores, decisions, flags or None): the model's answer, or the fail-safe where it fails.

        The normal path is one model call and four reductions to check the
        output is something the core accepts. If the call raises, the records
        are bisected until each failing one is alone (_isolate). `t0` is
        when the call starts (perf_counter), for the cost estimate.
        """
        try:
            scores, decisions = self._call_model(txns)
        except Exception as e:  # noqa: BLE001 - any model error; the bridge must live on
            self._note_model_error(e, len(txns))
            return self._isolate(txns)
        self._note_cost(len(txns), time.perf_counter() - t0)
        bad = _out_of_contract(scores, decisions) if self._check_output else None
        if bad is None:
            return scores, decisions, None
        return self._fail_safe(scores, decisions, bad)

    def _call_model(self, txns: TxnRecords) -> tuple[Scores, Decisions]:
        scores, decisions = self.model.score(txns)
        if len(scores) != len(txns) or len(decisions) != len(txns):
            raise ValueError(f"the model returned {len(scores)} scores and {len(decisions)} decisions "
                             f"for {len(txns)} records")
        return scores, decisions

    def _isolate(self, txns: TxnRecords) -> tuple[Scores, Decisions, Flags]:
        """Bisects `txns`, which fail as a whole, until the failing records are single; those are unscored."""
        n = len(txns)
        scores = np.zeros(n, dtype=np.float32)
        decisions = np.full(n, self.config.unscored_decision, dtype=np.uint8)
        flags = np.full(n, p.FLAG_UNSCORED, dtype=np.uint8)

        def split(lo: int, hi: int) -> None:
            # txns[lo:hi] raised: score each half, and split again any half that raises.
            if hi - lo == 1:
                return  # a poison record: stays unscored
            mid = (lo + hi) // 2
            for a, b in ((lo, mid), (mid, hi)):
                try:
                    s, d = self._call_model(txns[a:b])
                except Exception as e:  # noqa: BLE001
                    self._note_model_error(e, b - a)
                    split(a, b)
                    continue
                bad = _out_of_contract(s, d) if self._check_output else None
                scores[a:b] = s
                decisions[a:b] = d
                flags[a:b] = 0
                if bad is not None:
                    self._fail_safe(scores[a:b], decisions[a:b], bad, flags[a:b])

        split(0, n)
        return scores, decisions, flags

    def _fail_safe(self, scores: Scores, decisions: Decisions, bad: Mask,
                   flags: Flags | None = None) -> tuple[Scores, Decisions, Flags]:
        """Records where `bad` is True become unscored: score 0, the fail-safe decision, flag set."""
        count = int(np.count_nonzero(bad))
        if self.stats.bad_scores == 0:
            log(f"warning: the model returned {count} score(s) or decision(s) the core would reject "
                f"(NaN, outside [0, 1], decision above 2); such records are answered unscored")
        self.stats.bad_scores += count
        if flags is None:
            # The model's own arrays may be read-only or shared: answer from copies.
            scores = np.array(scores, dtype=np.float32)
            decisions = np.array(decisions, dtype=np.uint8)
            flags = np.zeros(len(scores), dtype=np.uint8)
        # Otherwise these are views of _isolate's arrays, written in place.
        scores[bad] = 0.0
        decisions[bad] = self.config.unscored_decision
        flags[bad] = p.FLAG_UNSCORED
        return scores, decisions, flags

    def _note_model_error(self, e: Exception, records: int) -> None:
        self.stats.model_errors += 1
        if self.stats.model_errors == 1:
            log(f"warning: the model raised on {records} record(s) ({type(e).__name__}: {e}); bisecting: records "
                f"it fails on alone are answered unscored with decision {self.config.unscored_decision}; "
                f"further model errors are only counted")

    def _gather(self, frames: list[p.Frame]) -> TxnRecords:
        """The records of several frames as one array, copied into a buffer kept between batches.

        A fresh array per batch (np.concatenate, or b"".join) is large enough
        for malloc to map and unmap it each time, and the page faults of the
        new pages cost more than the copy itself.
        """
        total = sum(f.count for f in frames)
        if len(self._txn_buffer) < total:
            self._txn_buffer = np.empty(max(total, 2 * len(self._txn_buffer)), dtype=p.TXN_DTYPE)
        # Copied as bytes: assigning structured arrays copies field by field,
        # ~25x slower than the memcpy this is.
        out = self._txn_buffer.view(np.uint8)
        start = 0
        for f in frames:
            end = start + f.count * p.TXN_RECORD_BYTES
            out[start:end] = f.records.view(np.uint8)
            start = end
        assert start == total * p.TXN_RECORD_BYTES
        return self._txn_buffer[:total]

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

    def _count_bad(self, reason: str, detail: str) -> None:
        self.stats.bad_frames[reason] += 1
        if self.stats.bad_frames[reason] == 1:
            log(f"skipping bad frame ({detail}); further '{reason}' frames are only counted")

    def _hook_stop(self, frames: list[p.Frame]) -> None:
        self.config.hook_stop_before_send = 0  # fires once
        seqs = np.concatenate([f.records["seq"] for f in frames])
        first, last = (int(seqs.min()), int(seqs.max())) if len(seqs) else (0, 0)
        log(f"hook: stopped before send, holding {len(frames)} frames, seqs {first}..{last}")
        os.kill(os.getpid(), signal.SIGSTOP)


def _out_of_contract(scores: Scores, decisions: Decisions) -> Mask | None:
    """None if every score is in [0, 1] and every decision 0..2 (the normal case, four reductions); else a mask.

    NaN fails every comparison, and min/max propagate it, so it is caught too.
    """
    if len(scores) == 0:
        return None
    if (scores.min() >= 0 and scores.max() <= 1 and decisions.max() <= p.DECISION_DECLINE
            and (decisions.dtype.kind == "u" or decisions.min() >= 0)):
        return None
    with np.errstate(invalid="ignore"):
        ok = (scores >= 0) & (scores <= 1) & (decisions >= 0) & (decisions <= p.DECISION_DECLINE)
    return ~ok


def write_stats_json(path: str, bridge: Bridge) -> None:
    doc = bridge.stats.as_dict()
    doc["incarnation"] = bridge.incarnation
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
