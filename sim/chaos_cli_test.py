#!/usr/bin/python3
"""What this proves about `aegis-sim chaos` end to end, with the real binary (ctest, label sim / mutant):

  shards     --shard 1/3, 2/3 and 3/3 over one --seed-count range run disjoint
             seeds whose union is the whole range; --merge of the three gives
             one report with every seed, and refuses two reports that overlap;
             summary.json has the documented fields and junit.xml parses.
  mutant     a deliberately broken build (--mutant NAME) makes chaos exit 1 and
             report the failure: a failure directory, a junit testcase for the
             seed, and a replay line that, run as printed, fails the same way
             with the same trace hash.

Usage: chaos_cli_test.py AEGIS_SIM_BIN {shards|mutant} [MUTANT]
Each run is a few short seeds (--sim-duration 200ms), so the test takes seconds.
"""

import json
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

SUMMARY_FIELDS = ("seeds_run", "failures_by_kind", "seeds_per_minute", "seeds_per_minute_per_core",
                  "simulated_events_per_second", "rare_state_coverage", "default_seed_length", "seeds", "failures")


def run(argv, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=240, **kw)
    return p.returncode, p.stdout + p.stderr


def fail(why, output=""):
    print(output)
    print(f"FAIL: {why}")
    sys.exit(1)


def chaos(sim, out, *args):
    argv = [sim, "chaos", "--budget", "120s", "--out", str(out), "--progress", "none", "--sim-duration", "200ms",
            *map(str, args)]
    rc, text = run(argv)
    print("$", shlex.join(argv), f"-> exit {rc}")
    return rc, text


def check_report(out, text):
    summary = json.loads((out / "summary.json").read_text())
    missing = [f for f in SUMMARY_FIELDS if f not in summary]
    if missing:
        fail(f"summary.json lacks {missing}", text)
    suites = ET.parse(out / "junit.xml").getroot()
    names = [tc.get("name") for tc in suites.iter("testcase")]
    if "summary" not in names:
        fail(f"junit.xml has no summary testcase: {names}", text)
    return summary, names


def shards(sim):
    with tempfile.TemporaryDirectory(prefix="chaos-shards-") as tmp:
        tmp = Path(tmp)
        count, base = 12, 5000
        per_shard = []
        for k in (1, 2, 3):
            out = tmp / f"s{k}"
            rc, text = chaos(sim, out, "--jobs", 2, "--shard", f"{k}/3", "--seed-base", base, "--seed-count", count)
            if rc != 0:
                fail(f"shard {k}/3 exited {rc}", text)
            summary, _ = check_report(out, text)
            per_shard.append(set(summary["seeds"]))
            if summary["seeds_run"] != len(summary["seeds"]):
                fail("seeds_run disagrees with the seed list", text)
        for i in range(3):
            for j in range(i + 1, 3):
                if per_shard[i] & per_shard[j]:
                    fail(f"shards {i + 1}/3 and {j + 1}/3 overlap: {sorted(per_shard[i] & per_shard[j])}")
        union = set().union(*per_shard)
        if union != set(range(base, base + count)):
            fail(f"the shards' union {sorted(union)} is not the range [{base}, {base + count})")
        print("shards disjoint, union =", f"[{base}, {base + count})")

        merged = tmp / "merged"
        rc, text = run([sim, "chaos", "--merge", *(str(tmp / f"s{k}") for k in (1, 2, 3)), "--out", str(merged)])
        if rc != 0:
            fail(f"merge exited {rc}", text)
        summary, _ = check_report(merged, text)
        if sorted(summary["seeds"]) != list(range(base, base + count)) or summary["seeds_run"] != count:
            fail(f"merged report holds seeds {summary['seeds']}", text)
        rc, text = run([sim, "chaos", "--merge", str(tmp / "s1"), str(tmp / "s1"), "--out", str(tmp / "bad")])
        if rc == 0:
            fail("merging a report with itself (every seed twice) succeeded", text)
        print("merge ok; overlap refused:", text.strip().splitlines()[-1])


# Mutants planted in the Python bridge (aegis::bridge_mutants): chaos runs them with --bridge python.
BRIDGE_MUTANTS = {"wrong_seq_on_resend"}


def mutant(sim, name):
    rc, helptext = run([sim, "chaos", "--help"])
    if "--mutant" not in helptext:
        print("SKIP: this aegis-sim has no --mutant")
        sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="chaos-mutant-") as tmp:
        out = Path(tmp) / "out"
        rc, text = chaos(sim, out, "--jobs", 2, "--seed-base", 100, "--seed-count", 8, "--mutant", name,
                         "--max-failures", 1, "--shrink-budget", "20s")
        print(text)
        if rc != 1:
            fail(f"chaos with mutant {name} exited {rc}, expected 1 (a failure found)", text)
        summary, names = check_report(out, text)
        if not summary["failures"]:
            fail("no failure recorded in summary.json", text)
        f = summary["failures"][0]
        if f"seed {f['seed']}" not in names:
            fail(f"junit.xml has no testcase for seed {f['seed']}: {names}", text)
        fdir = out / f["dir"]
        for part in ("trace.json", "replay.sh", "schedule.txt", "failure.json", "params.txt"):
            if not (fdir / part).is_file():
                fail(f"failure directory lacks {part}", text)
        json.loads((fdir / "trace.json").read_text())  # Perfetto reads Chrome trace JSON
        if f"replay: {f['replay']}" not in text:
            fail("the replay line is not printed as it is recorded", text)
        # Run the printed replay line exactly as a user would paste it.
        rc2, replay_out = run(["/bin/sh", "-c", f["replay"]])
        print(replay_out[-1500:])
        if rc2 != f["exit_code"]:
            fail(f"replay exited {rc2}, the chaos failure had exit {f['exit_code']}", replay_out)
        if f"trace_hash={f['trace_hash']}" not in replay_out:
            fail(f"replay did not print trace_hash={f['trace_hash']}", replay_out)
        if name in BRIDGE_MUTANTS and '"bridge":"python"' not in f["replay"]:
            fail(f"mutant {name} lives in the Python bridge, but the replay line does not run it", f["replay"])
        print(f"mutant {name}: caught as seed {f['seed']} ({f['kind']}), shrunk to '{f['schedule']}', "
              f"replay reproduces exit {rc2} and trace_hash={f['trace_hash']}")


if __name__ == "__main__":
    binary, what = sys.argv[1], sys.argv[2]
    if what == "shards":
        shards(binary)
    elif what == "mutant":
        mutant(binary, sys.argv[3] if len(sys.argv) > 3 else "skip_drop_count")
    else:
        fail(f"unknown check {what}")
    print("PASS")
