#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job on the shipped example: lists LeNet-5's
# compressible layers, evaluates its fp32 accuracy, and runs the compression search under mpirun with
# 3 ranks (rank 0 coordinates, ranks 1-2 evaluate), printing the accuracy/size front at the end.
# Results: configs/results/lenet5.h5 (layout in docs/results-format.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BIN="$(pwd)/${BUILD_DIR:-build}/dcsearch"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"    # per rank: 2 workers on 2 cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

echo "== layers of configs/lenet5.onnx"
"$BIN" inspect configs/lenet5.onnx
echo
echo "== fp32 baseline"
"$BIN" eval configs/lenet5.yaml
echo
echo "== search: mpirun -np 3 dcsearch search configs/lenet5.yaml"
mpirun --oversubscribe -np 3 "$BIN" search configs/lenet5.yaml --force
