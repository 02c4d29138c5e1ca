"""Every bad input in docs/ERRORS.md, against the real binaries: one line, the documented exit code.

What it proves: for each case listed in docs/ERRORS.md (bad or missing flags,
bad seeds and schedules, an endpoint directory that is unusable, loose, not
ours or held by a live core, a bridge that never connects, a peer speaking
another protocol version, an unwritable --summary-json), aegis-core, aegis-sim
and the bridge exit with the documented code and print the documented message
on stderr, and never crash (no signal exit, no sanitizer report) or hang
(every process runs under a timeout; waits are on output lines, not sleeps).

How: the binaries come from AEGIS_CORE_BIN / AEGIS_SIM_BIN (the Makefile points
them at the release build in test-py and at the ASan build in test-asan), or
build/release. A case whose binary is missing fails unless
AEGIS_REQUIRE_CORE is unset, in which case it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest

from aegis_fixtures.bridge_cli import bridge_argv, bridge_env
from aegis_fixtures.harness import replay_of_test
from aegis_fixtures.observe import assert_no_rejections

REPO = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"
TIMEOUT_S = 60  # Generous for sanitizer builds; no case needs more than a few seconds.


def _binary(env_name: str, relative: str) -> Path | None:
    if os.environ.get(env_name):
        return Path(os.environ[env_name])
    core = os.environ.get("AEGIS_CORE_BIN")
    if core and env_name == "AEGIS_SIM_BIN":
        sibling = Path(core).parent.parent / "sim" / "aegis-sim"
        if sibling.exists():
            return sibling
    default = REPO / "build" / "release" / relative
    return default if default.exists() else None


def _need(env_name: str, relative: str) -> Path:
    path = _binary(env_name, relative)
    if path is None or not path.exists():
        if os.environ.get("AEGIS_REQUIRE_CORE") == "1":
            pytest.fail(f"{relative} not built ({env_name} unset and build/release has none)")
        pytest.skip(f"{relative} not built; set {env_name}")
    return path


@pytest.fixture
def core() -> Path:
    return _need("AEGIS_CORE_BIN", "src/aegis-core")


@pytest.fixture
def sim() -> Path:
    return _need("AEGIS_SIM_BIN", "sim/aegis-sim")


@pytest.fixture
def short_dir(tmp_path_factory):
    """A short base directory (ipc paths are limited to ~107 bytes)."""
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="aegis-bad-", dir="/tmp"))
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _run(argv, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=TIMEOUT_S, **kw)


def _one_line_error(stderr: str, expect: str, prefix: str) -> str:
    """The error is one line, starts with the program's name and contains `expect`; returns it."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert lines, "no message on stderr"
    hits = [ln for ln in lines if expect in ln]
    assert hits, f"no line containing {expect!r} in stderr:\n{stderr}"
    assert hits[0].startswith(prefix), f"message does not name the program: {hits[0]!r}"
    assert "Sanitizer" not in stderr and "runtime error" not in stderr, stderr
    return hits[0]


def _assert_exit(proc, code: int):
    assert proc.returncode == code, (
        f"exit {proc.returncode}, want {code}\nstdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-2000:]}")


class _Live:
    """A running process whose stderr/stdout lines can be awaited without sleeping."""

    def __init__(self, argv, **kw):
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, **kw)
        self.lines: queue.Queue = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, sink, tag in ((self.proc.stdout, self.out, "out"), (self.proc.stderr, self.err, "err")):
            threading.Thread(target=self._pump, args=(stream, sink, tag), daemon=True).start()

    def _pump(self, stream, sink, tag):
        for line in stream:
            sink.append(line)
            self.lines.put((tag, line))
        self.lines.put((tag, None))

    def wait_line(self, tag: str, needle: str, count: int = 1, timeout: float = TIMEOUT_S) -> str:
        seen = 0
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {tag} line with {needle!r} within {timeout}s;\nstdout: {''.join(self.out)}\n"
                                     f"stderr: {''.join(self.err)}")
            try:
                t, line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None and t == tag:
                raise AssertionError(f"{tag} closed before a line with {needle!r}; exit {self.proc.poll()}\n"
                                     f"stdout: {''.join(self.out)}\nstderr: {''.join(self.err)}")
            if t == tag and line is not None and needle in line:
                seen += 1
                if seen == count:
                    return line

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=TIMEOUT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# --- aegis-core: flags (exit 2) ------------------------------------------------------------------------

