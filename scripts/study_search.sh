#!/usr/bin/env bash
# Search-efficiency study (docs/search-efficiency.md): evaluates every configuration of the space in
# configs/study-lenet5.yaml (6^5 = 7776; cached in build/study-lenet5.csv, about 20 minutes the first
# time with the fp32 reference executor), then compares the search with random sampling over SEEDS seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
[[ -x "$BUILD_DIR/bench/study_search" ]] || scripts/setup.sh
"$BUILD_DIR/bench/study_search" configs/study-lenet5.yaml "$BUILD_DIR/study-lenet5.csv" "${SEEDS:-20}"
