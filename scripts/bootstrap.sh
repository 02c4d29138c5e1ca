#!/usr/bin/env bash
# Installs every Debian package Aegis needs to build, test, benchmark and fuzz.
# Idempotent: it asks dpkg what is missing first, runs `apt-get update` only
# when something is, and uses sudo when not run as root.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libzmq3-dev cppzmq-dev
  librapidcheck-dev
  libfiu-dev fiu-utils python3-fiu
  prometheus-cpp-dev prometheus
  libboost-dev libboost-context-dev
  libreaderwriterqueue-dev
  libcli11-dev nlohmann-json3-dev libxxhash-dev libfmt-dev
  clang-14 libclang-rt-14-dev
  python3-dev pybind11-dev
  python3 python3-zmq python3-xxhash python3-numpy python3-pytest python3-hypothesis
  python3-prometheus-client python3-matplotlib python3-yaml python3-sklearn python3-joblib
  python3-xgboost python3-mypy python3-typing-extensions tox
  python3-venv python3-pip python3-setuptools python3-wheel
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "bootstrap: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "bootstrap: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "bootstrap: installing ${#missing[@]} missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "bootstrap: done"
