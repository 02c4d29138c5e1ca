"""Proves the worked example in docs/BRIDGE.md ("Your own model") works as written.

The test reads the shell block that follows the marker comment in
docs/BRIDGE.md and runs those very commands with bash, from the repository
root, with `aegis-bridge` first on PATH (the installed console script under
tox). Only three things are substituted, so the run cannot collide with
anything else on the machine: the /tmp/mymodel directory (a fresh one), the
two ipc:// endpoints (a fake core's) and the metrics port (a free one).
- The --check-model command must print the line the document shows, up to
  its timings (the synthetic records are seeded, so the decision counts are
  exact).
- The serving command (backgrounded with `&` in the document) must answer
  every record the fake core sends with exactly what the example scorer
  computes in-process.
- The curl command must print the aegis_bridge_model_info line the document
  shows.
Then SIGTERM stops the bridge with exit code 0.
"""

import importlib.util
import re
import signal
import subprocess

import numpy as np
import pytest

from aegis_fixtures.bridge_cli import bridge_bin_dir
from aegis_fixtures.fake_core import FakeCore
from aegis_fixtures.harness import REPO, free_port
from aegis_fixtures.observe import try_scrape
from aegis_fixtures.processes import Proc
from aegis_fixtures.waiting import wait_value

pytestmark = pytest.mark.real

DOC = REPO / "docs" / "BRIDGE.md"
MARKER = "<!-- pytests/test_docs_example.py runs these commands"


def documented_commands() -> list[str]:
    """The commands of the shell block after MARKER, continuation lines joined."""
    text = DOC.read_text()
    assert MARKER in text, f"{DOC} lost its tested example (marker {MARKER!r})"
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARKER):], re.S)
    assert block, "a ```sh block follows the marker"
    return [c.strip() for c in block.group(1).replace("\\\n", " ").splitlines() if c.strip()]


def documented_block_after(heading: str) -> str:
    """The first fenced block after the sentence `heading` in the worked example."""
    text = DOC.read_text()
    start = text.index(heading, text.index(MARKER))
    return re.search(r"```\n(.*?)\n```", text[start:], re.S).group(1)


def without_timings(line: str) -> str:
    return re.sub(r"in [\d.]+ ms \([\d,]+ records/s\)", "in T ms (R records/s)", line)


def test_the_worked_example_runs_as_documented(harness, tmp_path):
    commands = documented_commands()
    assert [c.split()[0] for c in commands] == ["mkdir", "cp", "PYTHONPATH=/tmp/mymodel", "PYTHONPATH=/tmp/mymodel",
                                                "curl"], commands
    model_dir, port = tmp_path / "mymodel", free_port()
    harness.endpoint_dir.mkdir(mode=0o700)
    core = FakeCore(harness.endpoint_dir)

    def ours(command: str) -> str:
        return (command.replace("/tmp/mymodel", str(model_dir))
                .replace("ipc:///run/aegis/offload.sock", core.offload_ep)
                .replace("ipc:///run/aegis/verdicts.sock", core.verdicts_ep)
                .replace("9108", str(port)))

    bin_dir = bridge_bin_dir(tmp_path)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}

    def run(command: str) -> str:
        r = subprocess.run(["bash", "-c", ours(command)], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, f"{command}: exit {r.returncode}\n{r.stdout}{r.stderr}"
        return r.stdout

    bridge = None
    try:
        mkdir, cp, check, serve, curl = commands
        run(mkdir)
        run(cp)
        assert (model_dir / "mymodel.py").read_text() == (REPO / "examples/scorer/mymodel.py").read_text()
        printed = run(check).strip()
        assert without_timings(printed) == without_timings(documented_block_after("The check prints one line")), \
            printed
        assert serve.endswith("&"), "the document backgrounds the serving bridge"
        # bash -c execs a single simple command, so the Proc is the bridge itself and gets the SIGTERM.
        bridge = Proc("docs-bridge", ["bash", "-c", ours(serve[:-1].strip())], tmp_path / "bridge.log",
                      env=env, cwd=REPO).start()
        sent = np.concatenate(core.send_txns(3000, per_frame=500))
        core.wait_verdict_records(len(sent), timeout_s=60)
        spec = importlib.util.spec_from_file_location("docs_mymodel", model_dir / "mymodel.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        scores, decisions = module.make_scorer().score(sent)
        v = core.verdict_records()
        assert np.array_equal(v["seq"], sent["seq"]) and (v["flags"] == 0).all()
        assert np.array_equal(v["score"], scores) and np.array_equal(v["decision"], decisions)
        wait_value(lambda: try_scrape(port), 30, "the bridge's metrics endpoint")
        shown = re.search(r"the metrics show\n`([^`]+)`", DOC.read_text()).group(1)
        assert run(curl).strip() == shown
        bridge.signal(signal.SIGTERM)
        assert bridge.wait(30) == 0, bridge.log_text()
    finally:
        if bridge is not None:
            bridge.kill()
        core.close()
