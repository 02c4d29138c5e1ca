#!/usr/bin/env python3
"""Proves the installed C++ package is enough for a payment core: install, build, survive a bridge crash.

What it does (ctest `install_payment_core`, label `install`, part of `make test`):
1. `cmake --install BUILD --prefix TMP/prefix`, then checks what was installed:
   the library, headers under include/aegis/ only, the CMake package and
   aegis.pc, and nothing else (no simulator, tests, tools, test-only headers).
2. Configures and builds examples/payment_core against that prefix with
   `find_package(Aegis 1 REQUIRED)`, checks from Ninja's dependency log that
   every aegis/ header it compiled came from the prefix (a header missing
   from the install fails the build instead of being found in the source
   tree), and builds it a second time with `pkg-config --cflags --libs aegis`.
3. Block mode: runs the example against the real Python bridge, SIGKILLs the
   bridge once mid-stream (after KILL_AFTER verdicts) and starts a new one.
   Every transaction must get exactly one fate (the example counts them per
   id and reports it on its summary line), every one a verdict.
4. Drop mode, small ring: the same kill; with no bridge the ring fills and
   offers are refused. Each transaction still gets exactly one fate.

The retransmit timeout is 60 s, so what the killed bridge held must be resent
because a new bridge incarnation appeared; a library built with the no_rewind
mutant fails step 3. Every wait is on an observable condition (a ready line,
a metric, a process exit) with a timeout; nothing sleeps to synchronise.

Usage:
  /usr/bin/python3 scripts/test_install.py --build-dir build/release [--keep] [--bridge-src DIR]

Exit status 0 when every check passed, 1 otherwise (with the logs and the
command that reruns it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = "/usr/bin/python3"  # Debian's: the one that sees python3-zmq and numpy for the bridge
EXAMPLE = REPO / "examples" / "payment_core"


class Failure(Exception):
    """A check failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"test_install: {msg}", flush=True)


def run(argv, timeout_s=300, env=None, cwd=None) -> str:
    """Runs a command to completion; returns its output, or raises Failure with it."""
    argv = [str(a) for a in argv]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise Failure(f"timed out after {timeout_s} s: {' '.join(argv)}\n{e.stdout or ''}{e.stderr or ''}")
    if r.returncode != 0:
        raise Failure(f"exit {r.returncode}: {' '.join(argv)}\n{r.stdout}{r.stderr}")
    return r.stdout