@pytest.mark.parametrize("args, expect", [
    ([], "--endpoint-dir is required"),
    (["--endpoint-dir", "D", "--mode", "fast"], "--mode"),
    (["--endpoint-dir", "D", "--ring-capacity", "3"], "power of two"),
    (["--endpoint-dir", "D", "--duration", "10q"], "invalid duration"),
    (["--endpoint-dir", "D", "--count", "5", "--duration", "1s"], "excludes"),
    (["--endpoint-dir", "D", "--count", "0"], "--count: Value 0 not in range 1 to 18446744073709551615"),
    (["--endpoint-dir", "D", "--no-such-flag"], "no-such-flag"),
    (["--endpoint-dir", "D", "--retransmit-timeout", "0"], "--retransmit-timeout must be positive"),
    (["--endpoint-dir", "D", "--pump-nap", "0"], "--pump-nap must be positive"),
    (["--endpoint-dir", "D", "--sched-slice", "50us"], "--sched-slice must be 0 or 100us..100ms"),
    (["--endpoint-dir", "D", "--realtime-priority", "100"], "--realtime-priority"),
])
def test_core_bad_flags_exit_2(core, args, expect):
    p = _run([core, *args])
    _assert_exit(p, 2)
    _one_line_error(p.stderr, expect, "aegis-core:")


# --- aegis-core: endpoint directory (exit 3) ---------------------------------------------------------

def test_core_endpoint_dir_is_a_file(core, short_dir):
    f = short_dir / "file"
    f.write_text("x")
    p = _run([core, "--endpoint-dir", f, "--count", "1"])
    _assert_exit(p, 3)
    _one_line_error(p.stderr, "exists and is not a directory", "aegis-core:")


def test_core_endpoint_dir_cannot_be_created(core, short_dir):
    f = short_dir / "file"
    f.write_text("x")
    p = _run([core, "--endpoint-dir", f / "sub", "--count", "1"])
    _assert_exit(p, 3)
    _one_line_error(p.stderr, "cannot create", "aegis-core:")


def test_core_endpoint_path_too_long_for_ipc(core, tmp_path):
    d = tmp_path / ("d" * (120 - len(str(tmp_path))))  # <DIR>/offload.sock is past sockaddr_un's 108 bytes
    p = _run([core, "--endpoint-dir", d, "--count", "1"])
    _assert_exit(p, 3)
    line = _one_line_error(p.stderr, f"cannot bind ipc://{d}/offload.sock", "aegis-core:")
    assert "at most 107 bytes" in line and line.endswith(": File name too long"), line


def test_core_endpoint_dir_unwritable(core, short_dir):
    d = short_dir / "ro"
    d.mkdir(mode=0o500)
    os.chmod(d, 0o500)
    argv = [core, "--endpoint-dir", d, "--count", "1"]
    if os.geteuid() == 0:
        # root writes anywhere: run the core as nobody, in a directory nobody owns and cannot write.
        os.chown(short_dir, 65534, 65534)
        os.chown(d, 65534, 65534)
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    p = _run(argv)
    _assert_exit(p, 3)
    _one_line_error(p.stderr, "core.lock: Permission denied", "aegis-core:")


def test_core_refuses_a_loose_endpoint_dir(core, short_dir):
    d = short_dir / "loose"
    d.mkdir()
    os.chmod(d, 0o755)
    p = _run([core, "--endpoint-dir", d, "--count", "1"])
    _assert_exit(p, 3)
    _one_line_error(p.stderr, "has mode 0755, looser than 0700", "aegis-core:")
    assert not (d / "offload.sock").exists(), "nothing was bound in a refused directory"


def test_core_refuses_group_mode_without_endpoint_group(core, short_dir):
    d = short_dir / "grp"
    d.mkdir()
    os.chmod(d, 0o770)
    p = _run([core, "--endpoint-dir", d, "--count", "1"])
    _assert_exit(p, 3)
    _one_line_error(p.stderr, "has mode 0770, looser than 0700", "aegis-core:")


def test_core_creates_the_endpoint_dir_0700(core, short_dir):
    d = short_dir / "new" / "ep"
    p = _run([core, "--endpoint-dir", d, "--count", "1", "--high-risk-share", "0"])
    _assert_exit(p, 0)
    assert (d.stat().st_mode & 0o7777) == 0o700


