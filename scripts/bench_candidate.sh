#!/usr/bin/env bash
# Benchmark: a candidate's overhead (compressing every layer, its size, the int8 weight reorders), with
# and without the weight cache, against its oneDNN int8 evaluation on the validation subset (2,000
# images), per example model, in one process each. With REPLAY=1, also runs a search per example model
# (into a temporary directory) and replays it: the overhead amortized over a real search. Prints JSON
# lines; see docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
[[ -x "$BUILD_DIR/bench/bench_candidate" ]] || scripts/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
echo "# cores: $(getconf _NPROCESSORS_ONLN), OMP_NUM_THREADS=$OMP_NUM_THREADS" >&2
for model in lenet5 lenet300 resnet_bn; do
  "$BUILD_DIR/bench/bench_candidate" "configs/$model.yaml" "${REPEATS:-20}"
done
if [[ "${REPLAY:-0}" == 1 ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  for model in lenet5 lenet300 resnet_bn; do
    "$BUILD_DIR/dcsearch" search "configs/$model.yaml" --output "$tmp/$model.h5" --force >/dev/null
    "$BUILD_DIR/bench/bench_candidate" "configs/$model.yaml" --replay "$tmp/$model.h5"
  done
fi
if [[ -x "$BUILD_DIR/bench/compress/bench_compress" ]]; then
  "$BUILD_DIR/bench/compress/bench_compress"
fi
