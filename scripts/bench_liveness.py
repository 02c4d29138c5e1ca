#!/usr/bin/python3
"""Liveness benchmark: aegis-core into the real bridge serving the slow test model, beside the model's own capacity.

Usage:
    /usr/bin/python3 scripts/bench_liveness.py                     # the full matrix, ~2 minutes
    /usr/bin/python3 scripts/bench_liveness.py --costs 100us --loads 0.5 --reps 3
    (make bench runs it through scripts/run_benchmarks.sh, after bench_e2e.py)

The matrix: for each model cost (--costs, default 20us,100us,500us per
record) the slow test model (fixtures/aegis_fixtures/slow_model.py, a
busy-wait holding the CPU and the GIL like inference) is timed alone in
full 1024-record batches: its capacity, the peer every row of that cost is
judged against, measured in the same run just before that cost's rows. Then,
for each load (--loads, default 0.5 and 0.9 of that capacity) and each fault
(none; one bridge SIGKILL when a third of the transactions are verdicted,
the next bridge started at once), one run: a fresh bridge (python -m
aegis_bridge --model the slow model, its default flags) and aegis-core in
block mode offering `load x capacity` per second open loop for --duration
seconds (--start-after-hello, so the bridge's start is not counted).

What each row reports, from the core's summary unless said otherwise:
  offered/s     offered / produce_s
  goodput/s     verdicts per second over the run (`throughput_per_s`: verdicts /
                (last verdict - start)); duplicates are not verdicts
  resent        records sent again (`retransmits`)
  outst@kill    the core's in-flight gauge (accepted, no verdict: an upper bound
                on what the killed bridge held), from a scrape taken just after
                the exporter refreshed, right before the SIGKILL
  restart       SIGKILL -> the new bridge's start line (its HELLO follows its warm-up)
  p99           offload -> verdict p99 (`latency_us`), from each transaction's
                intended send time
  batch         one batch = the records the bridge takes in one wake-up at that
                load: its records scored / wake-ups that scored (bridge metrics),
                shown as records per wake-up; its service time = the bridge's
                main-thread CPU time (/proc/PID/task/PID/schedstat) over the run
                / those wake-ups: receive, decode, dedupe, score, encode and send,
                measured, not modelled. CPU time, not wall time, so time the
                thread waited for a CPU is not counted as service.
  busy          that CPU time / the run's length (the per-run line adds the
                thread's time runnable without a CPU, from the same schedstat)
  lost          `lost` (accepted ids without a terminal state); any loss fails
  other         CPU other processes used during the run, as a share of the
                machine (/proc/stat busy time less ours); the per-run line adds
                the hypervisor's steal time. Figures with `other` above a few
                per cent measure the neighbours too.

Targets (a missed one prints MISSED and does not fail the run; loss and
crashes do):
  goodput   goodput/s >= 95 % of offered/s, every row
  resends   resent <= 1.1 x outstanding at the kill; 0 without a fault
  latency   50 % load, no fault: p99 <= 5 x one batch's service time
  loss      0 lost in every row
  no regression: the flat-out row of this run (e2e_throughput, written by
            bench_e2e.py earlier in `make bench`) >= 90 % of a committed
            reference figure (FLAT_OUT_REFERENCE below, its run named), with a
            note when this machine's CPU family is not the reference's.

With --reps N every row is run N times (capacity measured again each time)
and each figure is the median over reps. Rows are appended to --json
(bench/bench_results.hpp's schema); the raw repetitions go to
bench-liveness.json beside it (with the capacity runs, the load average and
the SIGKILL-to-reaped time of each kill). Exit 0 unless a run crashed or lost a
transaction (1), or on a usage error (2). Processes run in this driver's
session (one scheduler autogroup, as in bench_e2e.py) and are killed with it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "scripts", ROOT / "src", ROOT / "fixtures"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from bench_e2e import _die_with_parent, _positive, append_rows, row, stop, wait_cpu_s  # noqa: E402
from aegis_fixtures.liveness import GOODPUT_SHARE, RESEND_SLACK  # noqa: E402
from aegis_fixtures.observe import Metrics, scrape_text, try_scrape  # noqa: E402
from aegis_fixtures.waiting import wait_value  # noqa: E402

PYTHON = "/usr/bin/python3"
LATENCY_BATCHES = 5.0       # p99 at 50 % load, no fault, within this many batch service times
LATENCY_LOAD = 0.5          # the load the latency target applies to
REGRESSION_SHARE = 0.9      # the flat-out row may fall by at most 10 %
# The committed flat-out figure the no-regression target compares with, and its run.
FLAT_OUT_REFERENCE = 9.16e6
FLAT_OUT_REFERENCE_RUN = ("docs/E2E.md, host B: make bench of 369e76b, 2026-11-26 23:55 UTC, "
                          "2-vCPU AMD EPYC family 26 VM")
FLAT_OUT_REFERENCE_CPU_FAMILY = "26"  # a figure from another host kind says little (docs/E2E.md, "How the figures depend on the host")
KILL_AT = 1 / 3             # the kill comes once this share of the transactions is verdicted
WARM_IDLE_CPU_NS = 2_000_000  # a bridge whose main thread used less than this in 100 ms has warmed up
DEFAULT_COSTS = "20us,100us,500us"
DEFAULT_LOADS = "0.5,0.9"
BUSY_LOADAVG = 0.7          # a 1-minute load average above this at the start: something else runs
MIN_COUNT = 2000            # transactions per run at least, for a p99 with 20 samples above it

_children: list[subprocess.Popen] = []


# -- processes ---------------------------------------------------------------

def spawn(argv, log_path: Path) -> subprocess.Popen:
    """A child in its own process group in this session, output to log_path, SIGKILLed if we die.

    Not aegis_fixtures.processes.Proc: that starts each child in a new
    session, i.e. a scheduler autogroup of its own, and core and bridge in
    two autogroups stall each other for tens of milliseconds (docs/E2E.md,
    "Autogroups"), which a p99 would measure.
    """
    # fixtures/ on the path: the slow model is a pickle of a class kept there.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(ROOT / "src"), str(ROOT / "fixtures"))))
    with open(log_path, "w") as log:
        p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             process_group=0, env=env, preexec_fn=_die_with_parent)
    _children.append(p)
    return p


def reap(p: subprocess.Popen) -> None:
    stop(p, grace_s=5.0)
    if p in _children:
        _children.remove(p)


def kill_all_children() -> None:
    for p in list(_children):
        reap(p)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


class RunFailed(RuntimeError):
    """A process crashed or a transaction was lost: the benchmark fails (exit 1)."""


def wait_log(path: Path, pattern: str, proc: subprocess.Popen, timeout_s: float) -> re.Match:
    """The first match of `pattern` in the log, once it is there; fails if proc exits first."""
    def check():
        m = re.search(pattern, path.read_text(errors="replace")) if path.exists() else None
        if m:
            return m
        if proc.poll() is not None:
            raise RunFailed(f"{proc.args[0]} exited {proc.returncode} before printing /{pattern}/; see {path}")
        return None
    return wait_value(check, timeout_s, f"/{pattern}/ in {path}", interval_s=0.01)


class OtherCpu:
    """CPU time the rest of the machine used while this driver's runs ran: busy time in /proc/stat
    less this process's and its reaped children's (core and bridges). A share of nproc x wall time."""

    def __init__(self):
        self.tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
        self.start = self._now()

    def _now(self) -> tuple[float, float, float, float]:
        cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        assert cpu[0] == "cpu", "/proc/stat opens with the all-CPU line"
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in cpu[1:9])
        t = os.times()
        return ((user + nice + system + irq + softirq) * self.tick_s,
                t.user + t.system + t.children_user + t.children_system, time.monotonic(), steal * self.tick_s)

    def share(self) -> float:
        busy, ours, wall, _ = self._now()
        other = (busy - self.start[0]) - (ours - self.start[1])
        return max(0.0, other) / max((wall - self.start[2]) * (os.cpu_count() or 1), 1e-9)

    def steal_share(self) -> float:
        """The hypervisor's steal time over the same span (CPU the VM wanted and did not get)."""
        _, _, wall, steal = self._now()
        return max(0.0, steal - self.start[3]) / max((wall - self.start[2]) * (os.cpu_count() or 1), 1e-9)


