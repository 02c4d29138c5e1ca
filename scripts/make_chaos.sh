#!/usr/bin/env bash
# `make chaos`: simulation chaos, then real-process chaos, then a short human
# summary of what ran, what was injected, what was checked and where the
# reports are. Exits non-zero when either found a failure.
#
#   scripts/make_chaos.sh BUILD_DIR SIM_BUDGET REAL_BUDGET OUT_DIR JOBS
#   scripts/make_chaos.sh build/release 60s 60s chaos-out 2
#
# OUT_DIR gets the simulator's report (summary.json, junit.xml, seeds.jsonl,
# failures/), the real-process run in OUT_DIR/real, and the real run's plot
# copied to OUT_DIR/timeline.png so one directory holds everything CI uploads.
set -uo pipefail

build=$1 sim_budget=$2 real_budget=$3 out=$4 jobs=$5
sim="$build/sim/aegis-sim"
core="$build/src/aegis-core"
[[ -x $core ]] || core="$build/src/core/aegis-core"  # older layout
for bin in "$sim" "$core"; do
  [[ -x $bin ]] || { echo "make chaos: $bin is not built" >&2; exit 2; }
done
mkdir -p "$out"

echo "== simulation chaos: $sim_budget of swarm seeds on $jobs job(s) =="
"$sim" chaos --budget "$sim_budget" --jobs "$jobs" --out "$out" 2>&1 | tee "$out/sim.log"
sim_rc=${PIPESTATUS[0]}

echo
# The real bridge serves the slow test model (100 us per record, offered at
# half its capacity): at a real model's cost, a transport that resends to a
# slow bridge melts down, and every epoch checks resends and goodput.
echo "== real-process chaos: $real_budget of aegis-core + the Python bridge (slow test model, 100us/record, 50 % load) =="
/usr/bin/python3 scripts/real_chaos.py --budget "$real_budget" --core-bin "$core" --out "$out/real" \
  --model-cost 100us --load 0.5 2>&1 | tee "$out/real.log"
real_rc=${PIPESTATUS[0]}
[[ -f $out/real/timeline.png ]] && cp "$out/real/timeline.png" "$out/timeline.png"

/usr/bin/python3 - "$out" "$sim_rc" "$real_rc" <<'PY'
import json, sys
from pathlib import Path

out, sim_rc, real_rc = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def load(p):
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None

sim, real = load(out / "summary.json"), load(out / "real" / "summary.json")
print("\n================ make chaos: summary ================")
print("What ran:")
if sim:
    cov = sim["rare_state_coverage"]
    print(f"  simulation: {sim['seeds_run']} seeds of {sim['default_seed_length']} simulated each, swarm fault mixes, "
          f"modes {sim['modes']}, schedulers {sim['schedulers']}, in {sim['wall_s']:.0f}s on {sim['jobs']} job(s): "
          f"{sim['seeds_per_minute_per_core']:.0f} seeds/min/core, {sim['simulated_events_per_second']:.2e} simulated events/s")
    b = sim.get("bridges", {})
    print(f"  simulation bridges: {b.get('python', 0)} seed(s) ran the real bridge (BridgeCore, --bridge python), "
          f"{b.get('model', 0)} the C++ model; {sim['swarm_kinds_enabled'].get('restart', 0)} seed(s) restarted the core")
else:
    print(f"  simulation: no report (aegis-sim chaos exited {sim_rc})")
if real:
    print(f"  real processes: {len(real['epochs'])} epoch(s) of aegis-core + the Python bridge "
          f"({', '.join(e['mode'] for e in real['epochs'])}) in {real['elapsed_s']:.0f}s, seed {real['seed']}")
else:
    print(f"  real processes: no report (real_chaos.py exited {real_rc})")
print("What was injected:")
if sim:
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(sim["swarm_kinds_enabled"].items(), key=lambda kv: -kv[1]))
    print(f"  simulation (seeds per fault kind): {kinds}")
if real:
    t = real["tally"]
    fiu = sum(v for k, v in t.items() if k.startswith("fiu burst "))
    print(f"  real: {t.get('bridge SIGKILLs', 0)} bridge SIGKILLs + restarts, {t.get('bridge SIGSTOPs', 0)} stalls "
          f"(SIGSTOP/SIGCONT), {fiu} libfiu failpoint bursts in the core")
print("What was checked:")
if sim:
    print(f"  simulation: after every event the accounting identity, exactly-once fates and no block-mode drop; "
          f"at the end convergence after the heal, the properties of each mode, and liveness under load; "
          f"rare states reached {cov['covered']}/{cov['total']}")
    ld = sim.get("load")
    if ld:
        print(f"  simulation liveness: {ld['records_resent']} records resent against a summed bound of "
              f"{ld['records_resent_allowed']} (worst seed {ld['worst_seed_amplification']:.2f} of its bound) over "
              f"{ld['bridge_deaths']} bridge deaths; recovery after the heal p50 {ld['recovery_s_p50']:.3f}s "
              f"p99 {ld['recovery_s_p99']:.3f}s ({ld['seeds_recovery_checked']} seeds, worst "
              f"{ld['worst_recovery_share_of_bound']:.2f} of its bound); {ld['seeds_overloaded']} seeds overloaded")
if real:
    print(f"  real: {real['invariant_checks']} invariant checks on live metrics, {real['summaries_checked']} "
          f"summaries + ledgers exact (block mode lost == 0), {real['transactions_accounted']} transactions accounted")
    rej = real.get("rejections") or {}
    nonzero = ", ".join(f"{r} {n}" for r, n in rej.items() if n)
    print(f"  real: rejected verdicts {sum(rej.values())} in {real.get('rejection_checks', 0)} epoch summaries "
          f"(an honest bridge causes none){': ' + nonzero if nonzero else ''}")
print("Result:")
ok = sim_rc == 0 and real_rc == 0
if sim and sim["failures"]:
    for f in sim["failures"]:
        print(f"  FAIL simulation seed {f['seed']} [{f['kind']}]: {f['failure'].splitlines()[0]}")
        print(f"    replay: {f['replay']}")
if real and real["result"] != "pass":
    print(f"  FAIL real processes: {real['failure']}")
    print(f"    replay (same fault schedule): {real['replay']}")
print(f"  {'PASS' if ok else 'FAIL'} (simulation exit {sim_rc}, real processes exit {real_rc})")
print("Reports:")
failures = f"  {out}/failures/ (one directory per failing seed)" if (out / "failures").is_dir() else ""
print(f"  {out}/summary.json  {out}/junit.xml{failures}  (simulation; docs/CHAOS.md explains them)")
print(f"  {out}/timeline.png  {out}/real/summary.json  (real processes: throughput and depth with fault markers)")
PY

[[ $sim_rc -eq 0 && $real_rc -eq 0 ]]
