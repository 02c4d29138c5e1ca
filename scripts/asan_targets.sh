#!/usr/bin/env bash
# Prints the targets `make test-asan` builds in the configured ASan tree $1:
# every executable of the tree (so a new test binary is picked up without a
# Makefile edit), except the ones the ASan run does not use:
#   aegis-sim-debug              the -O0 copy, only for the release-vs-debug trace-hash tests
#   aegis-core-mutant-no-rewind  the planted-bug core, only for the pytest suite (tox)
# Usage: bash scripts/asan_targets.sh build/asan
set -euo pipefail
tree=${1:?usage: asan_targets.sh BUILD_DIR}
[[ -f $tree/build.ninja ]] || { echo "asan_targets.sh: $tree/build.ninja missing (configure first)" >&2; exit 1; }
targets=$(grep -E '^build [^:]+: CXX_EXECUTABLE_LINKER' "$tree/build.ninja" | awk '{print $2}' | sed 's/:$//' |
          xargs -n1 basename | grep -vxE 'aegis-sim-debug|aegis-core-mutant-no-rewind' | sort)
[[ -n $targets ]] || { echo "asan_targets.sh: no executables in $tree/build.ninja" >&2; exit 1; }
echo $targets
