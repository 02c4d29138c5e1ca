#!/usr/bin/python3
"""Real-process chaos with a timeline: aegis-core and the real Python bridge under
random bridge kills, stalls (SIGSTOP/SIGCONT) and libfiu failpoint bursts in the
core, for a wall-clock budget, with the accounting checked all along.

    /usr/bin/python3 scripts/real_chaos.py --budget 60s --out chaos-out/real
    /usr/bin/python3 scripts/real_chaos.py --budget 2m --seed 1234      # the same fault schedule again
    /usr/bin/python3 scripts/real_chaos.py --budget 5m --model-cost 100us --load 0.5   # a realistic model
    /usr/bin/python3 scripts/real_chaos.py --soak                       # >= 100 kills and 50 stalls, slow model

The run is a sequence of epochs. Each epoch starts one aegis-core (mode
alternating block/drop, rate and ring size from the seed) and a bridge, then
injects faults chosen by the seeded RNG until the epoch's time is up:
  crash        SIGKILL the bridge, restart it after a random delay
  stall        SIGSTOP the bridge for shorter or longer than the retransmit timeout, then SIGCONT
  failpoint    a burst of a libfiu site in the core (fiu-ctrl remote control)
Checks: after every fault, invariants on a live metrics scrape (offered =
accepted + dropped, depth and in-flight within capacity, counters monotonic,
no ring_full drop in block mode, no process dying on its own); at the end of
each epoch every fault is healed, verdicts must flow again (liveness), the core
is SIGTERMed and its summary and ledger must account for every transaction
exactly (block mode: lost == 0), and the core must have rejected no verdict:
the bridge is honest, so every reason the core refuses a verdict for
(`rejected_frames` by reason, and `unknown_seq`) counts 0; the totals are in
the report and summary.json (`rejections`). The fault and check logic is
fixtures/aegis_fixtures/chaos.py, shared with the Hypothesis chaos test.
Each epoch also checks liveness (fixtures/aegis_fixtures/liveness.py):
resent records within what the faults left outstanding (the core's
in-flight gauge read just before each fault, with slack), duplicate
verdicts within what was outstanding at the kills, and, in block mode with
--model-cost, goodput against the offered rate and the outages.

--model-cost D serves the slow test model (fixtures/aegis_fixtures/slow_model.py,
D of CPU per record) from every bridge and offers --load of its capacity,
measured alone at start. --soak runs block-mode epochs with that model
(100us and 0.5 unless given) and only bridge kills and stalls, until at
least --soak-kills kills and --soak-stalls stalls were injected, within the
budget (default 30m); not reaching them is a failure too.

A sampler scrapes the core's Prometheus endpoint every 250 ms. The timeline
(verdict rate, ring depth, in-flight, each fault) goes to timeline.json and is
drawn to timeline.png: people read faults off a picture faster than off a log.
summary.json holds the counts. Exit 0 when every check held, 1 on any failure
(the logs of the failing epoch are kept in the output directory), 2 on bad usage.

Real processes are not deterministic: --seed replays the same fault schedule
(kinds, order, durations, rates), not the same interleaving.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for p in (REPO / "src", REPO / "fixtures"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from aegis_bridge.durations import format_duration_ns  # noqa: E402
from aegis_fixtures.chaos import FIU_SITES, ChaosWorld  # noqa: E402
from aegis_fixtures.harness import Harness, SessionRoot, find_core_binary  # noqa: E402
from aegis_fixtures.observe import REJECT_REASONS, UNKNOWN_SEQ, try_scrape  # noqa: E402
from aegis_fixtures.processes import orphans  # noqa: E402

SAMPLE_S = 0.25          # the core's exporter refreshes every 200 ms
MIN_EPOCH_S = 6.0        # shorter epochs are all start-up and drain
EPOCH_TAIL_S = 10.0      # heal + liveness + SIGTERM drain, typically 1-5 s
SOAK_EPOCH_S = 60.0      # a soak's epochs: each core's summary is checked at least this often
SOAK_DEFAULT_BUDGET = "30m"
SOAK_DEFAULT_COST = "100us"
SOAK_DEFAULT_LOAD = 0.5


def parse_budget(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 90s, 2m)")
    seconds = float(m.group(1)) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r} (a budget below {MIN_EPOCH_S:.0f}s still "
                                         f"runs one {MIN_EPOCH_S:.0f}s epoch)")
    return seconds


class Timeline:
    """Samples and fault markers on one clock (seconds since the run started)."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.samples: list[dict] = []
        self.faults: list[dict] = []
        self.epochs: list[dict] = []
        self.lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def fault(self, kind: str, detail: str = "", start: float | None = None) -> dict:
        f = {"t": self.now() if start is None else start, "kind": kind, "detail": detail, "end": None}
        with self.lock:
            self.faults.append(f)
        return f

    def sample(self, s: dict) -> None:
        with self.lock:
            self.samples.append(s)