def test_core_endpoint_group_makes_0770_and_accepts_it(core, short_dir):
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    d = short_dir / "shared"
    p = _run([core, "--endpoint-dir", d, "--endpoint-group", group, "--count", "1", "--high-risk-share", "0"])
    _assert_exit(p, 0)
    st = d.stat()
    assert (st.st_mode & 0o7777) == 0o770 and st.st_gid == os.getgid()
    # 0777 is looser than 0770 even with the group.
    os.chmod(d, 0o777)
    p = _run([core, "--endpoint-dir", d, "--endpoint-group", group, "--count", "1", "--high-risk-share", "0"])
    _assert_exit(p, 3)
    _one_line_error(p.stderr, "want at most 0770", "aegis-core:")


def test_core_unknown_endpoint_group(core, short_dir):
    p = _run([core, "--endpoint-dir", short_dir / "x", "--endpoint-group", "no-such-group-aegis", "--count", "1"])
    _assert_exit(p, 3)
    _one_line_error(p.stderr, "--endpoint-group no-such-group-aegis: no such group", "aegis-core:")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory owned by another user")
def test_core_refuses_an_endpoint_dir_owned_by_another_user(core, short_dir):
    d = short_dir / "theirs"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    p = _run([core, "--endpoint-dir", d, "--count", "1"])
    _assert_exit(p, 3)
    _one_line_error(p.stderr, "is owned by uid 65534, not by this user", "aegis-core:")


def test_core_endpoint_dir_held_by_a_live_core(core, short_dir):
    d = short_dir / "held"
    first = _Live([core, "--endpoint-dir", d, "--mode", "block", "--duration", "60s", "--rate", "10",
                   "--bridge-wait-report", "0", "--drain-timeout", "100ms"])
    try:
        pid_line = first.wait_line("out", "pid:")
        p = _run([core, "--endpoint-dir", d, "--count", "1"])
        _assert_exit(p, 3)
        line = _one_line_error(p.stderr, "another aegis-core (pid", "aegis-core:")
        assert pid_line.split()[-1] in line, "the message names the live core's pid"
    finally:
        first.stop()


# --- aegis-core: the bridge side ----------------------------------------------------------------------

def test_core_block_mode_without_a_bridge_waits_and_says_so(core, short_dir):
    d = short_dir / "nobridge"
    summary = short_dir / "s.json"
    live = _Live([core, "--endpoint-dir", d, "--mode", "block", "--count", "1000", "--ring-capacity", "16",
                  "--bridge-wait-report", "200ms", "--drain-timeout", "200ms", "--summary-json", summary])
    try:
        live.wait_line("err", "aegis-core: waiting for a bridge on ipc://", count=2)
        assert live.proc.poll() is None, "block mode keeps waiting for a bridge"
    finally:
        code = live.stop()
    assert code == 5, f"SIGTERM with transactions in flight in block mode is exit 5, got {code}"
    s = json.loads(summary.read_text())
    assert s["stopped_by_signal"] and s["identity_ok"] and s["lost"] == s["in_flight"] > 0
    assert_no_rejections(s, replay_of_test())


def test_core_drop_mode_without_a_bridge_keeps_accounting(core, short_dir):
    d = short_dir / "nobridge-drop"
    summary = short_dir / "s.json"
    p = _run([core, "--endpoint-dir", d, "--mode", "drop", "--count", "2000", "--ring-capacity", "16",
              "--bridge-wait-report", "100ms", "--drain-timeout", "300ms", "--summary-json", summary])
    _assert_exit(p, 6)
    _one_line_error(p.stderr, "waiting for a bridge on ipc://", "aegis-core:")
    s = json.loads(summary.read_text())
    assert s["identity_ok"] and s["offered"] == 2000
    assert_no_rejections(s, replay_of_test())
    assert s["dropped"]["ring_full"] > 0 and s["offered"] == s["verdicts"] + s["expired"] + s["dropped_total"] + s["in_flight"]


def test_core_counts_and_reports_a_peer_of_another_protocol_version(core, short_dir):
    import zmq

    from aegis_bridge import protocol as p

    d = short_dir / "badver"
    summary = short_dir / "s.json"
    live = _Live([core, "--endpoint-dir", d, "--mode", "block", "--count", "100", "--ring-capacity", "16",
                  "--bridge-wait-report", "0", "--drain-timeout", "100ms", "--summary-json", summary])
    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 1000)
    try:
        live.wait_line("out", "pid:")
        hello = bytearray(p.encode_hello(0, 12345))
        hello[4] = p.VERSION - 1  # a bridge of the previous protocol version
        push.connect(f"ipc://{d}/verdicts.sock")
        push.send(bytes(hello))
        live.wait_line("err", f"aegis-core: rejected 1 frame(s) of another protocol version (this core speaks v{p.VERSION})")
    finally:
        push.close()
        ctx.term()
        code = live.stop()
    assert code == 5, code
    s = json.loads(summary.read_text())
    assert s["rejected_frames"]["bad_version"] == 1 and s["bridge_incarnations"] == 0
    assert_no_rejections(s, replay_of_test(), expect={"bad_version": 1})  # that frame, and nothing else


