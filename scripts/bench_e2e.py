#!/usr/bin/python3
"""End-to-end benchmarks: aegis-core into the real Python bridge, beside their peers.

Usage:
    /usr/bin/python3 scripts/bench_e2e.py --build build/release --json build/release/bench-results.json
    (make bench runs it through scripts/run_benchmarks.sh; --quick for a smoke run)

What it measures, each repetition alternating ours and the peer in the same run:
  * throughput: aegis-core flat out (--rate 0, block mode, --count N) into the
    real bridge with verdicts (the protocol's acks) on; throughput_per_s from
    the core's summary (verdicts / (last verdict - start)). Every core run
    uses --start-after-hello, so the bridge's connect delay is not counted. Peer: raw libzmq
    PUSH of one 64-byte JSON message per transaction (bench/e2e_peer_push)
    into a pyzmq PULL loop that receives, json-decodes and scores each message
    with the bridge's model and acknowledges nothing (bench/e2e_peer_pull.py).
  * latency: aegis-core open-loop at each --rate for --duration into the real
    bridge; p50/p99 offload -> verdict from the summary, timed from each
    transaction's *intended* send time (main.cpp: timestamp_ns = start +
    (id-1)/rate, latency = verdict time - timestamp_ns), so a producer that
    falls behind shows up as latency. Two floors: the raw libzmq ipc
    PUSH/PULL ping-pong round trip (bench/e2e_pingpong), one rep per
    repetition; and, run just before ours at each rate, the same open-loop
    schedule and pacing (both get --pace-quantum PACE_QUANTUM_US) into a
    raw C++ echo process (bench/e2e_openloop: no ring, pump, protocol or
    Python), rows zmq_openloop_echo_*. All processes run with their
    defaults (SCHED_OTHER, 100 us EEVDF slice).
  * latency, pinned: the same rates with aegis-core pinned to one CPU and the
    bridge to another (--pin, default 0,1; CPU affinity, no privileges
    needed), beside the same ping-pong floor and the open-loop floor pinned
    the same way; rows named *_pinned. Each CPU then switches only between
    threads of one process, which on this VM cost ~20 % less CPU at 50k/s
    (docs/E2E.md, "Core and bridge on separate CPUs").
  * latency, real-time: the same rates with core and bridge at
    --realtime-priority (SCHED_FIFO), beside the ping-pong also run at
    SCHED_FIFO, and the open-loop floor at the same priority; rows named
    *_fifo. Only where this user may use SCHED_FIFO (root, CAP_SYS_NICE or
    ulimit -r); --realtime 0 skips them.
Reported values are medians over repetitions. Rows are appended to --json;
every raw repetition goes to bench-e2e.json beside it.

Every child runs in its own process group (in this driver's session, so
core and bridge share one scheduler autogroup) and is killed (process group) on any
exit, including SIGINT/SIGTERM/SIGHUP, and by PR_SET_PDEATHSIG if this driver
is SIGKILLed; socket files live in one temp directory that is removed at the
end.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
# aegis-core --pace-quantum for every latency run, and the open-loop floor's
# (the core's default; given to both explicitly so they cannot drift apart).
PACE_QUANTUM_US = 250
_children: list[subprocess.Popen] = []


def _die_with_parent() -> None:
    """In the child: SIGKILL it if this driver dies, even by SIGKILL (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def spawn(argv, cpus=None, **kw) -> subprocess.Popen:
    # Each child leads its own process group (killed as a group), in this
    # driver's session: a new session would also be a new scheduler
    # autogroup (kernel.sched_autogroup_enabled), and with the core and the
    # bridge in two autogroups this VM's kernel stalls the pipeline for tens
    # of milliseconds now and then (docs/E2E.md, "Autogroups").
    # `cpus`: the child's CPU affinity, set before it starts any thread, so
    # every thread (libzmq's I/O thread included) inherits it.
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))

    def preexec() -> None:
        _die_with_parent()
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    p = subprocess.Popen([str(a) for a in argv], process_group=0, env=env, preexec_fn=preexec, **kw)
    _children.append(p)
    return p