def main_thread_schedstat(pid: int) -> tuple[int, int]:
    """(on-CPU, runnable but waiting for a CPU) time of the process's main thread (the bridge's loop), in ns."""
    fields = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    assert len(fields) == 3, "schedstat: run time, wait time, timeslices"
    return int(fields[0]), int(fields[1])


# -- one bridge's share of a run ------------------------------------------------

@dataclass
class BridgeWindow:
    """A bridge's main-thread CPU, wake-ups that scored and records scored over the part of a run it served."""

    cpu_ns: int = 0
    runq_ns: int = 0           # runnable, waiting for a CPU
    batches: int = 0
    records: int = 0
    skipped: int = 0           # records the bridge had already answered (a resend it did not need)


class Bridge:
    def __init__(self, run_dir: Path, n: int, ep: Path, model: Path):
        self.log = run_dir / f"bridge{n}.log"
        self.proc = spawn([PYTHON, "-m", "aegis_bridge", "--offload", f"ipc://{ep}/offload.sock",
                           "--verdicts", f"ipc://{ep}/verdicts.sock", "--model", model, "--metrics-port", "0"],
                          self.log)
        self.started = time.monotonic()
        self.metrics_port = 0
        self.at_start = (0, 0)  # main thread (on-CPU, run-queue) ns at the start line

    def wait_started(self, timeout_s: float = 60.0) -> float:
        """Waits for the start line (sockets connected, before the warm-up); returns seconds since spawn."""
        m = wait_log(self.log, r"incarnation 0x[0-9a-f]+ .*metrics http://127\.0\.0\.1:(\d+)/metrics",
                     self.proc, timeout_s)
        self.metrics_port = int(m.group(1))
        self.at_start = main_thread_schedstat(self.proc.pid)
        return time.monotonic() - self.started

    def wait_warm(self, timeout_s: float = 30.0) -> BridgeWindow:
        """Waits until the warm-up is over (the loop idles); returns the main thread's figures then."""
        def idle():
            before = main_thread_schedstat(self.proc.pid)
            time.sleep(0.1)
            after = main_thread_schedstat(self.proc.pid)
            return (after,) if after[0] - before[0] < WARM_IDLE_CPU_NS else None
        cpu_ns, runq_ns = wait_value(idle, timeout_s, "the bridge's warm-up to end", interval_s=0.01)[0]
        return BridgeWindow(cpu_ns=cpu_ns, runq_ns=runq_ns)

    def sample(self) -> BridgeWindow:
        """Cumulative figures now (metrics scrape, then schedstat)."""
        if self.proc.poll() is not None:
            raise RunFailed(f"bridge exited {self.proc.returncode} on its own; see {self.log}")
        m = try_scrape(self.metrics_port)
        if m is None:
            raise RunFailed(f"bridge metrics on port {self.metrics_port} unreachable; see {self.log}")
        cpu_ns, runq_ns = main_thread_schedstat(self.proc.pid)
        return BridgeWindow(cpu_ns=cpu_ns, runq_ns=runq_ns,
                            batches=int(m.value("aegis_bridge_batches_total", 0.0)),
                            records=int(m.value("aegis_bridge_records_scored_total", 0.0)),
                            skipped=int(m.value("aegis_bridge_duplicates_skipped_total", 0.0)))


