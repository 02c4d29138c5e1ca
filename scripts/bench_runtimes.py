#!/usr/bin/python3
"""End-to-end throughput per model runtime (numpy, scikit-learn, XGBoost) beside that model's own scoring rate.

Usage:
    /usr/bin/python3 scripts/bench_runtimes.py --build build/release --json build/release/bench-results.json
    /usr/bin/python3 scripts/bench_runtimes.py --runtimes xgboost --reps 1 --seconds 1
    (make bench runs it through scripts/run_benchmarks.sh, after bench_e2e.py)

What it measures, per runtime and per repetition, in this order:
  * ours: aegis-core flat out (--rate 0, block mode, --count N,
    --start-after-hello) into a real bridge serving that runtime's model
    (`python -m aegis_bridge --model FILE`, default flags): verdicted
    transactions per second from the core's summary (`throughput_per_s`).
    N is sized from a first timing of the model alone so that a run takes
    about --seconds.
  * peer: the same model timed alone, `scorer.score(batch)` in a loop for at
    least a second, on batches of the size the bridge's model calls had in
    that run (aegis_bridge_batch_records_sum / _count, scraped from the
    bridge before it stops), of synthetic TXN records (aegis_bridge.synthetic,
    the records the models were trained on). It runs in a child process
    (`--alone`) that exits afterwards, so nothing the model libraries leave
    in a process (imports, worker threads, allocator state) stays in this
    driver while the next end-to-end run is timed.
The ratio ours / peer is what the transport (core, ZeroMQ, decode,
dedupe, encode, send) leaves of the model's own rate: near 1 for a costly
model, lower for a cheap one. The models are trained at the start by
scripts/train_model.py on the same synthetic samples (20k), as the tests
do. A runtime whose library is not installed is skipped with a note.

Rows (bench/bench_results.hpp's schema) are appended to --json:
e2e_throughput_<runtime> verdicted_txn_per_s, peer <runtime>_model_alone;
the raw repetitions go to bench-runtimes.json beside it. Values are medians
over --reps. Processes run in this driver's session and are killed with it
(bench_e2e.spawn).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "scripts", ROOT / "src", ROOT / "fixtures"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import numpy as np  # noqa: E402

from bench_e2e import _positive, append_rows, kill_all_children, row, spawn, stop, wait_cpu_s  # noqa: E402
from aegis_fixtures.observe import try_scrape  # noqa: E402
from aegis_fixtures.trained_models import available_runtimes, train_models  # noqa: E402
from aegis_fixtures.waiting import wait_value  # noqa: E402

PYTHON = "/usr/bin/python3"
RUNTIMES = ("numpy", "sklearn", "xgboost")
MIN_COUNT = 50_000        # transactions per run at least
MAX_COUNT = 20_000_000    # and at most (the numpy model flat out: a few seconds)
ALONE_MIN_S = 1.0         # the model alone is timed for at least this long


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def time_alone(path: Path, batch: int, min_s: float, seed: int = 7) -> float:
    """Records per second the model file scores alone, in batches of `batch` records (in this process)."""
    assert batch >= 1 and min_s > 0
    from aegis_bridge.loading import load_scorer
    from aegis_bridge.synthetic import make_txns

    scorer = load_scorer(str(path)).scorer
    txns = make_txns(np.random.default_rng(seed), batch)
    scorer.score(txns)  # first calls (caches, lazy imports) are not timed
    records, calls = 0, 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < min_s or calls < 3:
        scorer.score(txns)
        records += batch
        calls += 1
        elapsed = time.perf_counter() - start
    return records / elapsed


def model_alone_per_s(path: Path, batch: int, min_s: float = ALONE_MIN_S) -> float:
    """time_alone in a child process of its own (see the module docstring: threads left behind)."""
    r = subprocess.run([PYTHON, __file__, "--alone", str(path), "--batch", str(batch), "--min-seconds", str(min_s)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"timing {path} alone failed (exit {r.returncode}): {r.stderr.strip()}")
    return float(r.stdout.strip())


def e2e_run(core: Path, model: Path, run_dir: Path, count: int, timeout_s: float) -> dict:
    """aegis-core flat out into a fresh bridge serving `model`; the summary plus the bridge's records per call."""
    ep = run_dir / "ep"
    ep.mkdir(mode=0o700, parents=True)
    bridge_log = run_dir / "bridge.log"
    with open(bridge_log, "w") as log:
        bridge = spawn([PYTHON, "-m", "aegis_bridge", "--offload", f"ipc://{ep}/offload.sock",
                        "--verdicts", f"ipc://{ep}/verdicts.sock", "--model", model, "--metrics-port", "0"],
                       stdout=log, stderr=subprocess.STDOUT)
    try:
        line = wait_value(lambda: re.search(r"incarnation .* metrics http://127\.0\.0\.1:(\d+)/metrics",
                                            bridge_log.read_text(errors="replace"))
                          or (bridge.poll() is not None and "exited"), 120, "the bridge's start line")
        if line == "exited":
            raise RuntimeError(f"the bridge exited {bridge.returncode}: {bridge_log.read_text()}")
        port = int(line.group(1))
        summary = run_dir / "summary.json"
        with open(run_dir / "core.log", "w") as log:
            proc = spawn([core, "--endpoint-dir", ep, "--mode", "block", "--summary-json", summary,
                          "--bridge-wait-report", "0", "--start-after-hello", "--count", count, "--rate", "0"],
                         stdout=log, stderr=subprocess.STDOUT)
            try:
                rc, _ = wait_cpu_s(proc, timeout_s)
            finally:
                stop(proc)
        s = json.loads(summary.read_text()) if summary.exists() else None
        if rc != 0 or s is None or s["lost"] != 0 or s["verdicts"] != s["offered"]:
            raise RuntimeError(f"aegis-core run failed (exit {rc}); see {run_dir}")
        m = wait_value(lambda: try_scrape(port), 10, "the bridge's metrics")
        calls = m.value("aegis_bridge_batch_records_count", 0.0)
        s["records_per_call"] = m.value("aegis_bridge_batch_records_sum", 0.0) / calls if calls else 0.0
        s["model_calls"] = calls
        return s
    finally:
        stop(bridge)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build/release", help="build directory (src/aegis-core)")
    ap.add_argument("--json", help="append rows here (default BUILD/bench-results.json)")
    ap.add_argument("--reps", type=_positive(int), default=3)
    ap.add_argument("--seconds", type=_positive(float), default=2.0, help="target length of one end-to-end run")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated subset of " + ",".join(RUNTIMES))
    ap.add_argument("--alone", type=Path, metavar="MODEL", help="(the driver's child) time MODEL alone, print records/s")
    ap.add_argument("--batch", type=_positive(int), default=1024, help="with --alone: records per call")
    ap.add_argument("--min-seconds", type=_positive(float), default=ALONE_MIN_S, help="with --alone: time at least")
    args = ap.parse_args(argv)
    if args.alone:
        print(time_alone(args.alone, args.batch, args.min_seconds))
        return 0
    wanted = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    if not wanted or set(wanted) - set(RUNTIMES):
        ap.error(f"--runtimes: expected a comma-separated subset of {','.join(RUNTIMES)}, got {args.runtimes!r}")
    build = Path(args.build).resolve()
    core = build / "src" / "aegis-core"
    if not core.exists():
        raise SystemExit(f"bench_runtimes: {core} is missing (build it first)")
    json_path = Path(args.json) if args.json else build / "bench-results.json"
    installed = available_runtimes()
    runtimes = [r for r in wanted if r in installed]
    for r in wanted:
        if r not in installed:
            print(f"bench_runtimes: the {r} runtime's library is not installed: no e2e_throughput_{r} row", flush=True)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="aegis-rt-", dir="/tmp"))  # short: ipc paths are limited to ~107 bytes
    raw: dict = {r: {"e2e_per_s": [], "alone_per_s": [], "records_per_call": [], "count": []} for r in runtimes}
    try:
        models = train_models(tmp / "models")
        print(f"bench_runtimes: {args.reps} reps of {', '.join(runtimes)}; models trained by scripts/train_model.py "
              f"(20k samples); about {args.seconds:g} s per run", flush=True)
        runs = 0
        for rep in range(1, args.reps + 1):
            for runtime in runtimes:
                model = models[runtime]
                # Sized from the model's rate in full frames, capped by what the transport does flat out.
                guess = model_alone_per_s(model, 1024, min_s=0.3)
                count = int(min(MAX_COUNT, max(MIN_COUNT, guess * args.seconds)))
                runs += 1
                s = e2e_run(core, model, tmp / f"r{runs}", count, timeout_s=120 + 10 * args.seconds)
                batch = max(1, round(s["records_per_call"]))
                alone = model_alone_per_s(model, batch)
                e2e = float(s["throughput_per_s"])
                for key, value in (("e2e_per_s", e2e), ("alone_per_s", alone), ("records_per_call", batch),
                                   ("count", count)):
                    raw[runtime][key].append(value)
                print(f"  rep {rep}: {runtime:<8} e2e {e2e:>12,.0f} txn/s ({count:,} txn, {s['model_calls']:.0f} "
                      f"model calls of {batch:,} records)  model alone {alone:>12,.0f} records/s  "
                      f"ratio {e2e / alone:.2f}", flush=True)
    finally:
        kill_all_children()
        shutil.rmtree(tmp, ignore_errors=True)

    med = statistics.median
    rows = [row(f"e2e_throughput_{r}", "verdicted_txn_per_s", "txn/s", med(raw[r]["e2e_per_s"]),
                f"{r}_model_alone", med(raw[r]["alone_per_s"]), "higher") for r in runtimes]
    print(f"{'name':<24} {'metric':<22} {'ours':>12}  {'peer':<22} {'peer value':>12}  {'ratio':>6}  records/call")
    for r, x in zip(rows, runtimes):
        print(f"{r['name']:<24} {r['metric']:<22} {r['ours']:>12,.0f}  {r['peer']:<22} {r['peer_value']:>12,.0f}  "
              f"{r['ratio']:>6.2f}  {med(raw[x]['records_per_call']):,.0f}")
    append_rows(json_path, rows)
    (json_path.parent / "bench-runtimes.json").write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
