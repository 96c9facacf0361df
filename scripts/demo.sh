#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job on the shipped examples:
# lists each example model's compressible layers and evaluates its fp32 accuracy on the validation set.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BIN="${BUILD_DIR:-build}/dcsearch"
for model in lenet5 lenet300 resnet_bn; do
  echo "== $model"
  "$BIN" inspect "configs/$model.onnx"
  "$BIN" eval "configs/$model.yaml"
done
