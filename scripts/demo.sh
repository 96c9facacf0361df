#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job on the shipped example: lists LeNet-5's
# compressible layers, evaluates its fp32 accuracy and runs a short compression search (in one process;
# the MPI version and the report come with their issues).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BIN="${BUILD_DIR:-build}/dcsearch"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(getconf _NPROCESSORS_ONLN)}"

echo "== layers of configs/lenet5.onnx"
"$BIN" inspect configs/lenet5.onnx
echo
echo "== fp32 baseline"
"$BIN" eval configs/lenet5-quick.yaml
echo
echo "== search (configs/lenet5-quick.yaml)"
"$BIN" search configs/lenet5-quick.yaml --force
echo
echo "results: configs/results/lenet5-quick.h5 (layout: docs/results-format.md)"
