#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite with CTest.
# Usage: scripts/test.sh [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$(getconf _NPROCESSORS_ONLN)" --timeout 900 "$@"