@pytest.mark.parametrize("flag", ["--summary-json", "--ledger"])
def test_core_unwritable_output_fails_at_start(core, short_dir, flag):
    # Found before the run, not after it (a whole run used to end in "cannot write").
    target = short_dir / "no-such-dir" / "out"
    p = _run([core, "--endpoint-dir", short_dir / "ep", "--count", "10", flag, target])
    _assert_exit(p, 3)
    _one_line_error(p.stderr, f"cannot write {flag} {target}: No such file or directory", "aegis-core:")
    assert "offload:" not in p.stdout, "nothing was bound"


def test_core_summary_json_unwritable_at_exit_goes_to_stderr(core, short_dir):
    out_dir = short_dir / "out"
    out_dir.mkdir()
    target = out_dir / "s.json"
    live = _Live([core, "--endpoint-dir", short_dir / "sum", "--duration", "60s", "--high-risk-share", "0",
                  "--summary-json", target, "--bridge-wait-report", "0"])
    try:
        live.wait_line("out", "pid:")
        out_dir.rmdir()  # writable at start, gone at the end
        rc = live.stop()
    finally:
        live.kill()
    assert rc == 7, "".join(live.err)
    stderr = "".join(live.err)
    line = _one_line_error(stderr, f"cannot write --summary-json {target}", "aegis-core:")
    assert "summary follows on stderr" in line
    lines = stderr.splitlines()
    summary = json.loads(lines[lines.index(line.rstrip("\n")) + 1])
    assert summary["mode"] == "block" and summary["offered"] == 0 and summary["identity_ok"]
    assert_no_rejections(summary, replay_of_test())


# --- aegis-sim: flags, seeds, fault plans, schedules (exit 64) -------------------------------------------

