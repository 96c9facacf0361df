#!/usr/bin/env bash
# Benchmark (not a test; see docs/performance.md): images per second of the example models on their
# validation subsets (2,000 images, batches of 256) with the fp32 reference executor, oneDNN fp32,
# oneDNN int8 and ONNX Runtime fp32 (same ONNX file, same preprocessed images, same thread count),
# with the ratios to ONNX Runtime; then a ONEDNN_VERBOSE=1 check that no primitive runs a `ref:` kernel.
#
#   OMP_NUM_THREADS=2 scripts/bench_runtime.sh                  # the example models (MODELS=...)
#   OMP_NUM_THREADS=2 scripts/bench_runtime.sh my/model.yaml ...  # any search configs
#
# ONNX Runtime comes from npm into a scratch directory (ORT_DIR, default /tmp/ort-bench) for this
# benchmark only: `npm install --ignore-scripts onnxruntime-node`. Nothing in the build uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
ORT_DIR="${ORT_DIR:-/tmp/ort-bench}"
OUT_DIR="${OUT_DIR:-/tmp/dcs-bench}"
MODELS="${MODELS:-lenet5 lenet300 resnet_bn}"
# Configs: the arguments, else configs/<model>.yaml for each of MODELS.
if [[ $# -gt 0 ]]; then CONFIGS=("$@"); else CONFIGS=(); for m in $MODELS; do CONFIGS+=("configs/$m.yaml"); done; fi
for c in "${CONFIGS[@]}"; do [[ -f "$c" ]] || { echo "bench_runtime.sh: $c: no such config file" >&2; exit 2; }; done
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(getconf _NPROCESSORS_ONLN)}"
export REPEATS="${REPEATS:-5}"
export ORT_DIR
[[ -x "$BUILD_DIR/bench/bench_runtime" ]] || cmake --build "$BUILD_DIR" --target bench_runtime -j2
if [[ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]]; then
  mkdir -p "$ORT_DIR"
  (cd "$ORT_DIR" && npm init -y >/dev/null && npm install --ignore-scripts onnxruntime-node >&2)
fi
mkdir -p "$OUT_DIR"
echo "# $(getconf _NPROCESSORS_ONLN) cores ($(lscpu | sed -n 's/^Model name: *//p')), OMP_NUM_THREADS=$OMP_NUM_THREADS, repeats $REPEATS" >&2
for config in "${CONFIGS[@]}"; do
  model="$(basename "$config" .yaml)"
  "$BUILD_DIR/bench/bench_runtime" "$config" --repeats "$REPEATS" --dump "$OUT_DIR/$model" \
    > "$OUT_DIR/$model.dcsearch.json"
  node scripts/bench_ort.js "$OUT_DIR/$model" "$OUT_DIR/$model.dcsearch.json"
done
# Every primitive oneDNN executes, with its implementation: none may be a reference kernel.
for config in "${CONFIGS[@]}"; do
  model="$(basename "$config" .yaml)"
  ONEDNN_VERBOSE=1 "$BUILD_DIR/bench/bench_runtime" "$config" --repeats 1 --no-reference \
    > "$OUT_DIR/$model.verbose.txt"
  total=$(grep -c '^onednn_verbose,exec' "$OUT_DIR/$model.verbose.txt" || true)
  refs=$(grep '^onednn_verbose,exec' "$OUT_DIR/$model.verbose.txt" | awk -F, '$6 ~ /^ref/' | cut -d, -f5,6 | sort | uniq -c || true)
  echo "# $model: $total primitive executions, reference kernels: ${refs:-none}" >&2
done
