#!/usr/bin/env bash
# Checks of the aegis-sim command line, run by ctest (label sim). Each check
# fails loudly with the command to rerun.
#   cli_checks.sh same   BIN_A BIN_B SEED [ARGS...]  same trace_hash from both binaries
#   cli_checks.sh differ BIN SEED_A SEED_B [ARGS...] different trace_hash for two seeds
#   cli_checks.sh exit   CODE BIN [ARGS...]          exit code CODE and a reproduce line
#   cli_checks.sh trace  BIN SEED FILE [ARGS...]     --trace writes valid JSON with fault markers
set -uo pipefail

hash_of() {  # BIN SEED ARGS...
  local bin=$1 seed=$2
  shift 2
  local out
  out=$("$bin" run --seed "$seed" "$@" 2>&1)
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "$out" >&2
    echo "FAIL: $bin run --seed $seed $* exited $rc" >&2
    exit 1
  fi
  echo "$out" | sed -n 's/^trace_hash=\([0-9a-f]\{16\}\)$/\1/p'
}

case "$1" in
  same)
    a=$(hash_of "$2" "$4" "${@:5}") || exit 1
    b=$(hash_of "$3" "$4" "${@:5}") || exit 1
    echo "$2: $a"; echo "$3: $b"
    [[ -n "$a" && "$a" == "$b" ]] || { echo "FAIL: trace hashes differ for seed $4"; exit 1; }
    ;;
  differ)
    a=$(hash_of "$2" "$3" "${@:5}") || exit 1
    b=$(hash_of "$2" "$4" "${@:5}") || exit 1
    echo "seed $3: $a"; echo "seed $4: $b"
    [[ -n "$a" && -n "$b" && "$a" != "$b" ]] || { echo "FAIL: seeds $3 and $4 gave the same trace hash"; exit 1; }
    ;;
  exit)
    want=$2; bin=$3
    shift 3
    out=$("$bin" "$@" 2>&1)
    rc=$?
    echo "$out" | tail -5
    [[ $rc -eq $want ]] || { echo "FAIL: exit code $rc, expected $want: $bin $*"; exit 1; }
    echo "$out" | grep -q "aegis-sim run --seed" || { echo "FAIL: no reproduce line printed"; exit 1; }
    ;;
  trace)
    bin=$2; seed=$3; file=$4
    shift 4
    rm -f "$file"
    "$bin" run --seed "$seed" --trace "$file" "$@" > /dev/null 2>&1 || { echo "FAIL: run failed"; exit 1; }
    python3 - "$file" <<'PY' || exit 1
import json, sys
doc = json.load(open(sys.argv[1]))
ev = doc["traceEvents"]
names = {e["args"]["name"] for e in ev if e.get("ph") == "M" and e.get("name") == "process_name"}
assert {"core", "bridge"} <= names, f"process metadata missing: {names}"
threads = {e["args"]["name"] for e in ev if e.get("ph") == "M" and e.get("name") == "thread_name"}
assert "aegis-pump" in threads and "bridge-loop" in threads, f"thread metadata missing: {threads}"
faults = [e for e in ev if e.get("ph") == "i" and e.get("s") == "g" and e.get("cat") in ("fault", "kill", "stall")]
assert faults, "no fault markers"
slices = [e for e in ev if e.get("ph") == "X"]
assert slices and all(e["dur"] > 0 for e in slices), "fiber slices missing"
print(f"trace ok: {len(ev)} events, {len(faults)} fault markers, {len(slices)} slices")
PY
    ;;
  *)
    echo "usage: $0 same|differ|exit|trace ..." >&2
    exit 2
    ;;
esac