@pytest.mark.parametrize("args, expect", [
    ([], "A subcommand is required"),
    (["run"], "--seed is required"),
    (["run", "--seed", "xyz"], "not a seed: xyz"),
    (["run", "--seed", "18446744073709551616"], "not a seed"),
    (["run", "--seed", "0x1ffffffffffffffff"], "not a seed"),
    (["run", "--seed", "1", "--sim-duration", "10q"], "not a duration: 10q"),
    (["run", "--seed", "1", "--faults", "crash@1s"], "needs 2 fields after @"),
    (["run", "--seed", "1", "--faults", "explode@1s/1s"], "unknown fault kind 'explode'"),
    (["run", "--seed", "1", "--faults", "site:transport.sned/1000000/1000"], "unknown fault site 'transport.sned'"),  # was: ignored
    (["run", "--seed", "1", "--ring-capacity", "3"], "must be a power of two"),
    (["run", "--seed", "1", "--mode", "fast"], "--mode"),
    # Each of these used to run: 0 silently meant "from the seed", or the run
    # ended in a simulated CRASH (exit 3) or liveness failure (exit 2) that
    # reads like a bug found.
    (["run", "--seed", "1", "--producers", "0"], "--producers: must be at least 1"),
    (["run", "--seed", "1", "--rate", "0"], "--rate: must be at least 1"),
    (["run", "--seed", "1", "--burst", "0"], "--burst: must be at least 1"),
    (["run", "--seed", "1", "--batch-max", "0"], "--batch-max: must be at least 1"),
    (["run", "--seed", "1", "--batch-max", "1025"], "batch_max (--batch-max) must be in 1..1024"),
    (["run", "--seed", "1", "--ring-capacity", "0"], "--ring-capacity: must be at least 1"),
    (["run", "--seed", "1", "--sim-duration", "0s"], "sim_duration (--sim-duration) must be positive"),
    (["run", "--seed", "1", "--retransmit", "0s"], "retransmit (--retransmit) must be positive"),
    (["run", "--seed", "1", "--converge", "0s"], "converge (--converge) must be positive"),
    (["run", "--seed", "1", "--scheduler", "pct", "--pct-depth", "0"], "pct_depth (--pct-depth) must be at least 1"),
    (["run", "--seed", "1", "--preempt-ppm", "1000001"], "preempt_ppm (--preempt-ppm) must be at most 1000000"),
    (["replay", "--schedule", "{\"seed\":1,\"retransmit\":\"0s\"}"], "schedule: retransmit (--retransmit) must be positive"),
    (["replay", "--schedule", "{\"seed\":1,\"pct_depth\":0}"], "schedule: pct_depth (--pct-depth) must be at least 1"),
    (["replay", "--schedule", "{\"seed\":1,\"producers\":0}"], "schedule: producers (--producers) must be at least 1"),
    (["replay", "--schedule", "{\"seed\":1,\"rat\":5000}"], "schedule: unknown field 'rat'"),  # was: ignored, rate from the seed
    (["run", "--seed", "1", "--mutant", "no_rewnd"], "mutant (--mutant) 'no_rewnd' is not one of: release_on_send"),  # was: ran unmutated
    (["replay", "--schedule", "{\"seed\":1,\"mutant\":\"no_rewnd\"}"], "schedule: mutant (--mutant) 'no_rewnd' is not one of"),
    (["chaos", "--budget", "3s", "--sim-duration", "0s"], "--sim-duration: must be positive"),
    (["chaos", "--budget", "3s", "--seed-timeout", "0s"], "--seed-timeout: must be positive"),  # was: every seed a "hang"
    (["chaos", "--budget", "3s", "--max-failures", "0"], "--max-failures: must be at least 1"),
    # Output paths are checked before the run: these used to run and drop the
    # trace silently, or end in a simulated CRASH (exit 3) when writing.
    (["run", "--seed", "1", "--trace", "/nonexistent/dir/t.json"], "--trace: cannot write /nonexistent/dir/t.json"),
    (["replay", "--schedule", "{\"seed\":1}", "--trace", "/nonexistent/dir/t.json"], "--trace: cannot write"),
    (["bench", "--results", "/nonexistent/dir/b.json"], "--results: cannot write /nonexistent/dir/b.json"),
    (["bench", "--rate", "0"], "--rate: must be at least 1"),
    (["chaos", "--budget", "3s", "--out", "/proc/aegis-nope"], "--out: cannot write reports to /proc/aegis-nope"),
    (["replay", "--schedule", "{\"seed\":"], "schedule is not JSON"),
    (["replay", "--schedule", "{\"mode\":\"block\"}"], "an object with a \"seed\" is required"),
    (["replay", "--schedule", "{\"seed\":1,\"faults\":\"crash@\"}"], "bad time in 'crash@'"),
    (["replay", "--schedule", "/nonexistent/schedule.json"], "cannot read file '/nonexistent/schedule.json'"),
])
def test_sim_bad_input_exit_64(sim, args, expect):
    p = _run([sim, *args])
    _assert_exit(p, 64)
    lines = [ln for ln in p.stderr.splitlines() if expect in ln]
    assert lines, f"no stderr line with {expect!r}:\n{p.stderr}"
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr


# --- aegis-bridge: flags (exit 2) ------------------------------------------------------------------------

@pytest.mark.parametrize("args, expect", [
    ([], "the following arguments are required"),
    (["--offload", "tcp//x", "--verdicts", "ipc:///tmp/v"], "is not a ZeroMQ endpoint"),
    (["--offload", "ipc:///tmp/o", "--verdicts", "ipc:///tmp/v", "--sched-slice", "10us"], "must be 0 or 100us..100ms"),
    (["--offload", "ipc:///tmp/o", "--verdicts", "ipc:///tmp/v", "--realtime-priority", "100"], "outside 0..99"),
    (["--offload", "ipc:///tmp/" + "o" * 110, "--verdicts", "ipc:///tmp/v"],
     "cannot connect (File name too long) (an ipc:// path may have at most 107 bytes)"),
    (["--offload", "ipc:///tmp/o", "--verdicts", "ipc:///tmp/v", "--stats-json", "/nonexistent/dir/s.json"],
     "cannot write --stats-json /nonexistent/dir/s.json: No such file or directory"),  # was: a traceback at exit
])
def test_bridge_bad_flags_exit_2(args, expect):
    p = _run([*bridge_argv(), *args], env=bridge_env())
    _assert_exit(p, 2)
    _one_line_error(p.stderr, expect, "aegis-bridge:")


