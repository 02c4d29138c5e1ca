"""BridgeCore: the bridge's side of the offload protocol, as a state machine that performs no I/O.

Usage:
    core = BridgeCore(scorer, incarnation=0x1234, config=CoreConfig(heartbeat_ns=200_000_000))
    core.set_offload_up(True)            # the offload channel connected: a HELLO is due at once
    out = core.tick(now_ns)              # [HELLO frame] when one is due, else []
    core.receive([raw, raw], now_ns)     # one wake-up's TXN frames, as bytes
    while core.busy:
        out = core.step(now_ns)          # a due HELLO, then one chunk's VERDICT frames
        core.note_cost(core.last_chunk.records, elapsed_ns)   # optional: the model's cost, measured outside
    core.next_deadline_ns                # when tick() next has something to send

Shaped like h11 and quinn-proto (STYLE.md): events go in (frames received,
the offload channel going up or down, the passing of time as `now_ns`),
frames to send come out as bytes, and nothing here opens a socket, reads a
clock, starts a thread or sleeps. `bridge.py` is the I/O shell around it
(sockets, poll, the clock, signals, stats files); a simulator or a fuzzer
can drive the same object with its own time. The model is injected (any
`Scorer`), and so is its cost: the core never times the model, the shell
(or a simulator) reports what a chunk cost through `note_cost`.

The rules it holds (docs/PROTOCOL.md, "Bridge rules"; docs/BRIDGE.md):
- Frames are decoded and validated; a bad one, or a valid frame of a type
  not meant for the offload channel, is counted by reason and skipped.
- Within one incarnation and one core epoch a seq is answered once: a
  record already read is skipped and counted (`duplicates_skipped`). A new
  epoch (a new core) forgets what was read, and `read_serial` restarts.
- A wake-up's records are answered in order, in VERDICT frames of at most
  MAX_RECORDS records, one epoch per frame, echoing it. They are scored in
  chunks of about `score_chunk_ns` of model time; a heartbeat due between
  two chunks of one run of frames goes out between them.
- A frame counts as read (`read_serial` may pass its serial) once every
  chunk up to its last record has been answered.
- The model may raise or return what the core would reject: failing records
  are isolated by bisection and answered `unscored` with the fail-safe
  decision; the others get their scores.
- HELLO carries the last epoch seen and the status record; it is due every
  heartbeat, and at once when the offload channel comes up, and it is only
  produced while that channel is up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from . import protocol as p
from .scoring import Decisions, Scorer, Scores, TxnRecords

Flags = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

# The dedupe table: slot seq & (DEDUPE_SLOTS - 1) holds the last seq stored
# there (docs/PROTOCOL.md, bridge rule 1). A core ring larger than this can
# only make a duplicate look new (scored twice), never a new record look
# like a duplicate: a slot holds one exact seq.
DEDUPE_SLOTS = 1 << 20
_DEDUPE_MASK = np.uint64(DEDUPE_SLOTS - 1)
# Runs of at most this many records are checked for "fresh and consecutive" with list operations.
_SMALL_RUN = 64
# A model call on fewer records than this says more about its fixed cost than its cost per record.
COST_SAMPLE_MIN_RECORDS = 32
# Built-in mutants (docs/FAULTS.md, "Bridge mutants"): deliberately dishonest
# bridges that prove the tests' rejection check can fail. "" is the honest bridge.
# wrong_seq_on_resend: the first answer to a resent record carries seq + 1.
MUTANT_WRONG_SEQ_ON_RESEND = "wrong_seq_on_resend"
MUTANTS = (MUTANT_WRONG_SEQ_ON_RESEND,)


@dataclass(frozen=True)
class CoreConfig:
    """The protocol's knobs; BridgeConfig (the shell's) derives one."""

    heartbeat_ns: int = 200_000_000
    # The decision of an `unscored` verdict (the model failed on the record).
    unscored_decision: int = p.DECISION_REVIEW
    # Model time per chunk: verdicts go out (and heartbeats between) at least this often.
    score_chunk_ns: int = 20_000_000
    # Whether the model's output is checked against the core's rules (the shipped model's is in range by construction).
    check_output: bool = True
    # A built-in mutant (MUTANTS), for tests only; "" (always, in production) is the honest bridge.
    mutant: str = ""

    def __post_init__(self) -> None:
        if self.heartbeat_ns <= 0:
            raise ValueError(f"the heartbeat interval must be positive, got {self.heartbeat_ns} ns")
        if self.unscored_decision not in p.DECISIONS.values():
            raise ValueError(f"the fail-safe decision is approve, review or decline (0..2), got {self.unscored_decision}")
        if self.score_chunk_ns <= 0:
            raise ValueError(f"a chunk of model time is positive, got {self.score_chunk_ns} ns")
        if self.mutant and self.mutant not in MUTANTS:
            raise ValueError(f"unknown bridge mutant {self.mutant!r}; the mutants are {', '.join(MUTANTS)}")


@dataclass
class BridgeStats:
    """Counters; written by the loop thread only, read by anyone.

    BridgeCore writes all of them but the socket ones (hellos_sent,
    hellos_dropped, offload_connects, handshake_failures, send_waits), which
    the shell writes into the same object.
    """

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


@dataclass(frozen=True)
class ChunkReport:
    """What the last step() scored: for the shell's timings and cost estimate."""

    records: int         # records given to the model (duplicates excluded); 0: the chunk held only duplicates
    model_ok: bool       # the first model call returned a full answer (its time is a cost sample)