def wait_for(what: str, condition, timeout_s: float, poll_s: float = 0.02):
    """Polls `condition()` until it returns a truthy value; returns it. Raises Failure on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Failure(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


class Proc:
    """A child process whose output goes to a log file."""

    def __init__(self, name: str, argv, log_path: Path, env=None):
        self.name = name
        self.log_path = log_path
        with open(log_path, "w") as out:
            self.popen = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_line(self, pattern: str, timeout_s: float) -> re.Match:
        m = wait_for(f"{self.name} to print /{pattern}/",
                     lambda: re.search(pattern, self.text(), re.M) or (not self.alive() and "exited"), timeout_s)
        if m == "exited":
            raise Failure(f"{self.name} exited (rc {self.popen.returncode}) before printing /{pattern}/")
        return m

    def kill(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 5 s."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def metric(text: str, name: str, labels: str = "") -> float:
    """Value of `name{labels}` in a Prometheus text page (0 when absent)."""
    pattern = rf"^{re.escape(name)}{re.escape('{' + labels + '}') if labels else ''} ([0-9.e+-]+)$"
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else 0.0


def parse_summary(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line.startswith("summary ")]
    if not lines:
        raise Failure("the example printed no summary line")
    return dict(kv.split("=", 1) for kv in lines[-1].split()[1:])


class Installed:
    """The package installed into a temporary prefix, and the example built from it."""

    def __init__(self, tmp: Path, build_dir: Path):
        self.build_dir = build_dir
        self.prefix = tmp / "prefix"
        self.example_build = tmp / "example-build"
        self.example = self.example_build / "payment_core"
        self.example_pkgconfig = tmp / "payment_core_pkgconfig"

    def install(self) -> None:
        cache = self.build_dir / "CMakeCache.txt"
        if not cache.is_file():
            raise Failure(f"{self.build_dir} is not a configured build tree (run `make build` first)")
        try:
            run(["cmake", "--install", self.build_dir, "--prefix", self.prefix])
        except Failure as e:
            raise Failure(f"cmake --install failed; is aegis_offload built "
                          f"(`cmake --build --preset release --target aegis_offload`)?\n{e}")
        files = sorted(str(p.relative_to(self.prefix)) for p in self.prefix.rglob("*") if p.is_file())
        allowed = [r"include/aegis/[a-z_]+\.hpp",
                   r"lib[^/]*(/[^/]+)?/libaegis_offload\.a",
                   r"lib[^/]*(/[^/]+)?/cmake/Aegis/(AegisConfig|AegisConfigVersion|AegisSystemLibs|AegisTargets(-[a-z]+)?)\.cmake",
                   r"lib[^/]*(/[^/]+)?/pkgconfig/aegis\.pc"]
        extra = [f for f in files if not any(re.fullmatch(a, f) for a in allowed)]
        if extra:
            raise Failure(f"installed files that are not part of the package: {extra}")
        for needed in ("include/aegis/os_offloader.hpp", "include/aegis/metrics.hpp", "include/aegis/sched.hpp"):
            if needed not in files:
                raise Failure(f"{needed} was not installed; installed: {files}")
        # The site macros are installed; their test-side catalogues (testing/) are not.
        for test_only in ("coverage.hpp", "fault_catalogue.hpp", "mutant_catalogue.hpp", "bench_results.hpp"):
            if f"include/aegis/{test_only}" in files:
                raise Failure(f"the test-side aegis/{test_only} was installed")
        if not any(f.endswith("/libaegis_offload.a") for f in files):
            raise Failure(f"libaegis_offload.a was not installed; installed: {files}")
        log(f"installed {len(files)} files into {self.prefix}")

    def build_example(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("CMAKE_PREFIX_PATH", "Aegis_DIR", "CPATH")}
        run(["cmake", "-S", EXAMPLE, "-B", self.example_build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
             f"-DCMAKE_PREFIX_PATH={self.prefix}"], env=env)
        run(["cmake", "--build", self.example_build, "-j", "2"], env=env)
        cache = (self.example_build / "CMakeCache.txt").read_text()
        aegis_dir = re.search(r"^Aegis_DIR:PATH=(.*)$", cache, re.M)
        if not aegis_dir or not Path(aegis_dir.group(1)).resolve().is_relative_to(self.prefix.resolve()):
            raise Failure(f"find_package(Aegis) did not use the temporary prefix: {aegis_dir and aegis_dir.group(0)}")
        # Every aegis/ header the compiler read must come from the prefix.
        deps = run(["ninja", "-C", self.example_build, "-t", "deps"])
        headers = [line.strip() for line in deps.splitlines() if "/aegis/" in line]
        outside = [h for h in headers if not Path(h).resolve().is_relative_to(self.prefix.resolve())]
        if not headers or outside:
            raise Failure(f"aegis headers compiled from outside the prefix: {outside or 'none found at all'}")
        log(f"built {self.example} with find_package(Aegis 1); {len(headers)} aegis headers, all from the prefix")

    def build_example_with_pkgconfig(self) -> None:
        pcs = list(self.prefix.rglob("aegis.pc"))
        if len(pcs) != 1:
            raise Failure(f"expected one aegis.pc under the prefix, found {pcs}")
        env = dict(os.environ, PKG_CONFIG_PATH=str(pcs[0].parent))
        flags = run(["pkg-config", "--cflags", "--libs", "aegis"], env=env).split()
        cache = (self.example_build / "CMakeCache.txt").read_text()
        cxx = re.search(r"^CMAKE_CXX_COMPILER:[A-Z]+=(.*)$", cache, re.M).group(1)
        run([cxx, "-std=c++20", "-O2", EXAMPLE / "main.cpp", "-o", self.example_pkgconfig, *flags], env=env)
        run([self.example_pkgconfig, "--help"])
        log(f"built {self.example_pkgconfig} with pkg-config: {' '.join(flags)}")


class Scenario:
    """The example against the real bridge, with one SIGKILL of the bridge mid-stream."""

    def __init__(self, tmp: Path, example: Path, bridge_src: Path, mode: str, count: int, rate: int,
                 ring_capacity: int, kill_after: int):
        self.dir = tmp / f"run-{mode}"
        self.ep = self.dir / "ep"
        self.ep.mkdir(parents=True)
        os.chmod(self.ep, 0o700)  # The endpoint directory is the sockets' access control.
        self.example = example
        self.bridge_src = bridge_src
        self.mode, self.count, self.rate = mode, count, rate
        self.ring_capacity, self.kill_after = ring_capacity, kill_after
        self.core: Proc | None = None
        self.bridges: list[Proc] = []

    @property
    def endpoints(self) -> list[str]:
        return ["--offload", f"ipc://{self.ep}/offload.sock", "--verdicts", f"ipc://{self.ep}/verdicts.sock"]

    def start_bridge(self) -> Proc:
        n = len(self.bridges) + 1
        env = dict(os.environ, PYTHONPATH=str(self.bridge_src), PYTHONUNBUFFERED="1")
        bridge = Proc(f"bridge-{n}", [PYTHON, "-m", "aegis_bridge", *self.endpoints, "--heartbeat", "100ms"],
                      self.dir / f"bridge-{n}.log", env=env)
        self.bridges.append(bridge)
        bridge.wait_line(r"^aegis-bridge: incarnation 0x[0-9a-f]+", 60)  # Sockets connected, first HELLO queued.
        return bridge

    def core_metric(self, port: int, name: str, labels: str = "") -> float | None:
        text = scrape(port)
        return None if text is None else metric(text, name, labels)

    def wait_core_metric(self, port: int, name: str, at_least: float, labels: str = "") -> float:
        def check():
            if not self.core.alive():
                raise Failure(f"the example exited (rc {self.core.popen.returncode}) before {name} reached {at_least}")
            v = self.core_metric(port, name, labels)
            return (v,) if v is not None and v >= at_least else None

        return wait_for(f"the example's {name}{{{labels}}} >= {at_least}", check, 60)[0]

    def run(self) -> dict[str, str]:
        started = time.monotonic()
        # The bridge first: it connects to the core's endpoints as soon as they are bound.
        self.start_bridge()
        self.core = Proc("payment_core", [self.example, *self.endpoints, "--mode", self.mode, "--count", self.count,
                                          "--rate", self.rate, "--producers", 2, "--ring-capacity", self.ring_capacity,
                                          "--metrics-port", 0, "--retransmit-timeout-ms", 60000,
                                          "--drain-timeout-ms", 20000],
                         self.dir / "payment_core.log")
        port = int(self.core.wait_line(r"^ready .* metrics_port=(\d+)", 30).group(1))

        seen = self.wait_core_metric(port, "aegis_verdicts_total", self.kill_after)
        self.bridges[-1].kill()
        if seen >= self.count // 2:
            raise Failure(f"the bridge was killed after {seen:.0f} of {self.count} verdicts, not mid-stream")
        if self.mode == "drop":
            # With no bridge the ring fills and offers are refused: wait until some are.
            self.wait_core_metric(port, "aegis_dropped_total", 200, 'reason="ring_full"')
        self.start_bridge()

        try:
            rc = self.core.popen.wait(90)
        except subprocess.TimeoutExpired:
            raise Failure("the example did not exit within 90 s of the bridge restart")
        s = parse_summary(self.core.text())
        log(f"{self.mode}: killed bridge-1 after {seen:.0f} verdicts; rc {rc} in {time.monotonic() - started:.1f} s; "
            f"{' '.join(f'{k}={v}' for k, v in s.items())}")
        self.check(rc, s)
        return s

    def check(self, rc: int, s: dict[str, str]) -> None:
        n = {k: int(v) for k, v in s.items() if v.lstrip("-").isdigit()}
        problems = []
        if rc != 0:
            problems.append(f"exit code {rc}")
        if s.get("exactly_once") != "yes":
            problems.append(f"not exactly one fate each: missing {n.get('missing')}, duplicated {n.get('duplicated')}, "
                            f"stray {n.get('stray')}")
        if s.get("counters_agree") != "yes":
            problems.append("the offloader's counters disagree with the example's own count")
        if n.get("offered") != self.count:
            problems.append(f"offered {n.get('offered')} != {self.count}")
        if n.get("bridge_incarnations", 0) < 2:
            problems.append(f"the core saw {n.get('bridge_incarnations')} bridge incarnation(s), not the restart")
        fates = n.get("verdicts", 0) + n.get("expired", 0) + n.get("abandoned", 0) + n.get("dropped", 0)
        if fates != self.count:
            problems.append(f"verdicts + expired + abandoned + dropped = {fates} != {self.count}")
        if self.mode == "block" and (n.get("verdicts") != self.count or n.get("dropped") != 0):
            problems.append(f"block mode: {n.get('verdicts')} verdicts and {n.get('dropped')} drops, "
                            f"not {self.count} verdicts")
        if self.mode == "drop" and n.get("dropped", 0) == 0:
            problems.append("drop mode: nothing was refused while the bridge was dead")
        if problems:
            raise Failure(f"{self.mode} mode: " + "; ".join(problems))

    def stop_all(self) -> None:
        for p in [*self.bridges, *([self.core] if self.core else [])]:
            p.stop()

    def logs(self) -> str:
        return "".join(f"===== {p.name} ({p.log_path}) =====\n{p.text()}\n"
                       for p in [*([self.core] if self.core else []), *self.bridges])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, default=REPO / "build" / "release",
                    help="configured and built Aegis tree to install from (default build/release)")
    ap.add_argument("--bridge-src", type=Path, default=REPO / "src",
                    help="PYTHONPATH that holds the aegis_bridge package (default: the repository's src/)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (prefix, builds, logs)")
    args = ap.parse_args()
    build_dir = args.build_dir.resolve()

    tmp = Path(tempfile.mkdtemp(prefix="aegis-install-"))
    scenarios: list[Scenario] = []
    started = time.monotonic()
    try:
        pkg = Installed(tmp, build_dir)
        pkg.install()
        pkg.build_example()
        pkg.build_example_with_pkgconfig()
        for mode, count, ring, kill_after in (("block", 40_000, 65536, 4_000), ("drop", 20_000, 1024, 2_000)):
            scenarios.append(Scenario(tmp, pkg.example, args.bridge_src.resolve(), mode, count, 20_000, ring,
                                      kill_after))
            scenarios[-1].run()
            scenarios[-1].stop_all()
        log(f"PASS in {time.monotonic() - started:.1f} s")
        return 0
    except Failure as e:
        for sc in scenarios:
            print(sc.logs(), file=sys.stderr)
        log(f"FAIL: {e}")
        bridge = f" --bridge-src {args.bridge_src}" if args.bridge_src != REPO / "src" else ""
        log(f"rerun: {PYTHON} {Path(__file__).resolve()} --build-dir {build_dir}{bridge} --keep")
        return 1
    finally:
        for sc in scenarios:
            sc.stop_all()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
