#!/usr/bin/env bash
# Runs every benchmark in a build directory. Each prints its side-by-side
# table and appends its rows to <build>/bench-results.json (`make bench`
# deletes that file first). Add one line per new benchmark binary below.
#
# Usage: scripts/run_benchmarks.sh [build-dir]      (default build/release)
set -euo pipefail
build=${1:-build/release}
json="$build/bench-results.json"

# Ring buffer vs boost::lockfree::spsc_queue and moodycamel::ReaderWriterQueue.
"$build/bench/ring_bench" --json "$json"

# Simulator chaos speed: default-length seeds per minute on one core (issue 7: >= 100).
"$build/sim/aegis-sim" chaos --budget 30s --jobs 1 --seed-base 1 --progress none --out "$build/bench-chaos" \
  --bench-results "$json" || echo "bench: aegis-sim chaos found a failing seed (report in $build/bench-chaos)"

# Simulator speed at 50k txn/s, both modes: verdicted txn per wall-second and time compression (issue 4).
"$build/sim/aegis-sim" bench --results "$json" || echo "bench: aegis-sim bench run failed"

echo "bench: results in $json"