@dataclass
class _Run:
    """Consecutive TXN frames of one epoch within a wake-up, being answered chunk by chunk."""

    epoch: int
    serials: list[int]
    counts: list[int]
    txns: TxnRecords
    started: bool = False     # epoch handled and dedupe done
    keep: Mask | None = None  # which records to answer (None: all)
    resent: Mask | None = None  # the wrong_seq_on_resend mutant only: which records are resends
    frame_ends: list[tuple[int, int]] = field(default_factory=list)  # (records up to the frame's end, serial)
    done_frames: int = 0
    lo: int = 0               # records of the run answered (or skipped) so far


def _no_log(_msg: str) -> None:
    pass


class BridgeCore:
    """One bridge incarnation's protocol state. Single-threaded; not reusable across incarnations."""

    def __init__(self, scorer: Scorer, incarnation: int, config: CoreConfig | None = None,
                 log: Callable[[str], None] = _no_log):
        if incarnation == 0 or not 0 < incarnation < 1 << 64:
            raise ValueError(f"an incarnation is a non-zero u64, got {incarnation}")
        self.scorer = scorer
        self.incarnation = incarnation
        self.config = config if config is not None else CoreConfig()
        self.stats = BridgeStats()
        self._log = log
        self._heartbeat_ms = max(1, round(self.config.heartbeat_ns / 1_000_000))
        assert 1 <= self._heartbeat_ms < 1 << 32, "heartbeat_ms fits the HELLO's u32"
        self._offload_up = False
        self._next_hello_ns = 0  # due: a HELLO leaves as soon as the offload channel is up
        self._runs: list[_Run] = []
        self.last_chunk: ChunkReport | None = None
        # Reused between wake-ups (see _gather); the verdict buffer's flags and
        # reserved bytes stay zero (an unscored chunk zeroes its flags again).
        self._txn_buffer = np.empty(0, dtype=p.TXN_DTYPE)
        self._verdict_buffer = np.zeros(0, dtype=p.VERDICT_DTYPE)
        # Seqs answered in stats.current_epoch.
        self._dedupe = np.zeros(DEDUPE_SLOTS, dtype=np.uint64)
        self._dedupe_used = False
        self._seq_high = 0  # the highest seq stored in the table this epoch: above it, nothing was answered
        self._cost_per_record_ns: float | None = None  # the model's, smoothed; None until measured
        self._wrong_seq_on_resend = self.config.mutant == MUTANT_WRONG_SEQ_ON_RESEND
        self._lied_about: set[int] = set()  # that mutant: seqs of this epoch answered once with seq + 1

    # -- events in -------------------------------------------------------

    def set_offload_up(self, up: bool, announce: bool = True) -> None:
        """The offload channel's connection came up or went down.

        A HELLO says "send to me", so none is produced while it is down. When
        it comes up with `announce`, a HELLO is due at once: the new
        connection learns this incarnation before any of its verdicts.
        """
        self._offload_up = up
        if up and announce:
            self._next_hello_ns = 0
        assert not announce or not up or self._next_hello_ns == 0

    def tick(self, now_ns: int) -> list[bytes]:
        """The passing of time: [a HELLO] when one is due and the offload channel is up, else []."""
        assert now_ns >= 0, "time is non-negative nanoseconds"
        if now_ns < self._next_hello_ns:
            return []
        self._next_hello_ns = now_ns + self.config.heartbeat_ns
        assert self._next_hello_ns > now_ns
        if not self._offload_up:
            return []
        return [self.hello_frame()]

    def receive(self, raws: Sequence[bytes], now_ns: int) -> list[p.Frame]:
        """One wake-up's frames off the offload channel: decodes them and queues their records.

        Bad frames are counted by reason and skipped. Returns the valid TXN
        frames (the shell's test hook names their seqs). The records are
        answered by step(), which must have drained the previous wake-up.
        """
        assert now_ns >= 0, "time is non-negative nanoseconds"
        assert not self._runs, "the previous wake-up is answered before the next is received"
        st = self.stats
        st.frames_received += len(raws)
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
            return frames
        st.batches += 1
        st.txn_frames += len(frames)
        txns = frames[0].records if len(frames) == 1 else self._gather(frames)
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
            run = frames[first:i]
            self._runs.append(_Run(epoch, [f.serial for f in run], [f.count for f in run], txns[start:end]))
            start = end
        assert start == len(txns), "every record belongs to one run"
        return frames

    def step(self, now_ns: int) -> list[bytes]:
        """Answers the next chunk of the received records: [a due HELLO,] then its VERDICT frames.

        Call while `busy`. A HELLO can only come before a chunk that is not
        the first of its run (the shell's tick() before receive() covers the
        wake-up's start).
        """
        assert self._runs, "step() only while busy"
        run = self._runs[0]
        out: list[bytes] = []
        if run.started:
            out += self.tick(now_ns)
        else:
            self._start_run(run)
        n = len(run.txns)
        lo = run.lo
        hi = min(lo + self._chunk_records(), n)
        assert lo < hi or n == 0, "every step makes progress"
        records = 0
        model_ok = True
        if hi > lo:
            part = run.txns[lo:hi] if run.keep is None else run.txns[lo:hi][run.keep[lo:hi]]
            if len(part):
                resent = None
                if run.resent is not None:
                    resent = run.resent[lo:hi] if run.keep is None else run.resent[lo:hi][run.keep[lo:hi]]
                model_ok = self._answer(run.epoch, part, out, resent)
                records = len(part)
        st = self.stats
        while run.done_frames < len(run.frame_ends) and run.frame_ends[run.done_frames][0] <= hi:
            st.read_serial = max(st.read_serial, run.frame_ends[run.done_frames][1])
            run.done_frames += 1
        run.lo = hi
        if hi >= n:
            assert run.done_frames == len(run.frame_ends), "every frame of the run was answered"
            self._runs.pop(0)
        self.last_chunk = ChunkReport(records, model_ok)
        return out

    def note_cost(self, records: int, elapsed_ns: int, force: bool = False) -> None:
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
        assert records >= 0 and elapsed_ns >= 0, "a cost sample is non-negative"
        per = elapsed_ns / max(records, 1)
        old = self._cost_per_record_ns
        small = records < COST_SAMPLE_MIN_RECORDS and not force and elapsed_ns < self.config.score_chunk_ns / 4
        if small and (old is None or per >= old):
            return
        if old is not None and per > 4 * old:
            per = 4 * old
        self._cost_per_record_ns = per if old is None else old + 0.25 * (per - old)
        assert self._cost_per_record_ns >= 0

    # -- state out -------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Records received and not yet answered: call step()."""
        return bool(self._runs)

    @property
    def next_deadline_ns(self) -> int:
        """When tick() next has something to do (0: now)."""
        return self._next_hello_ns

    def hello_due(self, now_ns: int) -> bool:
        """Whether tick(now_ns) would send a HELLO if the offload channel is up."""
        return now_ns >= self._next_hello_ns

    @property
    def cost_per_record_ns(self) -> float | None:
        """The model's smoothed cost per record; None until measured."""
        return self._cost_per_record_ns

    def hello_frame(self) -> bytes:
        """The HELLO this incarnation sends now: the last epoch seen and the status record."""
        st = self.stats
        status = p.make_hello_status(st.read_serial, self._heartbeat_ms, st.verdict_records_sent,
                                     st.duplicates_skipped)
        return p.encode_hello(st.current_epoch, self.incarnation, status)

    def pending_seqs(self) -> TxnRecords:
        """The records received and not yet answered (for the shell's test hook)."""
        if not self._runs:
            return np.zeros(0, dtype=p.TXN_DTYPE)
        return np.concatenate([r.txns[r.lo:] for r in self._runs])

    def warm_up(self) -> None:
        """Touches the reused buffers and the dedupe table's pages, scoring nothing and sending nothing.

        The first call of each numpy routine and the first use of the reused
        buffers cost milliseconds; the shell pays them before its first HELLO.
        """
        txns = np.zeros(p.MAX_RECORDS, dtype=p.TXN_DTYPE)
        txns["seq"] = np.arange(1, p.MAX_RECORDS + 1)
        txns["currency"] = b"EUR"
        frame = p.decode_frame(p.encode_txns(1, 1, txns))
        batch = self._gather([frame, frame])
        self._verdict_buffer = np.zeros(len(batch), dtype=p.VERDICT_DTYPE)
        verdicts = p.make_verdicts(batch, np.zeros(len(batch), np.float32), np.zeros(len(batch), np.uint8),
                                   out=self._verdict_buffer)
        p.encode_verdicts(1, self.incarnation, verdicts[: p.MAX_RECORDS])
        # The duplicate table's 8 MB are mapped on first write, a page fault
        # per 512 seqs: taken here (~2 ms) rather than on the first million records.
        self._dedupe.fill(0)

    def synthetic_batch(self) -> TxnRecords:
        """A full-size batch of synthetic records (two frames' worth) for the shell's warm-up of the model."""
        txns = np.zeros(2 * p.MAX_RECORDS, dtype=p.TXN_DTYPE)
        txns["seq"] = np.tile(np.arange(1, p.MAX_RECORDS + 1), 2)
        txns["currency"] = b"EUR"
        return txns

    # -- internals -------------------------------------------------------

    def _start_run(self, run: _Run) -> None:
        """A run's first chunk: a new epoch resets what was read; the run's duplicates are marked."""
        st = self.stats
        if run.epoch != st.current_epoch:
            # A new epoch is a new core process: its seqs start again at 1.
            st.epochs_seen += 1
            self._log(f"core epoch {run.epoch:#018x} (was {st.current_epoch:#018x})")
            st.current_epoch = run.epoch
            st.read_serial = 0
            if self._dedupe_used:
                self._dedupe.fill(0)
            self._dedupe_used = True
            self._seq_high = 0
            self._lied_about.clear()
        if self._wrong_seq_on_resend:
            run.resent = self._resends(run.txns)
        run.keep = self._dedupe_mark(run.txns)
        # Where each frame's records end, and its serial: a frame is fully
        # answered, and read_serial may pass it, once every chunk up to its end is sent.
        total = 0
        for count, serial in zip(run.counts, run.serials):
            total += count
            run.frame_ends.append((total, serial))
        assert total == len(run.txns), "the run's frames hold its records"
        run.started = True

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
        """Records per model call: about score_chunk_ns of model time (everything, for a fast model)."""
        cost = self._cost_per_record_ns
        if not cost:
            return COST_SAMPLE_MIN_RECORDS  # not measured yet (the warm-up failed): a few, timed
        records = int(self.config.score_chunk_ns / cost)
        if records >= p.MAX_RECORDS:
            return records - records % p.MAX_RECORDS  # whole VERDICT frames: no extra partial frame per chunk
        return max(1, records)

    def _answer(self, epoch: int, txns: TxnRecords, out: list[bytes], resent: Mask | None = None) -> bool:
        """Scores `txns` and appends their VERDICT frames, in order, to `out`; True if the first model call succeeded."""
        n = len(txns)
        assert n > 0, "a chunk answers at least one record"
        scores, decisions, flags, model_ok = self._score(txns)
        if len(self._verdict_buffer) < n:
            self._verdict_buffer = np.zeros(max(n, 2 * len(self._verdict_buffer)), dtype=p.VERDICT_DTYPE)
        buf = self._verdict_buffer[:n]
        verdicts = p.make_verdicts(txns, scores, decisions, out=buf, flags=flags)
        if resent is not None:
            self._mutant_wrong_seq_on_resend(verdicts, resent)
        unscored = 0 if flags is None else int(np.count_nonzero(flags))
        st = self.stats
        st.records_scored += n - unscored
        st.unscored += unscored
        # As few frames as possible: every message costs both ends and both
        # libzmq I/O threads a wake-up, whatever its size.
        frames_before = len(out)
        for lo in range(0, n, p.MAX_RECORDS):
            hi = min(lo + p.MAX_RECORDS, n)
            out.append(p.encode_verdicts(epoch, self.incarnation, verdicts[lo:hi]))
            st.verdict_frames_sent += 1
            st.verdict_records_sent += hi - lo
        assert len(out) - frames_before == (n + p.MAX_RECORDS - 1) // p.MAX_RECORDS
        if flags is not None:
            buf["flags"] = 0  # the buffer's flags stay zero for the next batch
        return model_ok

    def _resends(self, txns: TxnRecords) -> Mask | None:
        """The `wrong_seq_on_resend` mutant: which records are resends (None: none).

        The core sends seqs in increasing order and resends in a new frame
        after newer ones, so a record is a resend when its seq is at or below
        one this incarnation received before it in this epoch: in an earlier
        run (the highest seq stored so far) or earlier in this one.
        """
        seq = txns["seq"]
        if len(seq) == 0:
            return None
        before = np.empty(len(seq), dtype=np.uint64)
        before[0] = self._seq_high
        np.maximum.accumulate(seq[:-1], out=before[1:])
        before[1:] = np.maximum(before[1:], np.uint64(self._seq_high))
        resent: Mask = seq <= before
        return resent if bool(resent.any()) else None

    def _mutant_wrong_seq_on_resend(self, verdicts: p.Records, resent: Mask) -> None:
        """The `wrong_seq_on_resend` mutant (tests only): the first answer to a resent record names seq + 1.

        Which records are resends is _resends()'s call. A resend's first
        answer carries seq + 1 with the record's own txn_id, which the core
        rejects (`forged` where seq + 1 is held, `unknown_seq` past what it
        sent) or counts as a duplicate. The seq is then forgotten by the
        dedupe table, so the core's next resend of it is answered, honestly:
        exactly-once still holds in the end; only the rejections show the lie.
        """
        assert len(resent) == len(verdicts), "one resend flag per verdict"
        seq = verdicts["seq"]
        lie = [int(i) for i in np.flatnonzero(resent) if int(seq[i]) not in self._lied_about]
        if not lie:
            return
        idx = np.asarray(lie, dtype=np.intp)
        original = seq[idx].copy()
        self._lied_about.update(int(s) for s in original)
        slots = original & _DEDUPE_MASK
        self._dedupe[slots[self._dedupe[slots] == original]] = 0  # not answered: the next resend is answered
        seq[idx] = original + np.uint64(1)
        assert len(self._lied_about) >= len(lie), "each lie is remembered, so each seq is lied about once"

    def _score(self, txns: TxnRecords) -> tuple[Scores, Decisions, Flags | None, bool]:
        """(scores, decisions, flags or None, first call ok): the model's answer, or the fail-safe where it fails.

        The normal path is one model call and four reductions to check the
        output is something the core accepts. If the call raises, the records
        are bisected until each failing one is alone (_isolate).
        """
        try:
            scores, decisions = self._call_model(txns)
        except Exception as e:  # noqa: BLE001 - any model error; the bridge must live on
            self._note_model_error(e, len(txns))
            s, d, f = self._isolate(txns)
            return s, d, f, False
        bad = _out_of_contract(scores, decisions) if self.config.check_output else None
        if bad is None:
            return scores, decisions, None, True
        s, d, f = self._fail_safe(scores, decisions, bad)
        return s, d, f, True

    def _call_model(self, txns: TxnRecords) -> tuple[Scores, Decisions]:
        scores, decisions = self.scorer.score(txns)
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
                bad = _out_of_contract(s, d) if self.config.check_output else None
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
        assert count > 0, "only called for output with something out of contract"
        if self.stats.bad_scores == 0:
            self._log(f"warning: the model returned {count} score(s) or decision(s) the core would reject "
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
            self._log(f"warning: the model raised on {records} record(s) ({type(e).__name__}: {e}); bisecting: "
                      f"records it fails on alone are answered unscored with decision "
                      f"{self.config.unscored_decision}; further model errors are only counted")

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

    def _count_bad(self, reason: str, detail: str) -> None:
        self.stats.bad_frames[reason] += 1
        if self.stats.bad_frames[reason] == 1:
            self._log(f"skipping bad frame ({detail}); further '{reason}' frames are only counted")


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