# --- scripts/real_chaos.py: flags (exit 2) ----------------------------------------------------------------

@pytest.mark.parametrize("budget, expect", [("0s", "must be positive"), ("1x", "not a duration"),
                                            ("2 minutes", "not a duration")])
def test_real_chaos_bad_budget_exit_2(budget, expect):
    p = _run([PYTHON, str(REPO / "scripts" / "real_chaos.py"), "--budget", budget])
    _assert_exit(p, 2)
    assert f"argument --budget: {expect}" in p.stderr.splitlines()[-1], p.stderr


# --- scripts/train_model.py: flags (exit 2, nothing written) -------------------------------------------

@pytest.mark.parametrize("args, expect", [
    (["--samples", "10"], "argument --samples: 10 is too few"),  # was: AssertionError traceback
    (["--l2", "-1"], "argument --l2: -1 must be a positive number"),  # was: trained and wrote weights
    (["--sklearn", "/nonexistent/dir/m.pkl"], "cannot write /nonexistent/dir/m.pkl"),  # was: weights first, then a traceback
])
def test_train_model_bad_input_exit_2_and_writes_nothing(tmp_path, args, expect):
    out = tmp_path / "w.json"
    p = _run([PYTHON, str(REPO / "scripts" / "train_model.py"), "--out", str(out), *args])
    _assert_exit(p, 2)
    assert expect in p.stderr.splitlines()[-1], p.stderr
    assert not out.exists(), "nothing may be written when the arguments are bad"


# --- scripts/bench_e2e.py: flags (exit 2) ----------------------------------------------------------------

@pytest.mark.parametrize("args, expect", [
    (["--reps", "0"], "argument --reps: must be positive"),  # was: StatisticsError after the runs
    (["--rates", "0"], "argument --rates: every rate must be positive"),  # was: a flat-out run labelled 0/s
    (["--rates", "10k"], "argument --rates: expected rates per second"),
    (["--duration", "0"], "argument --duration: must be positive"),
])
def test_bench_e2e_bad_flags_exit_2(args, expect):
    p = _run([PYTHON, str(REPO / "scripts" / "bench_e2e.py"), *args])
    _assert_exit(p, 2)
    assert expect in p.stderr.splitlines()[-1], p.stderr


@pytest.mark.parametrize("args, expect", [
    (["--reps", "0"], "argument --reps: must be positive"),
    (["--seconds", "-1"], "argument --seconds: must be positive"),
    (["--runtimes", "numpy,onnx"], "--runtimes: expected a comma-separated subset of numpy,sklearn,xgboost"),
])
def test_bench_runtimes_bad_flags_exit_2(args, expect):
    p = _run([PYTHON, str(REPO / "scripts" / "bench_runtimes.py"), *args])
    _assert_exit(p, 2)
    assert expect in p.stderr.splitlines()[-1], p.stderr


# --- SCHED_FIFO refused (exit 3 / 2) -----------------------------------------------------------------

def _as_unprivileged(argv):
    """argv run as nobody with no RLIMIT_RTPRIO allowance, or None when that cannot be arranged."""
    if os.geteuid() != 0:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
        return argv if hard == 0 else None
    if shutil.which("setpriv") is None or shutil.which("prlimit") is None:
        return None
    return ["prlimit", "--rtprio=0", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv]


def test_core_realtime_priority_refused_exit_3(core, short_dir):
    os.chown(short_dir, 65534, 65534) if os.geteuid() == 0 else None
    argv = _as_unprivileged([core, "--endpoint-dir", short_dir / "ep", "--count", "1", "--realtime-priority", "10"])
    if argv is None:
        pytest.skip("cannot run the core without SCHED_FIFO rights here")
    p = _run(argv)
    _assert_exit(p, 3)
    _one_line_error(p.stderr, "--realtime-priority 10: cannot switch to SCHED_FIFO", "aegis-core:")


def test_bridge_realtime_priority_refused_exit_2():
    env = bridge_env()
    argv = _as_unprivileged([*bridge_argv(), "--offload", "ipc:///tmp/aegis-rt-o",
                             "--verdicts", "ipc:///tmp/aegis-rt-v", "--realtime-priority", "10"])
    if argv is None:
        pytest.skip("cannot run the bridge without SCHED_FIFO rights here")
    p = _run(argv, env=env)
    _assert_exit(p, 2)
    _one_line_error(p.stderr, "--realtime-priority 10: cannot switch to SCHED_FIFO", "aegis-bridge:")
