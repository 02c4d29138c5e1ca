#!/usr/bin/python3
"""Proves aegis-core, aegis-sim and the bridge read durations by the one grammar.

Every string of fixtures/durations/grammar.json goes to one duration option of
each CLI and to the bridge's parser: each accepted string must be accepted by
all three, each rejected string refused by all three. Neither tool runs: each command line also carries a flag that
is refused only *after* every duration was parsed, so an accepted duration
shows as that later error and a refused one as the duration error.

  aegis-core --endpoint-dir D --ttl=S --sched-slice 1ns
      accepted: "--sched-slice must be 0 or 100us..100ms"; refused: "invalid duration"
  aegis-sim run --seed 1 --converge=S --ring-capacity 3
      accepted: a parameter check ("must be ..."); refused: "not a duration"

  bridge: aegis_bridge.durations.parse_duration_ns (what every bridge option
      and the slow test model parse with)

`--opt=S` keeps strings such as "-1s" a value rather than a flag (the empty
string goes as a separate argument).

Usage: duration_cli_test.py AEGIS_CORE AEGIS_SIM GRAMMAR_JSON [REPO_ROOT]
Reproduce one case by running the printed command.
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile


def option(flag, text):
    """`--opt=S` keeps "-1s" a value, not a flag; an empty value goes as its own argument."""
    return [flag, text] if text == "" else [f"{flag}={text}"]


def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def core_reads(core, endpoint_dir, text):
    argv = [core, "--endpoint-dir", endpoint_dir, *option("--ttl", text), "--sched-slice", "1ns"]
    rc, out = run(argv)
    if rc == 2 and "--sched-slice must be 0 or 100us..100ms" in out:
        return True, argv, out
    if rc == 2 and "invalid duration" in out:
        return False, argv, out
    return None, argv, out


def sim_reads(sim, text):
    argv = [sim, "run", "--seed", "1", "--ring-capacity", "3", *option("--converge", text)]
    rc, out = run(argv)
    if "not a duration" in out:
        return False, argv, out
    if rc != 0 and "must be" in out:
        return True, argv, out
    return None, argv, out


def bridge_reads(repo, text):
    """The bridge parser's verdict (None when it could not be asked)."""
    code = ("import sys\nfrom aegis_bridge.durations import parse_duration_ns\n"
            "try:\n    parse_duration_ns(sys.argv[1])\nexcept ValueError:\n    sys.exit(1)\n")
    env = dict(os.environ, PYTHONPATH=os.path.join(repo, "src"))
    argv = ["/usr/bin/python3", "-c", code, text]
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    if p.returncode not in (0, 1):
        return None, argv, p.stdout + p.stderr
    return p.returncode == 0, argv, p.stdout + p.stderr


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 64
    core, sim, grammar_path = sys.argv[1:4]
    repo = sys.argv[4] if len(sys.argv) == 5 else os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(grammar_path))))
    with open(grammar_path) as f:
        grammar = json.load(f)
    cases = [(text, True) for text, _ in grammar["accept"]] + [(text, False) for text in grammar["reject"]]
    assert len(cases) > 0, "the grammar file lists cases"
    failures = []
    with tempfile.TemporaryDirectory(prefix="aegis-duration-cli-") as tmp:
        endpoint_dir = os.path.join(tmp, "never-created")
        for text, want in cases:
            for name, (got, argv, out) in (("aegis-core", core_reads(core, endpoint_dir, text)),
                                           ("aegis-sim", sim_reads(sim, text)),
                                           ("the bridge", bridge_reads(repo, text))):
                if got is not want:
                    failures.append(f"{name} {'accepted' if got else 'refused' if got is False else 'did something else with'} "
                                    f"{text!r} (grammar: {'accept' if want else 'reject'})\n"
                                    f"  reproduce: {shlex.join(argv)}\n  output: {out.strip()[:300]}")
        assert not os.path.exists(endpoint_dir), "no aegis-core run started: every case stopped at its flags"
    for f in failures:
        print("FAIL " + f)
    print(f"{len(cases)} durations x 3 readers: {len(failures)} disagreement(s) with {grammar_path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
