#!/usr/bin/python3
"""What this proves: the nightly workflow and the Kubernetes manifests use only
commands and flags the binaries really have, so a renamed or removed flag fails
`make test` (ctest chaos_deploy_files_use_real_flags) instead of failing at 2 a.m.

How: it parses every YAML file (python3-yaml), collects each command line that
runs aegis-sim, aegis-core or the bridge (`run:` scripts, `command`/`args`
lists, `sh -c` strings, with line continuations joined), and checks
  - aegis-sim: the subcommand exists and each --flag appears in that
    subcommand's --help;
  - aegis-core (when its binary is given), `python3 -m aegis_bridge` and
    scripts/real_chaos.py: each --flag appears in their --help.
It then runs each aegis-sim chaos command for real with tiny budgets (shell
expressions replaced by sample values), so a value the CLI rejects fails too.

Usage: check_deploy_files.py AEGIS_SIM_BIN [AEGIS_CORE_BIN]
"""

import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
FILES = [REPO / ".github/workflows/nightly.yml", REPO / "deploy/k8s/chaos-job.yaml", REPO / "deploy/k8s/aegis-pod.yaml"]


COMMAND_KEYS = {"run", "command", "args"}  # workflow steps, container specs


def strings_in(node, under_command=False):
    """Every command string in a YAML tree: `run:` scripts, and `command`/`args`
    lists (each list also joined into one command line)."""
    if isinstance(node, str):
        if under_command:
            yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings_in(v, k in COMMAND_KEYS)
    elif isinstance(node, list):
        if under_command and node and all(isinstance(x, (str, int)) for x in node):
            yield shlex.join(str(x) for x in node)
        for v in node:
            yield from strings_in(v, under_command)


def command_lines(text):
    """Logical shell lines of a script (backslash continuations joined)."""
    return [ln.strip() for ln in text.replace("\\\n", " ").splitlines() if ln.strip()]


def tokens_of(line):
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


SHELL_SEPARATORS = {"exec", "&&", "||", ";", "|", "then", "do", "time", "nice", "env"}


def command_position(toks, i):
    """True when toks[i] is where a shell looks for a command name (not an argument)."""
    return i == 0 or toks[i - 1] in SHELL_SEPARATORS or toks[i - 1].endswith(";")


def help_flags(argv):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    flags = set(re.findall(r"(--[a-z][a-z0-9-]*)", p.stdout + p.stderr))
    if not flags:
        raise SystemExit(f"FAIL: `{shlex.join(argv)}` printed no flags:\n{p.stdout}{p.stderr}")
    return flags


def substitute(token, k=1):
    """Replaces shell and workflow expressions with sample values a real run accepts."""
    token = re.sub(r"\$\{\{\s*matrix\.shard\s*\}\}", str(k), token)
    token = re.sub(r"\$\{\{[^}]*\}\}", "7", token)
    token = re.sub(r"\$\(\(JOB_COMPLETION_INDEX \+ 1\)\)", str(k), token)
    return (token.replace("$SHARDS", "3").replace("$BUDGET", "1s").replace("$SEED_BASE", "42")
            .replace("$JOB_COMPLETION_INDEX", str(k - 1)))


def main():
    sim = sys.argv[1]
    core = sys.argv[2] if len(sys.argv) > 2 else None
    failures, checked, runs = [], 0, []
    sim_help = {}
    core_flags = help_flags([core, "--help"]) if core else None
    bridge_flags = help_flags(["/usr/bin/python3", "-m", "aegis_bridge", "--help"])
    real_chaos_flags = help_flags(["/usr/bin/python3", str(REPO / "scripts/real_chaos.py"), "--help"])
    for path in FILES:
        docs = list(yaml.safe_load_all(path.read_text()))
        lines = set()
        for doc in docs:
            for s in strings_in(doc):
                lines.update(command_lines(s))
        for line in sorted(lines):
            toks = tokens_of(line)
            for i, tok in enumerate(toks):
                if not command_position(toks, i):
                    continue
                name = Path(tok).name
                if name == "aegis-sim":
                    sub = toks[i + 1] if i + 1 < len(toks) else ""
                    if sub not in sim_help:
                        sim_help[sub] = help_flags([sim, sub, "--help"]) if sub in ("run", "chaos", "replay", "bench") else None
                    if sim_help[sub] is None:
                        failures.append(f"{path.name}: aegis-sim has no subcommand '{sub}': {line}")
                        break
                    for f in (t.split("=")[0] for t in toks[i + 2:] if t.startswith("--")):
                        checked += 1
                        if f not in sim_help[sub]:
                            failures.append(f"{path.name}: aegis-sim {sub} has no flag {f}: {line}")
                    if sub == "chaos" and "--merge" not in toks:
                        runs.append((path.name, toks[i + 2:]))
                    break
                if name == "aegis-core" and core_flags is not None:
                    for f in (t.split("=")[0] for t in toks[i + 1:] if t.startswith("--")):
                        checked += 1
                        if f not in core_flags:
                            failures.append(f"{path.name}: aegis-core has no flag {f}: {line}")
                    break
                if Path(tok).name.startswith("python3") and toks[i + 1:i + 3] == ["-m", "aegis_bridge"]:
                    for f in (t.split("=")[0] for t in toks[i + 3:] if t.startswith("--")):
                        checked += 1
                        if f not in bridge_flags:
                            failures.append(f"{path.name}: the bridge has no flag {f}: {line}")
                    break
                if Path(tok).name.startswith("python3") and i + 1 < len(toks) and toks[i + 1].endswith("real_chaos.py"):
                    for f in (t.split("=")[0] for t in toks[i + 2:] if t.startswith("--")):
                        checked += 1
                        if f not in real_chaos_flags:
                            failures.append(f"{path.name}: real_chaos.py has no flag {f}: {line}")
                    break
    if not runs:
        failures.append("no aegis-sim chaos command found in the deploy files: is this check looking in the right place?")
    # Run each chaos command as written, with tiny budgets and short seeds.
    with tempfile.TemporaryDirectory(prefix="deploy-check-") as tmp:
        for name, args in runs:
            argv = [substitute(a) for a in args]
            for j, a in enumerate(argv):
                if a == "--out" and j + 1 < len(argv):
                    argv[j + 1] = str(Path(tmp) / name / Path(argv[j + 1]).name)
                if a == "--budget" and j + 1 < len(argv):
                    argv[j + 1] = "1s"
            argv = [sim, "chaos", *argv, "--sim-duration", "100ms", "--seed-count", "6"]
            p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            print("$", shlex.join(argv), "->", p.returncode)
            if p.returncode != 0:
                failures.append(f"{name}: `{shlex.join(argv)}` exited {p.returncode}:\n{p.stdout}{p.stderr}")
    for f in failures:
        print("FAIL:", f)
    print(f"checked {checked} flags in {len(FILES)} files; ran {len(runs)} chaos command(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