class Sampler(threading.Thread):
    """Scrapes the current core's metrics at a fixed pace (pacing, not synchronisation)."""

    def __init__(self, timeline: Timeline):
        super().__init__(daemon=True)
        self.timeline = timeline
        self.port: int | None = None
        self.epoch = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(SAMPLE_S):
            port, epoch = self.port, self.epoch
            m = try_scrape(port) if port else None
            if m is None:
                continue
            dropped = sum(m.by_label("aegis_dropped_total", "reason").values())
            self.timeline.sample({
                "t": self.timeline.now(), "epoch": epoch,
                "offered": m.value("aegis_offered_total", 0.0), "verdicts": m.value("aegis_verdicts_total", 0.0),
                "expired": m.value("aegis_expired_total", 0.0), "dropped": dropped,
                "retransmits": m.value("aegis_retransmits_total", 0.0),
                "duplicate_verdicts": m.value("aegis_duplicate_verdicts_total", 0.0),
                "ring_depth": m.value("aegis_ring_depth", 0.0), "in_flight": m.value("aegis_in_flight", 0.0),
            })


class RealChaos:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.tally: Counter = Counter()
        self.timeline = Timeline()
        self.sampler = Sampler(self.timeline)
        self.root = SessionRoot()
        self.failure: str | None = None
        self.epoch_results: list[dict] = []
        self.out = Path(args.out)
        self.model_path: Path | None = None
        self.model_capacity: float | None = None  # records/s, the slow model alone

    # -- faults --------------------------------------------------------

    def crash(self, world: ChaosWorld) -> None:
        if world.bridge_state() == "none":
            world.start_bridge()
            return
        self.timeline.fault("crash", "bridge SIGKILL")
        world.kill_bridge()
        delay = self.rng.choice([0.0, self.rng.uniform(0.05, 0.3), self.rng.uniform(0.5, 2.0)])
        time.sleep(delay)  # the restart delay is part of the fault schedule
        world.start_bridge()
        self.timeline.fault("restart", f"after {delay * 1000:.0f} ms")
        self.tally["restart delays under 300 ms" if delay < 0.3 else "restart delays over 300 ms"] += 1

    def stall(self, world: ChaosWorld, retransmit_s: float) -> None:
        if world.bridge_state() != "running":
            return self.crash(world)
        longer = self.rng.random() < 0.5
        hold = self.rng.uniform(1.5, 4.0) * retransmit_s if longer else self.rng.uniform(0.1, 0.6) * retransmit_s
        f = self.timeline.fault("stall", f"SIGSTOP {hold * 1000:.0f} ms ({'>' if longer else '<'} retransmit timeout)")
        world.stall_bridge()
        time.sleep(hold)  # the stall's length is the fault itself
        world.resume_bridge()
        f["end"] = self.timeline.now()
        self.tally["stalls longer than the retransmit timeout" if longer else "stalls shorter than the retransmit timeout"] += 1

    def failpoint(self, world: ChaosWorld) -> None:
        site = self.rng.choice(FIU_SITES)
        probability = self.rng.choice([0.05, 0.3, 1.0])
        f = self.timeline.fault("failpoint", f"{site} p={probability}")
        world.fiu_burst(site, probability)
        f["end"] = self.timeline.now()

    # -- epochs --------------------------------------------------------

    def soak_done(self) -> bool:
        return (self.tally["bridge SIGKILLs"] >= self.args.soak_kills
                and self.tally["bridge SIGSTOPs"] >= self.args.soak_stalls)

    def epoch(self, n: int, deadline: float, core_bin: Path, core_reason: str) -> None:
        # Both modes, every run of two epochs or more; a soak counts losses, so block mode only.
        mode = "block" if self.args.soak else ("block", "drop")[(n - 1) % 2]
        rate = self.rng.choice([5_000, 10_000, 20_000, 40_000])
        if self.model_capacity is not None:
            rate = int(self.args.load * self.model_capacity)  # drawn above all the same: the schedule stays aligned
        capacity = self.rng.choice([1024, 4096])
        retransmit_ms = self.rng.choice([200, 500])
        # Drop mode may expire payments: a TTL shorter than the stalls and
        # restarts below makes payments expire while the bridge owes them.
        ttl_ms = self.rng.choice([0, 300, 1000]) if mode == "drop" else 0
        # At most half of what the budget leaves after two tails, so even a one-minute
        # budget runs two epochs: one in each mode.
        cap = max(MIN_EPOCH_S, (self.args.budget - 2 * EPOCH_TAIL_S) / 2)
        length = min(self.rng.uniform(8, 25), cap, deadline - time.monotonic() - EPOCH_TAIL_S)
        if self.args.soak:
            length = min(SOAK_EPOCH_S, deadline - time.monotonic() - EPOCH_TAIL_S)
        h = Harness(self.root.new_test_dir(), core_bin, core_reason, replay=self.replay_line())
        world = ChaosWorld(h, self.tally, check_liveness=True, model_path=self.model_path,
                           capacity_per_s=self.model_capacity)
        info = {"epoch": n, "mode": mode, "rate": rate, "capacity": capacity, "retransmit_ms": retransmit_ms,
                "ttl_ms": ttl_ms,
                "start": self.timeline.now()}
        self.timeline.epochs.append(info)
        print(f"epoch {n}: {mode} mode, {rate}/s, ring {capacity}, retransmit {retransmit_ms} ms, "
              f"ttl {f'{ttl_ms} ms' if ttl_ms else 'none'}, "
              f"faults for {length:.0f}s", flush=True)
        try:
            world.start(mode=mode, rate=rate, capacity=capacity, retransmit=f"{retransmit_ms}ms",
                        ttl=f"{ttl_ms}ms" if ttl_ms else None)
            self.sampler.port, self.sampler.epoch = h.core_metrics_port, n
            end = time.monotonic() + max(length, 1.0)
            while time.monotonic() < end and not (self.args.soak and self.soak_done()):
                if self.args.soak:
                    kind = self.rng.choices(("crash", "stall"), weights=(2, 1))[0]
                else:
                    kind = self.rng.choices(("crash", "stall", "failpoint", "calm"), weights=(3, 3, 3, 1))[0]
                if kind == "crash":
                    self.crash(world)
                elif kind == "stall":
                    self.stall(world, retransmit_ms / 1000)
                elif kind == "failpoint":
                    self.failpoint(world)
                world.check()
                # Think time between faults: lets traffic recover so the plot shows each fault's effect.
                time.sleep(max(0.0, min(self.rng.uniform(0.3, 1.5), end - time.monotonic())))
            heal = self.timeline.fault("heal", "all faults off; waiting for verdicts, then SIGTERM")
            world.finish()
            heal["end"] = self.timeline.now()
            s = h.summary()
            live = world.liveness_results[-1]
            info.update(end=self.timeline.now(), offered=s["offered"], verdicts=s["verdicts"], expired=s["expired"],
                        dropped=sum(s["dropped"].values()), lost=s["lost"], late_verdicts=s["late_verdicts"],
                        retransmits=s["retransmits"], duplicate_verdicts=s["duplicate_verdicts"],
                        bridge_incarnations=s["bridge_incarnations"], liveness=live, result="pass")
            print(f"  epoch {n} ok: offered {s['offered']} = verdicts {s['verdicts']} + expired {s['expired']} + "
                  f"dropped {sum(s['dropped'].values())}; lost {s['lost']}; late verdicts {s['late_verdicts']}; "
                  f"{s['bridge_incarnations']} bridge incarnations; heal, drain and exact checks took "
                  f"{heal['end'] - heal['t']:.1f}s", flush=True)
            print(f"    rejections ok: {format_rejections(world.rejection_results[-1])}", flush=True)
            print(f"    liveness ok: resent {live['retransmits']} (bound {live['resend_bound']}), duplicate verdicts "
                  f"{live['duplicate_verdicts']} (bound {live['duplicate_bound']}) after {live['kills']} kills, "
                  f"{live['stalls']} stalls, {live['failpoints']} failpoint bursts, {live['outage_s']}s of outage"
                  + (f"; goodput {live['goodput_per_s']}/s (floor {live['goodput_floor_per_s']}/s, offered "
                     f"{live['offered_per_s']}/s)" if "goodput_per_s" in live else ""), flush=True)
        except BaseException as e:
            info.update(end=self.timeline.now(), result="FAIL")
            if isinstance(e, KeyboardInterrupt):
                self.failure = "interrupted"
            else:
                self.failure = f"epoch {n} ({mode}): {type(e).__name__}: {e}"
                self.timeline.fault("failure", str(e).splitlines()[0] if str(e) else type(e).__name__)
                traceback.print_exc()
                self.keep_logs(h, n)
            if isinstance(e, KeyboardInterrupt):
                raise
        finally:
            if world.rejection_results:  # read before they were judged: a failing epoch reports them too
                info["rejected"] = world.rejection_results[-1]
            self.sampler.port = None
            h.teardown()
            self.epoch_results.append(info)

    def prepare_model(self) -> None:
        """Writes the slow test model and measures its capacity alone, before any process starts."""
        from aegis_fixtures.slow_model import measure_capacity, write_slow_model

        model_dir = self.root.path / "model"
        model_dir.mkdir()
        self.model_path = write_slow_model(model_dir, self.args.model_cost)
        self.model_capacity = measure_capacity(self.model_path)
        rate = int(self.args.load * self.model_capacity)
        print(f"slow test model: {self.args.model_cost * 1e6:g} us/record, capacity {self.model_capacity:.0f} "
              f"records/s alone; offering {self.args.load:g} of it: {rate}/s", flush=True)
        self.tally["model capacity per s"] = int(self.model_capacity)

    def keep_logs(self, h: Harness, n: int) -> None:
        logs = self.out / f"epoch-{n}-logs"
        logs.mkdir(parents=True, exist_ok=True)
        for title, text in h.logs():
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", title)[:80]
            (logs / f"{name}.log").write_text(text)
        print(f"logs of the failing epoch: {logs}", file=sys.stderr)

    def run(self) -> int:
        core_bin, reason = find_core_binary()
        if core_bin is None:
            print(f"real_chaos: {reason}", file=sys.stderr)
            return 2
        self.out.mkdir(parents=True, exist_ok=True)
        budget = self.args.budget
        print(f"real chaos: seed {self.args.seed}, budget {budget:.0f}s, aegis-core {core_bin}, out {self.out}",
              flush=True)
        if self.args.model_cost is not None:
            self.prepare_model()
        start = time.monotonic()
        deadline = start + budget
        self.sampler.start()
        n = 0
        try:
            while self.failure is None and (n == 0 or deadline - time.monotonic() >= MIN_EPOCH_S + EPOCH_TAIL_S):
                if self.args.soak and self.soak_done():
                    break
                n += 1
                self.epoch(n, max(deadline, time.monotonic() + MIN_EPOCH_S + EPOCH_TAIL_S), core_bin, reason)
        except KeyboardInterrupt:
            pass
        finally:
            self.sampler.stop.set()
            self.sampler.join(timeout=5)
            leftover = orphans(self.root.marker)
            self.root.remove()
            if leftover and self.failure is None:
                self.failure = f"processes outlived their epoch: {leftover}"
            if self.args.soak and self.failure is None and not self.soak_done():
                self.failure = (f"soak incomplete: {self.tally['bridge SIGKILLs']} kills and "
                                f"{self.tally['bridge SIGSTOPs']} stalls within the {budget:.0f}s budget, "
                                f"{self.args.soak_kills} and {self.args.soak_stalls} wanted (raise --budget)")
        elapsed = time.monotonic() - start
        self.write(elapsed)
        self.print_summary(elapsed)
        return 0 if self.failure is None else 1

    # -- report ----------------------------------------------------------

    def replay_line(self) -> str:
        cmd = f"/usr/bin/python3 scripts/real_chaos.py --seed {self.args.seed} --budget {self.args.budget:g}s"
        if self.args.soak:
            cmd += f" --soak --soak-kills {self.args.soak_kills} --soak-stalls {self.args.soak_stalls}"
        if self.args.model_cost is not None:
            cmd += f" --model-cost {format_duration_ns(round(self.args.model_cost * 1e9))} --load {self.args.load:g}"
        if self.args.core_bin:
            cmd += f" --core-bin {self.args.core_bin}"
        return cmd

    def rejection_totals(self) -> dict[str, int]:
        """Every reason the core refuses a verdict for, summed over the epochs whose summary was read."""
        totals = dict.fromkeys((*REJECT_REASONS, UNKNOWN_SEQ), 0)
        for e in self.epoch_results:
            for reason, count in e.get("rejected", {}).items():
                totals[reason] += count
        return totals

    def write(self, elapsed: float) -> None:
        faults = Counter(f["kind"] for f in self.timeline.faults if f["kind"] not in ("heal", "failure", "restart"))
        summary = {
            "seed": self.args.seed, "budget_s": self.args.budget, "elapsed_s": elapsed,
            "result": "pass" if self.failure is None else "fail", "failure": self.failure,
            "epochs": self.epoch_results, "faults_injected": dict(faults), "tally": dict(self.tally),
            "invariant_checks": self.tally["invariant checks"], "summaries_checked": self.tally["summaries checked"],
            "transactions_accounted": self.tally["transactions accounted"], "replay": self.replay_line(),
            "liveness_checks": self.tally["liveness checks"],
            "rejection_checks": self.tally["rejection checks"], "rejections": self.rejection_totals(),
            "model": None if self.model_path is None else {
                "cost_us": self.args.model_cost * 1e6, "capacity_per_s": self.model_capacity, "load": self.args.load},
            "soak": None if not self.args.soak else {
                "kills_wanted": self.args.soak_kills, "stalls_wanted": self.args.soak_stalls,
                "kills": self.tally["bridge SIGKILLs"], "stalls": self.tally["bridge SIGSTOPs"]},
            "timeline_png": str(self.out / "timeline.png"),
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (self.out / "timeline.json").write_text(json.dumps(
            {"samples": self.timeline.samples, "faults": self.timeline.faults, "epochs": self.timeline.epochs}) + "\n")
        render_png(self.timeline, self.out / "timeline.png",
                   f"aegis real-process chaos, seed {self.args.seed}: {len(self.epoch_results)} epoch(s), "
                   f"{sum(faults.values())} faults, {'all checks held' if self.failure is None else 'FAILED'}")

    def print_summary(self, elapsed: float) -> None:
        t = self.tally
        modes = ", ".join(f"{e['mode']}" for e in self.epoch_results)
        fiu = {k[len("fiu burst "):]: v for k, v in t.items() if k.startswith("fiu burst ")}
        print(f"\nreal chaos summary: seed {self.args.seed}, {elapsed:.0f}s, {len(self.epoch_results)} epoch(s) ({modes})")
        print(f"  injected: {t['bridge SIGKILLs']} bridge SIGKILLs and restarts, "
              f"{t['bridge SIGSTOPs']} stalls ({t['stalls shorter than the retransmit timeout']} shorter, "
              f"{t['stalls longer than the retransmit timeout']} longer than the retransmit timeout), "
              f"{sum(fiu.values())} failpoint bursts {dict(sorted(fiu.items()))}")
        print(f"  checked: {t['invariant checks']} invariant checks on live metrics, "
              f"{t['summaries checked']} summaries + ledgers exactly (identity; block mode lost == 0), "
              f"{t['transactions accounted']} transactions accounted for, "
              f"{t['liveness checks']} epochs within the liveness bounds (resends, duplicate verdicts"
              f"{', goodput' if self.model_path is not None else ''})")
        if self.model_path is not None:
            print(f"  model: slow test model {self.args.model_cost * 1e6:g} us/record, capacity "
                  f"{self.model_capacity:.0f}/s alone, offered {self.args.load:g} of it")
        print(f"  rejections: {format_rejections(self.rejection_totals())} in {t['rejection checks']} epoch "
              f"summaries (an honest bridge causes none; every reason must be 0)")
        resent = sum(e.get("retransmits", 0) for e in self.epoch_results)
        dups = sum(e.get("duplicate_verdicts", 0) for e in self.epoch_results)
        print(f"  liveness: {resent} records resent and {dups} duplicate verdicts in all "
              f"(bounds per epoch in summary.json)")
        if self.args.soak:
            print(f"  soak: {t['bridge SIGKILLs']} bridge SIGKILLs (wanted {self.args.soak_kills}) and "
                  f"{t['bridge SIGSTOPs']} stalls (wanted {self.args.soak_stalls})")
        print(f"  timeline: {self.out / 'timeline.png'} (data: {self.out / 'timeline.json'}, counts: {self.out / 'summary.json'})")
        print("  result: PASS" if self.failure is None else f"  result: FAIL: {self.failure}")
        print(f"  replay (same fault schedule): {self.replay_line()}")


def format_rejections(counts: dict[str, int]) -> str:
    """'0 rejected verdicts', or the total and each reason that is not 0."""
    total = sum(counts.values())
    if total == 0:
        return f"0 rejected verdicts (all {len(counts)} reasons 0)"
    return f"{total} rejected: " + ", ".join(f"{r} {n}" for r, n in counts.items() if n)


def render_png(tl: Timeline, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    # Rates from consecutive samples of one core (counters restart with each epoch's core).
    for epoch in sorted({s["epoch"] for s in tl.samples}):
        ss = [s for s in tl.samples if s["epoch"] == epoch]
        ts, vr, orate, rr = [], [], [], []
        for a, b in zip(ss, ss[1:]):
            dt = b["t"] - a["t"]
            if dt <= 0:
                continue
            ts.append(b["t"])
            vr.append((b["verdicts"] - a["verdicts"]) / dt)
            orate.append((b["offered"] - a["offered"]) / dt)
            rr.append((b["retransmits"] - a["retransmits"]) / dt)
        first = epoch == min(s["epoch"] for s in tl.samples)
        top.plot(ts, orate, color="0.6", lw=1, label="offered/s" if first else None)
        top.plot(ts, vr, color="tab:blue", lw=1.5, label="verdicts/s" if first else None)
        # Resends are load: a storm shows here as a red band far above the offered rate.
        top.plot(ts, rr, color="tab:red", lw=1, ls="--", label="resent/s" if first else None)
        bottom.plot([s["t"] for s in ss], [s["ring_depth"] for s in ss], color="tab:green", lw=1.3,
                    label="ring depth" if first else None)
        bottom.plot([s["t"] for s in ss], [s["in_flight"] for s in ss], color="tab:red", lw=1, ls="--",
                    label="in flight" if first else None)
    colors = {"stall": "orange", "failpoint": "mediumpurple", "heal": "palegreen"}
    for f in tl.faults:
        for ax in (top, bottom):
            if f["kind"] == "crash":
                ax.axvline(f["t"], color="crimson", lw=1.2, alpha=0.9)
            elif f["kind"] == "restart":
                ax.axvline(f["t"], color="crimson", lw=0.8, ls=":", alpha=0.7)
            elif f["kind"] == "failure":
                ax.axvline(f["t"], color="black", lw=2.5)
            elif f["kind"] in colors:
                ax.axvspan(f["t"], f["end"] if f["end"] is not None else f["t"] + 0.05, color=colors[f["kind"]],
                           alpha=0.35, lw=0)
    for e in tl.epochs:
        for ax in (top, bottom):
            ax.axvline(e["start"], color="0.3", lw=1, ls="--")
        top.annotate(f"epoch {e['epoch']}: {e['mode']} {e['rate'] / 1000:g}k/s ring {e['capacity']}",
                     (e["start"], 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                     textcoords="offset points", fontsize=8, color="0.2")
    top.set_ylabel("transactions / s")
    bottom.set_ylabel("entries")
    bottom.set_xlabel("seconds since start")
    top.set_title(title, fontsize=11)
    markers = [Line2D([], [], color="crimson", lw=1.2, label="bridge SIGKILL"),
               Line2D([], [], color="crimson", lw=0.8, ls=":", label="bridge restart"),
               Patch(color="orange", alpha=0.35, label="bridge stalled (SIGSTOP)"),
               Patch(color="mediumpurple", alpha=0.35, label="failpoint burst (fiu)"),
               Patch(color="palegreen", alpha=0.35, label="heal + drain"),
               Line2D([], [], color="0.3", ls="--", label="new epoch (new core)")]
    top.legend(handles=top.get_legend_handles_labels()[0] + markers, loc="upper right", fontsize=8, ncol=2)
    bottom.legend(loc="upper right", fontsize=8)
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def model_cost(text: str) -> float:
    from aegis_fixtures.slow_model import parse_cost

    seconds = parse_cost(text)
    if seconds > 0.1:
        raise argparse.ArgumentTypeError(f"{text!r}: at most 100ms per record")
    return seconds


def load_share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 1]: a share of the model's capacity")
    return value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=parse_budget, default=None,
                    help=f"wall-clock budget, e.g. 60s, 2m (default 60s; {SOAK_DEFAULT_BUDGET} with --soak)")
    ap.add_argument("--seed", type=int, default=None, help="fault-schedule seed (default: random, printed)")
    ap.add_argument("--out", default="chaos-out/real", help="directory for timeline.png, timeline.json, summary.json")
    ap.add_argument("--core-bin", default=None, help="aegis-core to run (default: $AEGIS_CORE_BIN, build/release, build/*)")
    ap.add_argument("--model-cost", type=model_cost, default=None, metavar="D",
                    help="serve the slow test model costing D per record (e.g. 100us) and offer --load of its "
                         "capacity (needs scikit-learn, which loads pickled models)")
    ap.add_argument("--load", type=load_share, default=None,
                    help=f"offered rate as a share of the slow model's capacity, 0..1 (default {SOAK_DEFAULT_LOAD})")
    ap.add_argument("--soak", action="store_true",
                    help="block mode, kills and stalls only, until --soak-kills and --soak-stalls are reached "
                         f"(slow model {SOAK_DEFAULT_COST} at {SOAK_DEFAULT_LOAD} unless given)")
    ap.add_argument("--soak-kills", type=int, default=100, metavar="N", help="bridge SIGKILLs a soak needs (100)")
    ap.add_argument("--soak-stalls", type=int, default=50, metavar="N", help="bridge stalls a soak needs (50)")
    args = ap.parse_args(argv)
    if args.load is not None and args.model_cost is None and not args.soak:
        ap.error("--load needs --model-cost (a share of the slow model's capacity)")
    if args.soak and args.model_cost is None:
        args.model_cost = model_cost(SOAK_DEFAULT_COST)
    if args.load is None:
        args.load = SOAK_DEFAULT_LOAD
    if args.budget is None:
        args.budget = parse_budget(SOAK_DEFAULT_BUDGET if args.soak else "60s")
    if args.model_cost is not None:
        import importlib.util

        if importlib.util.find_spec("sklearn") is None:
            ap.error("--model-cost: the bridge loads pickled models only where scikit-learn is installed "
                     "(Debian: python3-sklearn)")
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1 << 32)
    if args.core_bin:
        os.environ["AEGIS_CORE_BIN"] = str(Path(args.core_bin).resolve())
    return RealChaos(args).run()


if __name__ == "__main__":
    sys.exit(main())