def window(start: BridgeWindow, end: BridgeWindow) -> BridgeWindow:
    w = BridgeWindow(end.cpu_ns - start.cpu_ns, end.runq_ns - start.runq_ns, end.batches - start.batches,
                     end.records - start.records, end.skipped - start.skipped)
    assert w.cpu_ns >= 0 and w.runq_ns >= 0, "schedstat times only grow"
    assert w.batches >= 0 and w.records >= 0 and w.skipped >= 0, "counters only grow"
    return w


# -- one run ---------------------------------------------------------------------

@dataclass
class RunResult:
    """One run's figures (see the module docstring for each)."""

    cost_us: float
    load: float
    fault: str                 # "none" or "kill"
    capacity_per_s: float
    rate: int
    count: int
    offered_per_s: float = 0.0
    goodput_per_s: float = 0.0
    resent: int = 0
    outstanding_at_kill: int = 0
    restart_s: float = 0.0
    kill_to_reaped_ms: float = 0.0  # SIGKILL -> the bridge reaped (its sockets are closed by then)
    p50_us: float = 0.0
    p99_us: float = 0.0
    batch_records: float = 0.0
    batch_service_us: float = 0.0
    bridge_busy: float = 0.0   # wake-ups x service time / the run's length: the bridge's main thread's load
    bridge_runq: float = 0.0   # the same thread's time runnable but without a CPU / the run's length
    bridge_skipped: int = 0    # resent records a bridge skipped as already answered (bridge counters)
    other_cpu: float = 0.0     # share of the machine other processes used during the run (OtherCpu)
    steal: float = 0.0         # share of the machine's time the hypervisor stole during the run
    lost: int = 0
    verdicts: int = 0
    offered: int = 0
    duplicate_verdicts: int = 0
    bridge_incarnations: int = 0
    produce_s: float = 0.0
    drain_s: float = 0.0
    core_exit: int = 0
    failure: str = ""          # why this run failed (crash or loss), "" if it did not

    def excess_ms(self) -> float:
        """Records resent beyond the in-flight gauge, in milliseconds of offered load."""
        return max(0, self.resent - self.outstanding_at_kill) / max(self.offered_per_s, 1e-9) * 1e3


