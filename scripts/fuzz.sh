#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang-14 and runs each for SECONDS
# on a scratch copy of its seed corpus (fixtures/fuzz/<target>/), so the
# committed corpus only changes when someone adds a regression input on purpose.
#
#   scripts/fuzz.sh 20            # what `make test` runs (test-fuzz)
#   scripts/fuzz.sh 300           # `make fuzz`
#   FUZZ_TARGETS="fuzz_seed" scripts/fuzz.sh 60
#
# Exit 0 when every target ran its budget without a finding; 1 otherwise. A
# finding leaves the crashing input in $FUZZ_OUT/<target>/ (crash-*, leak-*,
# timeout-*) and prints the command that replays it; add it to
# fixtures/fuzz/<target>/ as a regression once fixed. docs/HARDENING.md.
set -euo pipefail

seconds=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build/fuzz}
out=${FUZZ_OUT:-$build/runs}
jobs=${JOBS:-2}
targets=${FUZZ_TARGETS:-fuzz_protocol fuzz_seed fuzz_fault_plan fuzz_schedule}

flags="-O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DAEGIS_FUZZ=ON -DAEGIS_BUILD_TESTS=OFF -DAEGIS_BUILD_BENCH=OFF -DAEGIS_FIU=OFF \
    -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" >/dev/null
fi
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $targets

status=0
for t in $targets; do
  seeds=$root/fixtures/fuzz/$t
  work=$out/$t
  rm -rf "$work"
  mkdir -p "$work/corpus"
  [[ -d $seeds ]] && cp -r "$seeds/." "$work/corpus/"
  dict=()
  [[ -f $root/fuzz/$t.dict ]] && dict=(-dict="$root/fuzz/$t.dict")
  start=$(date +%s)
  # -rss_limit_mb: the decoders allocate at most one frame; a blow-up is a bug.
  # -timeout: no input may take 10 s (a hang is a finding, like a crash).
  if ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
      "$build/fuzz/$t" "$work/corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/" -print_final_stats=1 >"$work/log" 2>&1; then
    execs=$(grep -m1 '^stat::number_of_executed_units' "$work/log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$work/log" | tail -1 | grep -oE 'cov: [0-9]+' || true)
    echo "fuzz $t: ok, ${seconds}s budget, $(( $(date +%s) - start ))s wall, ${execs:-?} execs, ${cov:-cov: ?}"
  else
    status=1
    echo "fuzz $t: FINDING (log: $work/log)"
    grep -E 'ERROR|assertion failed|contract:|runtime error|SUMMARY' "$work/log" | head -8 | sed 's/^/  /'
    for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
      [[ -e $a ]] && echo "  reproduce: $build/fuzz/$t $a"
    done
  fi
done
exit $status
