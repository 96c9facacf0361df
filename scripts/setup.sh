#!/usr/bin/env bash
# Installs every dependency with apt-get (Debian 12) and builds dcsearch into build/.
# Usage: scripts/setup.sh [extra cmake args...]
# Environment: BUILD_DIR (default build), DCS_SKIP_APT=1 to skip the package step, DCS_TARGETS="t1 t2"
# to build only those targets (default: all; the demo builds only dcsearch).
# The package list is what a minimal Debian 12 root (debootstrap --variant=minbase) lacks for the build,
# the tests and the demo; scripts/check_fresh_setup.sh checks it there.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config ninja-build
  libopenmpi-dev openmpi-bin libboost-dev
  libdnnl-dev ocl-icd-opencl-dev libhdf5-dev hdf5-tools libyaml-cpp-dev zlib1g-dev
  libjpeg62-turbo-dev libpng-dev libzip-dev
  libgtest-dev googletest
  libonnx-dev libprotobuf-dev protobuf-compiler
  dataset-fashion-mnist libonnx-testdata
  python3 python3-numpy python3-h5py python3-onnx
)

if [[ "${DCS_SKIP_APT:-0}" != 1 ]]; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if (( ${#missing[@]} )); then
    echo "setup: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi

BUILD_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >&2
targets=()
for t in ${DCS_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j"$(getconf _NPROCESSORS_ONLN)" "${targets[@]}" >&2
echo "setup: built ${DCS_TARGETS:-all targets} in $BUILD_DIR" >&2