class Runner:
    def __init__(self, core: Path, tmp: Path, duration_s: float):
        self.core = core
        self.tmp = tmp
        self.duration_s = duration_s
        self.runs = 0
        self.keep = False  # a failed run's logs stay for reading

    def _run_dir(self) -> Path:
        self.runs += 1
        d = self.tmp / f"r{self.runs}"
        d.mkdir(mode=0o700)
        return d

    def run(self, model: Path, cost_s: float, capacity: float, load: float, fault: str) -> RunResult:
        other = OtherCpu()
        r = self._run(model, cost_s, capacity, load, fault)
        r.other_cpu = other.share()  # after _run reaped every child, so their CPU is ours
        r.steal = other.steal_share()
        return r

    def _run(self, model: Path, cost_s: float, capacity: float, load: float, fault: str) -> RunResult:
        rate = int(load * capacity)
        count = max(MIN_COUNT, int(rate * self.duration_s))
        if rate < 50:
            raise RunFailed(f"the {cost_s * 1e6:g} us model scores only {capacity:.0f} records/s alone: "
                            f"is the machine overloaded?")
        r = RunResult(cost_us=round(cost_s * 1e6, 3), load=load, fault=fault, capacity_per_s=capacity, rate=rate,
                      count=count)
        d = self._run_dir()
        ep = d / "ep"  # short: an ipc path holds at most 107 bytes
        ep.mkdir(mode=0o700)
        bridges = [Bridge(d, 1, ep, model)]
        core = None
        try:
            b1 = bridges[0]
            b1.wait_started()
            b1_start = b1.wait_warm()
            warm_up_ns = b1_start.cpu_ns - b1.at_start[0]  # to take off the next bridge's figures
            summary = d / "summary.json"
            # The drain may take as long as the load (a run that keeps up needs milliseconds).
            core = spawn([self.core, "--endpoint-dir", ep, "--mode", "block", "--summary-json", summary,
                          "--count", count, "--rate", rate, "--start-after-hello", "--bridge-wait-report", "0",
                          "--metrics-port", "0", "--drain-timeout", f"{int(self.duration_s * 4 + 30)}s"],
                         d / "core.log")
            core_port = int(wait_log(d / "core.log", r"metrics: http://127\.0\.0\.1:(\d+)/metrics", core, 30).group(1))
            served = []
            if fault == "kill":
                served.append(window(b1_start, self._kill_and_restart(r, d, ep, model, core, core_port, bridges)))
            rc, _ = wait_cpu_s(core, self.duration_s * 8 + 120)
            last = bridges[-1]
            end = last.sample()
            if fault == "kill":
                # The new bridge's figures from its start line, less the warm-up its predecessor's took.
                served.append(window(BridgeWindow(cpu_ns=min(last.at_start[0] + warm_up_ns, end.cpu_ns),
                                                  runq_ns=last.at_start[1]), end))
            else:
                served.append(window(b1_start, end))
            self._read_summary(r, summary, rc)
            if r.failure:
                print(f"bench_liveness: {row_name(r)} FAILED: {r.failure}; logs kept in {d}", file=sys.stderr,
                      flush=True)
                self.keep = True
            r.bridge_skipped = sum(w.skipped for w in served)
            batches = sum(w.batches for w in served)
            if batches:
                r.batch_records = sum(w.records for w in served) / batches
                r.batch_service_us = sum(w.cpu_ns for w in served) / batches / 1e3
                r.bridge_busy = sum(w.cpu_ns for w in served) / 1e9 / max(r.produce_s + r.drain_s, 1e-9)
                r.bridge_runq = sum(w.runq_ns for w in served) / 1e9 / max(r.produce_s + r.drain_s, 1e-9)
            return r
        except Exception:
            print(f"bench_liveness: run failed; logs kept in {d}", file=sys.stderr, flush=True)
            self.keep = True
            raise
        finally:
            if core is not None:
                reap(core)
            for b in bridges:
                reap(b.proc)

    def _kill_and_restart(self, r: RunResult, d: Path, ep: Path, model: Path, core, core_port: int,
                          bridges: list) -> BridgeWindow:
        """Waits for a third of the verdicts, SIGKILLs the bridge, starts the next; returns the victim's last sample."""
        target = int(r.count * KILL_AT)

        def verdicts_reached():
            if core.poll() is not None:
                raise RunFailed(f"aegis-core exited {core.returncode} before the kill; see {d}/core.log")
            # A regular expression, not a full parse: this polls while the pipeline runs on the same CPUs.
            m = re.search(r"^aegis_verdicts_total (\S+)$", scrape_text(core_port), re.M)
            return m is not None and float(m.group(1)) >= target
        wait_value(verdicts_reached, self.duration_s * 4 + 60, f"{target} verdicts before the kill", interval_s=0.05)
        victim = bridges[-1]
        last = victim.sample()
        # The in-flight gauge from a scrape just after the exporter's refresh
        # (every 200 ms), so it is milliseconds old when the kill lands.
        before = scrape_text(core_port)

        def refreshed():
            text = scrape_text(core_port)
            return text if text != before else None
        text = wait_value(refreshed, 10, "the core's metrics to refresh", interval_s=0.002)
        os.killpg(victim.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.proc.wait()
        r.kill_to_reaped_ms = (time.monotonic() - killed_at) * 1e3
        bridges.append(Bridge(d, len(bridges) + 1, ep, model))
        m = Metrics(text)
        r.outstanding_at_kill = int(m.value("aegis_in_flight", 0.0))
        bridges[-1].wait_started()
        r.restart_s = time.monotonic() - killed_at
        return last

    def _read_summary(self, r: RunResult, path: Path, rc: int) -> None:
        """Fills `r` from the core's summary; a loss or a bad exit code is r.failure, a missing summary raises."""
        if not path.exists():
            raise RunFailed(f"aegis-core exited {rc} without a summary; see {path.parent}/core.log")
        s = json.loads(path.read_text())
        r.core_exit = rc
        r.offered, r.verdicts, r.lost = s["offered"], s["verdicts"], s["lost"]
        r.produce_s, r.drain_s = s["produce_s"], s["drain_s"]
        r.offered_per_s = s["offered"] / s["produce_s"] if s["produce_s"] > 0 else 0.0
        r.goodput_per_s = float(s["throughput_per_s"])
        r.resent = s["retransmits"]
        r.p50_us, r.p99_us = s["latency_us"]["p50"], s["latency_us"]["p99"]
        r.duplicate_verdicts = s["duplicate_verdicts"]
        r.bridge_incarnations = s["bridge_incarnations"]
        if rc != 0 or s["lost"] != 0 or s["verdicts"] != s["offered"] or s["offered"] != r.count:
            r.failure = (f"aegis-core exit {rc}, lost {s['lost']}, verdicts {s['verdicts']} of {s['offered']} "
                         f"offered ({r.count} asked)")
        assert r.failure or (r.lost == 0 and r.verdicts == r.count), "a run without failure verdicted everything"


# -- figures, targets and rows ----------------------------------------------------

def median_result(reps: list[RunResult]) -> RunResult:
    """Each numeric figure's median over reps; lost is the worst rep's."""
    first = reps[0]
    out = RunResult(cost_us=first.cost_us, load=first.load, fault=first.fault, capacity_per_s=0.0, rate=0, count=0)
    for name, value in asdict(first).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in ("cost_us", "load"):
            med = statistics.median(getattr(x, name) for x in reps)
            setattr(out, name, type(value)(med) if isinstance(value, int) else med)
    out.lost = max(x.lost for x in reps)
    out.failure = "; ".join(x.failure for x in reps if x.failure)
    return out


def targets(r: RunResult) -> dict:
    """met / MISSED (or '-' where a target does not apply) for each of the row's targets."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"
    resend_bound = RESEND_SLACK * r.outstanding_at_kill if r.fault == "kill" else 0
    latency = "-"
    if r.fault == "none" and abs(r.load - LATENCY_LOAD) < 1e-9:
        latency = verdict(r.batch_service_us > 0 and r.p99_us <= LATENCY_BATCHES * r.batch_service_us)
    return {"goodput": verdict(r.offered_per_s > 0 and r.goodput_per_s >= GOODPUT_SHARE * r.offered_per_s),
            "resends": verdict(r.resent <= resend_bound),
            "latency": latency,
            "loss": "met" if r.lost == 0 and not r.failure else "FAILED"}


def row_name(r: RunResult) -> str:
    return f"slow{r.cost_us:g}us_{round(r.load * 100)}pct_{r.fault}"


def json_rows(r: RunResult) -> list[dict]:
    name = row_name(r)
    return [
        row(name, "goodput_txn_per_s", "txn/s", r.goodput_per_s, "slow_model_capacity_alone", r.capacity_per_s,
            "higher"),
        row(name, "goodput_txn_per_s", "txn/s", r.goodput_per_s, "offered_txn_per_s", r.offered_per_s, "higher"),
        row(name, "resent_records", "records", float(r.resent), "outstanding_at_kill", float(r.outstanding_at_kill),
            "lower"),
        row(name, "offload_to_verdict_p99", "us", r.p99_us, "bridge_batch_service_time", r.batch_service_us, "lower"),
        row(name, "lost_txn", "txn", float(r.lost), "offered_txn", float(r.offered), "lower"),
    ]


def print_table(results: list[RunResult], reps: int) -> None:
    head = (f"{'cost':>6} {'load':>4} {'fault':<5} {'offered/s':>10} {'goodput/s':>10} {'good/off':>8} "
            f"{'capacity':>9} {'resent':>7} {'outst@kill':>10} {'res/outst':>9} {'restart':>7} {'p99':>9} "
            f"{'batch rec':>9} {'batch svc':>9} {'busy':>5} {'p99/batch':>9} {'lost':>4} {'other':>5}  {'goodput':<7} "
            f"{'resends':<7} {'latency':<7} {'loss':<6}")
    print(f"\nbench_liveness: {'median of ' + str(reps) + ' reps' if reps > 1 else '1 rep'} per row. capacity: "
          f"the slow model timed alone (the peer); batch: records per bridge wake-up and its main-thread CPU; "
          f"busy: that thread's CPU / the run's length; other: the machine's CPU other processes used meanwhile")
    print(head)
    print("-" * len(head))
    for r in results:
        t = targets(r)
        kill = r.fault == "kill"
        res_ratio = f"{r.resent / r.outstanding_at_kill:.2f}" if kill and r.outstanding_at_kill else "-"
        print(f"{r.cost_us:>4g}us {r.load * 100:>3.0f}% {r.fault:<5} {r.offered_per_s:>10,.0f} "
              f"{r.goodput_per_s:>10,.0f} {r.goodput_per_s / max(r.offered_per_s, 1e-9):>8.3f} "
              f"{r.capacity_per_s:>9,.0f} {r.resent:>7,} {(f'{r.outstanding_at_kill:,}' if kill else '-'):>10} "
              f"{res_ratio:>9} {(f'{r.restart_s:.2f}s' if kill else '-'):>7} {r.p99_us / 1e3:>7.2f}ms "
              f"{r.batch_records:>9.1f} {r.batch_service_us / 1e3:>7.2f}ms {r.bridge_busy:>5.0%} "
              f"{r.p99_us / max(r.batch_service_us, 1e-9):>9.1f} {r.lost:>4} {r.other_cpu:>5.0%}  "
              f"{t['goodput']:<7} {t['resends']:<7} "
              f"{t['latency']:<7} {t['loss']:<6}")


def flat_out_lines(json_path: Path, facts: dict) -> tuple[str, str]:
    """The no-regression target: (this run's flat-out row as bench_e2e.py wrote it, the target line)."""
    rows = json.loads(json_path.read_text()) if json_path.exists() and json_path.stat().st_size else []
    flat = [x for x in rows if x.get("name") == "e2e_throughput" and x.get("metric") == "verdicted_txn_per_s"]
    if not flat:
        return ("flat-out row of this run: none",
                f"  no regression: no e2e_throughput row in {json_path} (bench_e2e.py did not run before this "
                f"script): not measured")
    x = flat[-1]
    share = x["ours"] / FLAT_OUT_REFERENCE
    ok = "met" if share >= REGRESSION_SHARE else "MISSED"
    host = ""
    if facts["cpu_family"] != FLAT_OUT_REFERENCE_CPU_FAMILY:
        host = (f" -- NOTE: the reference comes from CPU family {FLAT_OUT_REFERENCE_CPU_FAMILY}, this machine is "
                f"family {facts['cpu_family']}: another host kind, so this compares hosts as much as code")
    return (f"flat-out row of this run, as is: {json.dumps(x)}",
            f"  no regression: flat out {x['ours'] / 1e6:.2f}M txn/s = {share:.2f} x the reference "
            f"{FLAT_OUT_REFERENCE / 1e6:.2f}M txn/s ({FLAT_OUT_REFERENCE_RUN}); target >= {REGRESSION_SHARE:.2f}: "
            f"{ok}{host}")


def print_targets(results: list[RunResult], json_path: Path, facts: dict) -> None:
    flat_row, flat_target = flat_out_lines(json_path, facts)
    print(flat_row)
    print("targets:")
    by = {"goodput": [], "resends": [], "latency": [], "loss": []}
    for r in results:
        for k, v in targets(r).items():
            if v != "-":
                by[k].append((row_name(r), v))
    texts = {
        "goodput": f"goodput/s >= {GOODPUT_SHARE:.0%} of offered/s, every row",
        "resends": f"resent <= {RESEND_SLACK} x in flight just before the kill; 0 without a fault",
        "latency": f"{LATENCY_LOAD:.0%} load, no fault: p99 <= {LATENCY_BATCHES:g} x one batch's service time "
                   f"(one batch = the records of one bridge wake-up at that load)",
        "loss": "0 lost in every row",
    }
    for k, text in texts.items():
        missed = [n for n, v in by[k] if v != "met"]
        if not by[k]:
            status = "not measured (no row it applies to)"
        elif missed:
            status = f"{'FAILED' if k == 'loss' else 'MISSED'} in {len(missed)} of {len(by[k])}: {', '.join(missed)}"
        else:
            status = f"met in all {len(by[k])}"
        print(f"  {k}: {text}: {status}")
        kills = [r for r in results if r.fault == "kill"]
        if k == "resends" and kills:
            # What the gauge cannot see: records sent between its reading and
            # the moment the dying bridge's socket closed.
            print(f"    (kill rows: resent beyond the gauge = {min(r.excess_ms() for r in kills):.1f}-"
                  f"{max(r.excess_ms() for r in kills):.1f} ms of offered load; SIGKILL -> bridge reaped "
                  f"{min(r.kill_to_reaped_ms for r in kills):.1f}-{max(r.kill_to_reaped_ms for r in kills):.1f} ms)")
    print(flat_target)


# -- command line -----------------------------------------------------------------

def _costs(text: str) -> list[float]:
    from aegis_fixtures.slow_model import parse_cost

    out = []
    for part in text.split(","):
        try:
            seconds = parse_cost(part.strip())
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{e} (costs are comma-separated, e.g. 20us,100us,500us)") from None
        if seconds > 0.01:
            raise argparse.ArgumentTypeError(f"{part!r}: at most 10ms per record (a run would take minutes)")
        out.append(seconds)
    if len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"{text!r} names a cost twice")
    return out


def _loads(text: str) -> list[float]:
    out = []
    for part in text.split(","):
        try:
            value = float(part.strip().rstrip("%")) / (100.0 if part.strip().endswith("%") else 1.0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected shares of capacity like 0.5,0.9 (or 50%,90%), got {text!r}") \
                from None
        if not 0 < value < 1:
            raise argparse.ArgumentTypeError(f"{part!r}: a load is a share of the model's capacity in (0, 1)")
        out.append(value)
    if len(set(out)) != len(out):
        raise argparse.ArgumentTypeError(f"{text!r} names a load twice")
    return out


def machine_facts() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()

    def field_of(key):
        m = re.search(rf"^{key}\s*:\s*(.*)$", cpuinfo, re.M)
        return m.group(1).strip() if m else "?"
    return {"nproc": os.cpu_count(), "cpu_model": field_of("model name"), "cpu_family": field_of("cpu family"),
            "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "loadavg_start": " ".join(Path("/proc/loadavg").read_text().split()[:3])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="See the module docstring (head -60 scripts/bench_liveness.py) and "
                                        "docs/E2E.md, 'Liveness rows', for what each column means.")
    ap.add_argument("--build", default="build/release", help="build directory holding src/aegis-core")
    ap.add_argument("--json", help="append rows here (default BUILD/bench-results.json)")
    ap.add_argument("--reps", type=_positive(int), default=1, help="runs per row; figures are medians (default 1)")
    ap.add_argument("--costs", type=_costs, default=DEFAULT_COSTS,
                    help=f"slow model costs per record, comma-separated (default {DEFAULT_COSTS})")
    ap.add_argument("--loads", type=_loads, default=DEFAULT_LOADS,
                    help=f"offered rates as shares of the model's capacity (default {DEFAULT_LOADS})")
    ap.add_argument("--duration", type=_positive(float), default=6.0,
                    help="seconds of offered load per run (default 6: at 90 %% load the spare 10 %% must clear a "
                         "bridge restart's backlog before the load ends)")
    args = ap.parse_args(argv)
    build = Path(args.build).resolve()
    core = build / "src" / "aegis-core"
    if not (core.is_file() and os.access(core, os.X_OK)):
        ap.error(f"{core} is missing (build it first)")
    json_path = Path(args.json) if args.json else build / "bench-results.json"
    if importlib.util.find_spec("sklearn") is None:
        print("bench_liveness: skipped: the bridge loads the slow test model (a pickle) only where scikit-learn "
              "is installed (Debian: python3-sklearn; scripts/bootstrap.sh)")
        return 0
    from aegis_fixtures.slow_model import measure_capacity, write_slow_model

    facts = machine_facts()
    print(f"bench_liveness: {facts['date_utc']}, nproc {facts['nproc']}, {facts['cpu_model']} family "
          f"{facts['cpu_family']}, load average {facts['loadavg_start']}; costs "
          f"{[f'{c * 1e6:g}us' for c in args.costs]}, loads {args.loads}, {args.duration:g} s of load per run, "
          f"{args.reps} rep(s)", flush=True)
    if float(facts["loadavg_start"].split()[0]) > BUSY_LOADAVG:
        print(f"bench_liveness: warning: the 1-minute load average is above {BUSY_LOADAVG}: something else is "
              f"running, and these figures measure it too", flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="aegis-lv-", dir="/tmp"))
    runner = Runner(core, tmp, args.duration)
    raw: dict = {"machine": facts, "duration_s": args.duration, "capacity": [], "reps": []}
    by_row: dict[tuple, list[RunResult]] = {}
    started = time.monotonic()
    try:
        for rep in range(1, args.reps + 1):
            for cost in args.costs:
                model = write_slow_model(tmp, cost)
                other = OtherCpu()
                capacity = measure_capacity(model)
                other_share = other.share()
                raw["capacity"].append({"rep": rep, "cost_us": cost * 1e6, "per_s": capacity, "other_cpu": other_share})
                print(f"  rep {rep}: {cost * 1e6:g} us model alone: {capacity:,.0f} records/s (other processes "
                      f"{other_share:.0%})", flush=True)
                for load in args.loads:
                    for fault in ("none", "kill"):
                        r = runner.run(model, cost, capacity, load, fault)
                        by_row.setdefault((cost, load, fault), []).append(r)
                        raw["reps"].append(asdict(r))
                        print(f"  rep {rep}: {row_name(r)}: offered {r.offered_per_s:,.0f}/s goodput "
                              f"{r.goodput_per_s:,.0f}/s resent {r.resent} (outstanding {r.outstanding_at_kill}) "
                              f"p99 {r.p99_us / 1e3:.2f} ms batch {r.batch_records:.1f} rec "
                              f"{r.batch_service_us / 1e3:.2f} ms busy {r.bridge_busy:.0%} (waiting for a CPU "
                              f"{r.bridge_runq:.0%}) lost {r.lost} "
                              f"other processes {r.other_cpu:.0%} steal {r.steal:.0%}"
                              + (f" restart {r.restart_s:.2f} s (SIGKILL -> reaped {r.kill_to_reaped_ms:.1f} ms; "
                                 f"resent beyond the gauge: {r.excess_ms():.1f} ms of offered load; "
                                 f"{r.duplicate_verdicts} duplicate verdicts, {r.bridge_skipped} resent records "
                                 f"the bridges skipped)"
                                 if fault == "kill" else ""), flush=True)
    except (RunFailed, AssertionError, subprocess.TimeoutExpired) as e:  # WaitTimeout is an AssertionError
        print(f"bench_liveness: FAILED (crash or hang): {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        kill_all_children()
        if not runner.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    results = [median_result(reps) for reps in by_row.values()]
    print_table(results, args.reps)
    rows = [x for r in results for x in json_rows(r)]
    append_rows(json_path, rows)
    print_targets(results, json_path, facts)
    raw["elapsed_s"] = time.monotonic() - started
    raw["machine"]["loadavg_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    (json_path.parent / "bench-liveness.json").write_text(json.dumps(raw, indent=2) + "\n")
    print(f"bench_liveness: {len(rows)} rows appended to {json_path} in {raw['elapsed_s']:.0f} s "
          f"(load average at the end {raw['machine']['loadavg_end']})")
    failed = [f"{row_name(r)}: {r.failure}" for r in results if r.failure]
    if failed:
        print("bench_liveness: FAILED (loss or crash): " + "; ".join(failed) + f"; logs kept in {tmp}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
