#!/bin/bash
# Prints the simulator's trace_hash for every corpus entry and for a fixed
# swarm of chaos seeds, one line each, so a refactoring that must not change
# behaviour can be checked: run it before and after, then diff the outputs.
#
# Usage:
#   scripts/trace_hashes.sh build/release/sim/aegis-sim OUT_DIR [SEED_BASE] [SEED_COUNT]
#   diff before/chaos_hashes.txt after/chaos_hashes.txt && diff before/corpus_hashes.txt after/corpus_hashes.txt
#
# chaos_hashes.txt: "seed mode scheduler bridge trace_hash exit_code", sorted by
# seed (chaos runs one seed in eight with the real bridge, --bridge python);
# corpus_hashes.txt: "file trace_hash". The swarm draws both modes and both
# schedulers (docs/CHAOS.md); 2400 seeds take about 80 s on 2 cores.
set -euo pipefail
sim=${1:?usage: $0 AEGIS_SIM OUT_DIR [SEED_BASE] [SEED_COUNT]}
out=${2:?usage: $0 AEGIS_SIM OUT_DIR [SEED_BASE] [SEED_COUNT]}
base=${3:-20261203}
count=${4:-2400}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
"$sim" chaos --budget 30m --seed-base "$base" --seed-count "$count" --out "$out/chaos" --progress none > "$out/chaos.log" 2>&1 || {
  echo "trace_hashes: the chaos run failed; see $out/chaos.log" >&2
  exit 1
}
/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = sorted((json.loads(l) for l in open(out + "/chaos/seeds.jsonl")), key=lambda r: r["seed"])
with open(out + "/chaos_hashes.txt", "w") as f:
    for r in rows:
        f.write(f"{r['seed']} {r['mode']} {r['scheduler']} {r['bridge']} {r['trace_hash']} {r['exit_code']}\n")
PY
for f in "$root"/fixtures/corpus/*.json; do
  echo "$(basename "$f") $("$sim" replay --schedule "$f" 2>&1 | grep -o 'trace_hash=[0-9a-f]*' | head -1)"
done > "$out/corpus_hashes.txt"
echo "trace_hashes: $(wc -l < "$out/chaos_hashes.txt") chaos seeds, $(wc -l < "$out/corpus_hashes.txt") corpus entries in $out"
