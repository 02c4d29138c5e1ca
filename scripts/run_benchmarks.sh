#!/usr/bin/env bash
# Runs every benchmark in a build directory. Each prints its side-by-side
# table and appends its rows to <build>/bench-results.json (`make bench`
# deletes that file first). Add one line per new benchmark binary below.
#
# Usage: scripts/run_benchmarks.sh [build-dir]      (default build/release)
set -euo pipefail
build=${1:-build/release}
json="$build/bench-results.json"

# The machine every figure below depends on: CPU, clock source, system-call and clock-read cost.
"$build/bench/machine_facts" --json "$json"

# Ring buffer vs boost::lockfree::spsc_queue and moodycamel::ReaderWriterQueue.
"$build/bench/ring_bench" --json "$json"

# offload() hot path vs a raw zmq_send of the same 64-byte record and the bare ring.
ob_dir=$(mktemp -d /tmp/aegis-ob-XXXXXX)
trap 'rm -rf "$ob_dir"' EXIT
"$build/bench/offload_bench" --dir "$ob_dir" --samples 100000 --reps 5 --json "$json"

# End to end: aegis-core into the real bridge vs raw PUSH into a
# per-message pyzmq loop; open-loop latency vs the zmq ipc ping-pong floor.
/usr/bin/python3 "$(dirname "$0")/bench_e2e.py" --build "$build" --json "$json"

# End to end per model runtime (numpy, scikit-learn, XGBoost): aegis-core flat out into a bridge
# serving each, beside that model's own scoring rate on batches of the same size (~1 minute).
/usr/bin/python3 "$(dirname "$0")/bench_runtimes.py" --build "$build" --json "$json"

# Liveness with the slow test model (20/100/500 us per record at 50 % and 90 % of
# its capacity, with and without a bridge SIGKILL) beside the model's capacity
# alone. After bench_e2e.py: its targets line reads the flat-out row written
# above. A missed target is printed as MISSED; a loss or crash fails `make bench`,
# after the remaining benchmarks and the table.
liveness_rc=0
/usr/bin/python3 "$(dirname "$0")/bench_liveness.py" --build "$build" --json "$json" || liveness_rc=$?

# Simulator chaos speed: default-length seeds per minute on one core (target: >= 100).
"$build/sim/aegis-sim" chaos --budget 30s --jobs 1 --seed-base 1 --progress none --out "$build/bench-chaos" \
  --bench-results "$json" || echo "bench: aegis-sim chaos found a failing seed (report in $build/bench-chaos)"

# Simulator speed at 50k txn/s, both modes: verdicted txn per wall-second and time compression.
"$build/sim/aegis-sim" bench --results "$json" || echo "bench: aegis-sim bench run failed"

/usr/bin/python3 "$(dirname "$0")/bench_table.py" "$json"
echo "bench: results in $json"
if [ "$liveness_rc" -ne 0 ]; then
  echo "bench: bench_liveness.py failed (exit $liveness_rc: a lost transaction or a crash; see its output above)"
  exit "$liveness_rc"
fi