def stop(p: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM to the child's group, then SIGKILL after grace_s."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    if p in _children:
        _children.remove(p)


def kill_all_children() -> None:
    for p in list(_children):
        stop(p, grace_s=2.0)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def wait_cpu_s(p: subprocess.Popen, timeout_s: float) -> tuple[int, float]:
    """Waits for the child like Popen.wait and returns (exit code, its CPU seconds, all threads).

    os.wait4 reports the child's rusage. The wait blocks on a pidfd, so this
    driver does not wake up while the pipeline it measures runs (polling
    every 5 ms was 200 timed wake-ups a second on the same 2 CPUs).
    """
    fd = os.pidfd_open(p.pid)
    try:
        if not select.select([fd], [], [], timeout_s)[0]:
            raise subprocess.TimeoutExpired(p.args, timeout_s)
    finally:
        os.close(fd)
    pid, status, ru = os.wait4(p.pid, 0)
    assert pid == p.pid
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, ru.ru_utime + ru.ru_stime


def wait_for_text(path: Path, text: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode} before printing {text!r}; see {path}")
        time.sleep(0.02)
    raise RuntimeError(f"no {text!r} in {path} after {timeout_s}s")


class Bench:
    def __init__(self, build: Path, tmp: Path, quick: bool):
        self.core = build / "src" / "aegis-core"
        self.peer_push = build / "bench" / "e2e_peer_push"
        self.pingpong = build / "bench" / "e2e_pingpong"
        self.openloop = build / "bench" / "e2e_openloop"
        for exe in (self.core, self.peer_push, self.pingpong, self.openloop):
            if not exe.exists():
                raise SystemExit(f"bench_e2e: {exe} is missing (build it first)")
        self.tmp = tmp
        self.quick = quick
        self.runs = 0
        self.peer_lost = 0  # messages the ack-less peer never received (see e2e_peer_pull.py)

    def _run_dir(self) -> Path:
        self.runs += 1
        d = self.tmp / f"r{self.runs}"
        d.mkdir(mode=0o700)
        return d

    def core_run(self, extra: list[str], timeout_s: float, bridge_extra: tuple = (), pin: tuple | None = None) -> dict:
        """One aegis-core run into a fresh real bridge (started and connected first)."""
        d = self._run_dir()
        ep = d / "ep"
        ep.mkdir(mode=0o700)
        bridge_log = d / "bridge.log"
        with open(bridge_log, "w") as blog:
            bridge = spawn([PYTHON, "-m", "aegis_bridge", "--offload", f"ipc://{ep}/offload.sock",
                            "--verdicts", f"ipc://{ep}/verdicts.sock", *bridge_extra], stdout=blog, stderr=subprocess.STDOUT,
                           cpus={pin[1]} if pin else None)
        try:
            wait_for_text(bridge_log, "incarnation", bridge, 60)
            summary = d / "summary.json"
            with open(d / "core.log", "w") as clog:
                core = spawn([self.core, "--endpoint-dir", ep, "--mode", "block", "--summary-json", summary,
                              "--bridge-wait-report", "0", "--start-after-hello", *extra], stdout=clog, stderr=subprocess.STDOUT,
                             cpus={pin[0]} if pin else None)
                try:
                    rc, core_cpu_s = wait_cpu_s(core, timeout_s)
                finally:
                    stop(core)
            if not summary.exists():
                raise RuntimeError(f"aegis-core exited {rc} without a summary; see {d}/core.log")
            s = json.loads(summary.read_text())
            if rc != 0 or s["lost"] != 0 or s["verdicts"] != s["offered"]:
                raise RuntimeError(f"aegis-core run failed (exit {rc}, lost {s['lost']}, "
                                   f"verdicts {s['verdicts']} of {s['offered']}); see {d}")
            # CPU per verdicted transaction, both processes and all their
            # threads (libzmq's I/O threads included). Unlike a rate, it hardly
            # depends on what else the machine runs: 2 cores / this = the
            # throughput the pipeline could reach on an idle 2-core machine.
            os.killpg(bridge.pid, signal.SIGTERM)
            _, bridge_cpu_s = wait_cpu_s(bridge, 10)
            s["cpu_ns_per_txn"] = (core_cpu_s + bridge_cpu_s) * 1e9 / max(1, s["verdicts"])
            return s
        finally:
            stop(bridge)

    def ours_throughput(self, count: int) -> tuple[float, float]:
        s = self.core_run(["--count", count, "--rate", "0"], timeout_s=120)
        return float(s["throughput_per_s"]), float(s["cpu_ns_per_txn"])

    def peer_throughput(self, count: int) -> float:
        d = self._run_dir()
        ep = f"ipc://{d}/peer.sock"
        with open(d / "pull.err", "w") as err:
            pull = spawn([PYTHON, ROOT / "bench" / "e2e_peer_pull.py", "--endpoint", ep],
                         stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            # The receiver binds first; connecting to a listening ipc socket has no reconnect race.
            wait_for_text(d / "pull.err", "ready", pull, 60)
            push = spawn([self.peer_push, "--endpoint", ep, "--count", count])
            try:
                out, _ = pull.communicate(timeout=120)
            finally:  # the sender repeats END until stopped
                stop(push)
            if pull.returncode != 0:
                raise RuntimeError(f"peer loop exited {pull.returncode}; see {d}/pull.err")
            r = json.loads(out.strip().splitlines()[-1])
            if r["messages"] < count * 0.9:
                raise RuntimeError(f"peer loop received only {r['messages']} of {count}")
            self.peer_lost += count - r["messages"]
            return float(r["per_s"])
        finally:
            stop(pull)

    def latency(self, rate: int, duration_s: float, fifo: int = 0, pin: tuple | None = None) -> dict:
        rt = ("--realtime-priority", fifo) if fifo else ()
        s = self.core_run(["--rate", rate, "--duration", f"{int(duration_s * 1000)}ms",
                           "--pace-quantum", f"{PACE_QUANTUM_US}us", *rt],
                          timeout_s=duration_s + 120, bridge_extra=rt, pin=pin)
        return {"p50_us": s["latency_us"]["p50"], "p99_us": s["latency_us"]["p99"],
                "p999_us": s["latency_us"]["p999"], "max_us": s["latency_us"]["max"],
                "offered": s["offered"], "produce_s": s["produce_s"],
                "offered_per_s": s["offered"] / s["produce_s"] if s["produce_s"] > 0 else 0.0,
                "verdicts_per_s": s["throughput_per_s"], "cpu_ns_per_txn": s["cpu_ns_per_txn"],
                "records_per_frame": s["verdicts"] / max(1, s["frames_sent"])}

    def openloop_floor(self, rate: int, duration_s: float, fifo: int = 0, pin: tuple | None = None) -> dict:
        """The open-loop schedule of `latency` into a raw C++ echo process (bench/e2e_openloop)."""
        d = self._run_dir()
        argv = [self.openloop, "--dir", d, "--rate", rate, "--duration", duration_s,
                "--pace-quantum-us", PACE_QUANTUM_US, "--realtime-priority", fifo,
                "--pin", f"{pin[0]},{pin[1]}" if pin else "none"]
        with open(d / "openloop.err", "w") as err:
            p = spawn(argv, stdout=subprocess.PIPE, stderr=err, text=True)
            try:
                out, _ = p.communicate(timeout=duration_s + 60)
            finally:
                stop(p)
        if p.returncode != 0:
            raise RuntimeError(f"e2e_openloop exited {p.returncode}: {(d / 'openloop.err').read_text().strip()}")
        return json.loads(out)

    def pingpong_us(self, fifo: int = 0) -> tuple[float, float]:
        d = self._run_dir()
        rts = 5000 if self.quick else 20000
        sched = (lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(fifo))) if fifo else None
        out = subprocess.run([str(self.pingpong), "--dir", str(d), "--round-trips", str(rts), "--reps", "1"],
                             check=True, capture_output=True, text=True, timeout=120, start_new_session=True,
                             preexec_fn=sched).stdout
        r = json.loads(out)
        return r["rtt_ns_p50"][0] / 1000.0, r["rtt_ns_p99"][0] / 1000.0


def fifo_allowed(priority: int) -> bool:
    """Whether this user may switch to SCHED_FIFO at `priority` (tried in a child, which then exits)."""
    try:
        subprocess.run([PYTHON, "-c", f"import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param({priority}))"],
                       check=True, capture_output=True, timeout=30)
        return True
    except (subprocess.CalledProcessError, OSError):
        return False


def measure_rates(b: Bench, rates, duration_s: float, into: dict, floor_into: dict, label: str, fifo: int = 0,
                  pin: tuple | None = None) -> None:
    """Per rate, the open-loop floor and then one open-loop run of ours (at SCHED_FIFO
    `fifo` if non-zero; pinned to the CPUs in `pin` if given), appended to
    floor_into[rate] and into[rate] and printed."""
    for rate in rates:
        fl = b.openloop_floor(rate, duration_s, fifo, pin)
        floor_into[str(rate)].append(fl)
        lat = b.latency(rate, duration_s, fifo, pin)
        into[str(rate)].append(lat)
        print(f"{label} {rate_label(rate):>4}/s  p50 {lat['p50_us']:.0f} us  p99 {lat['p99_us']:.0f} us  "
              f"p999 {lat['p999_us']:.0f} us  offered {lat['offered_per_s']:,.0f}/s  verdicts {lat['verdicts_per_s']:,.0f}/s  "
              f"{lat['records_per_frame']:.0f} records/frame;  raw echo floor p50 {fl['p50_us']:.0f} us  "
              f"p99 {fl['p99_us']:.0f} us", flush=True)


def latency_rows(rates, runs_by_rate: dict, floor_by_rate: dict, suffix: str, pp50: float, pp99: float,
                 with_offered: bool, peer_suffix: str | None = None) -> list[dict]:
    """Median p50/p99 per rate beside the ping-pong floor (named with `peer_suffix`, default
    `suffix`: measured the same way), beside the open-loop floor run the same way
    (named with `suffix`), and the offered rate."""
    peer_suffix = suffix if peer_suffix is None else peer_suffix
    med = statistics.median
    rows = []
    for rate in rates:
        runs = runs_by_rate[str(rate)]
        name = f"e2e_latency_{rate_label(rate)}{suffix}"
        rows.append(row(name, "offload_to_verdict_p50", "us", med(r["p50_us"] for r in runs),
                        f"zmq_ipc_pingpong_rtt_p50{peer_suffix}", pp50, "lower"))
        rows.append(row(name, "offload_to_verdict_p99", "us", med(r["p99_us"] for r in runs),
                        f"zmq_ipc_pingpong_rtt_p99{peer_suffix}", pp99, "lower"))
        floor = floor_by_rate[str(rate)]
        rows.append(row(name, "offload_to_verdict_p50", "us", med(r["p50_us"] for r in runs),
                        f"zmq_openloop_echo_p50{suffix}", med(f["p50_us"] for f in floor), "lower"))
        rows.append(row(name, "offload_to_verdict_p99", "us", med(r["p99_us"] for r in runs),
                        f"zmq_openloop_echo_p99{suffix}", med(f["p99_us"] for f in floor), "lower"))
        if with_offered:
            rows.append(row(name, "offered_txn_per_s", "txn/s", med(r["offered_per_s"] for r in runs),
                            "target_rate", float(rate), "higher"))
    return rows


def rate_label(rate: int) -> str:
    return f"{rate // 1_000_000}M" if rate % 1_000_000 == 0 else f"{rate // 1000}k"


def row(name, metric, unit, ours, peer, peer_value, better) -> dict:
    return {"name": name, "metric": metric, "unit": unit, "ours": ours, "peer": peer, "peer_value": peer_value,
            "ratio": ours / peer_value if peer_value else 0.0, "better": better}


def append_rows(path: Path, rows: list[dict]) -> None:
    """Same contract as bench/bench_results.hpp: one JSON array, rows appended."""
    all_rows = []
    if path.exists() and path.stat().st_size > 0:
        all_rows = json.loads(path.read_text())
        if not isinstance(all_rows, list):
            raise SystemExit(f"bench_e2e: {path} does not hold a JSON array")
    all_rows.extend(rows)
    path.write_text(json.dumps(all_rows, indent=2) + "\n")


def _positive(kind):
    """argparse type: a number of `kind` (int or float) above zero."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return v
    return parse


def _rates(text: str) -> list[int]:
    try:
        rates = [int(r) for r in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected rates per second like 10000,50000, got {text!r}") from None
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"every rate must be positive (0 would mean flat out), got {text!r}")
    return rates


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/release", help="build directory (src/aegis-core, bench/e2e_*)")
    ap.add_argument("--json", help="append rows here (default BUILD/bench-results.json)")
    ap.add_argument("--reps", type=_positive(int), default=3)
    ap.add_argument("--count", type=_positive(int), default=4_000_000, help="aegis-core --count for the throughput run")
    ap.add_argument("--peer-count", type=_positive(int), default=1_000_000, help="messages for the peer's throughput run")
    ap.add_argument("--duration", type=_positive(float), default=3.0, help="seconds per open-loop latency run")
    ap.add_argument("--rates", type=_rates, default="10000,50000,100000,1000000",
                    help="open-loop rates per second, comma-separated")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 rep, small counts, 1 s per rate")
    ap.add_argument("--realtime", type=int, default=10, metavar="PRIO",
                    help="also measure latency with core and bridge at SCHED_FIFO PRIO (rows *_fifo) when allowed; 0 = skip")
    ap.add_argument("--pin", default="0,1", metavar="CORE_CPU,BRIDGE_CPU",
                    help="also measure latency with aegis-core pinned to CORE_CPU and the bridge to BRIDGE_CPU "
                         "(rows *_pinned); 'none' = skip")
    args = ap.parse_args(argv)
    pin = None
    if args.pin != "none":
        try:
            pin = tuple(int(c) for c in args.pin.split(","))
        except ValueError:
            ap.error(f"--pin: expected CORE_CPU,BRIDGE_CPU or none, got {args.pin!r}")
        if len(pin) != 2 or pin[0] == pin[1] or not set(pin) <= os.sched_getaffinity(0):
            ap.error(f"--pin: need two different CPUs this process may use ({sorted(os.sched_getaffinity(0))}), got {args.pin!r}")
    if args.quick:
        args.reps, args.count, args.peer_count, args.duration = 1, 300_000, 100_000, 1.0
    build = Path(args.build).resolve()
    json_path = Path(args.json) if args.json else build / "bench-results.json"
    rates = args.rates
    fifo = args.realtime if args.realtime and fifo_allowed(args.realtime) else 0
    if args.realtime and not fifo:
        print("bench_e2e: SCHED_FIFO not allowed for this user: the *_fifo latency rows are skipped", flush=True)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="aegis-e2e-", dir="/tmp"))  # short: ipc paths are limited to ~107 bytes
    raw: dict = {"ours_per_s": [], "ours_cpu_ns_per_txn": [], "peer_per_s": [], "pingpong_p50_us": [], "pingpong_p99_us": [],
                 "latency": {str(r): [] for r in rates}, "pingpong_fifo_p50_us": [], "pingpong_fifo_p99_us": [],
                 "latency_fifo": {str(r): [] for r in rates}, "fifo_priority": fifo,
                 "latency_pinned": {str(r): [] for r in rates}, "pin_cpus": list(pin) if pin else None,
                 "floor": {str(r): [] for r in rates}, "floor_pinned": {str(r): [] for r in rates},
                 "floor_fifo": {str(r): [] for r in rates}, "pace_quantum_us": PACE_QUANTUM_US}
    try:
        b = Bench(build, tmp, args.quick)
        print(f"bench_e2e: {args.reps} reps; throughput count {args.count} (peer {args.peer_count}); "
              f"rates {rates} for {args.duration:g} s each", flush=True)
        for rep in range(1, args.reps + 1):
            ours, cpu_ns = b.ours_throughput(args.count)
            peer = b.peer_throughput(args.peer_count)
            raw["ours_per_s"].append(ours)
            raw["ours_cpu_ns_per_txn"].append(cpu_ns)
            raw["peer_per_s"].append(peer)
            print(f"  rep {rep}: throughput ours {ours:,.0f}/s ({cpu_ns:.0f} ns CPU per txn, core + bridge, "
                  f"i.e. {2e9 / cpu_ns:,.0f}/s on 2 idle cores)  peer {peer:,.0f}/s", flush=True)
            pp50, pp99 = b.pingpong_us()
            raw["pingpong_p50_us"].append(pp50)
            raw["pingpong_p99_us"].append(pp99)
            print(f"  rep {rep}: zmq ipc ping-pong rtt p50 {pp50:.1f} us  p99 {pp99:.1f} us", flush=True)
            measure_rates(b, rates, args.duration, raw["latency"], raw["floor"], f"  rep {rep}: rate")
            if pin:
                measure_rates(b, rates, args.duration, raw["latency_pinned"], raw["floor_pinned"],
                              f"  rep {rep}: pinned core CPU {pin[0]}, bridge CPU {pin[1]}: rate", pin=pin)
            if fifo:
                pp50, pp99 = b.pingpong_us(fifo)
                raw["pingpong_fifo_p50_us"].append(pp50)
                raw["pingpong_fifo_p99_us"].append(pp99)
                print(f"  rep {rep}: SCHED_FIFO {fifo}: zmq ipc ping-pong rtt p50 {pp50:.1f} us  p99 {pp99:.1f} us", flush=True)
                measure_rates(b, rates, args.duration, raw["latency_fifo"], raw["floor_fifo"],
                              f"  rep {rep}: SCHED_FIFO rate", fifo)
        raw["peer_messages_lost"] = b.peer_lost
        if b.peer_lost:
            print(f"  (the ack-less peer lost {b.peer_lost} messages over all reps; its rate counts what arrived)")
    finally:
        kill_all_children()
        shutil.rmtree(tmp, ignore_errors=True)

    med = statistics.median
    pp50, pp99 = med(raw["pingpong_p50_us"]), med(raw["pingpong_p99_us"])
    rows = [row("e2e_throughput", "verdicted_txn_per_s", "txn/s", med(raw["ours_per_s"]), "pyzmq_per_message_loop",
                med(raw["peer_per_s"]), "higher")]
    rows += latency_rows(rates, raw["latency"], raw["floor"], "", pp50, pp99, with_offered=True)
    if pin:
        rows += latency_rows(rates, raw["latency_pinned"], raw["floor_pinned"], "_pinned", pp50, pp99,
                             with_offered=False, peer_suffix="")
    if fifo:
        fp50, fp99 = med(raw["pingpong_fifo_p50_us"]), med(raw["pingpong_fifo_p99_us"])
        rows += latency_rows(rates, raw["latency_fifo"], raw["floor_fifo"], "_fifo", fp50, fp99, with_offered=False)
    print(f"{'name':<20} {'metric':<24} {'unit':<6} {'ours':>12}  {'peer':<26} {'peer value':>12}  {'ratio':>7}")
    for r in rows:
        print(f"{r['name']:<20} {r['metric']:<24} {r['unit']:<6} {r['ours']:>12,.1f}  {r['peer']:<26} "
              f"{r['peer_value']:>12,.1f}  {r['ratio']:>7.2f}")
    append_rows(json_path, rows)
    (json_path.parent / "bench-e2e.json").write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
