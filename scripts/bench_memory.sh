#!/usr/bin/env bash
# Benchmark (not a test; see docs/performance.md "Memory at 224 px"): peak memory and images per second
# of `dcsearch eval` on torchvision's ResNet-50 at 224x224 (random weights, exported by PyTorch at opset
# 13 with a dynamic batch) over random uint8 images held in .npy files, for the fp32 baseline and for
# int8 (every layer at 8 bits); then oneDNN fp32 and int8 against ONNX Runtime fp32 on the same images
# (bench_runtime + scripts/bench_ort.js, as scripts/bench_runtime.sh does).
#
#   OMP_NUM_THREADS=2 scripts/bench_memory.sh [VALIDATION [CALIBRATION]]     (default 2000 512)
#
# Needs python3-torch and python3-torchvision (Debian; installed with apt-get when missing) and, for the
# ONNX Runtime comparison, onnxruntime-node from npm in ORT_DIR (default /tmp/ort-bench). Files go to
# OUT_DIR (default /tmp/dcs-memory). SPEED_VALIDATION (default 256) images are used for the speed part.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
OUT_DIR="${OUT_DIR:-/tmp/dcs-memory}"
ORT_DIR="${ORT_DIR:-/tmp/ort-bench}"
VAL="${1:-2000}"
CAL="${2:-512}"
SPEED_VAL="${SPEED_VALIDATION:-256}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(getconf _NPROCESSORS_ONLN)}"
export REPEATS="${REPEATS:-3}"
export ORT_DIR
if ! /usr/bin/python3 -c "import torch, torchvision" 2>/dev/null; then
  echo "bench_memory.sh: installing python3-torch python3-torchvision (apt-get)" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-torch python3-torchvision >&2
fi
for t in dcsearch bench_runtime; do
  [[ -x "$BUILD_DIR/$t" || -x "$BUILD_DIR/bench/$t" ]] || cmake --build "$BUILD_DIR" --target "$t" -j2
done
mkdir -p "$OUT_DIR"
N=$((VAL + CAL))
if [[ ! -f "$OUT_DIR/resnet50.onnx" || ! -f "$OUT_DIR/x.npy" || "$(cat "$OUT_DIR/count" 2>/dev/null)" != "$N" ]]; then
  /usr/bin/python3 - "$OUT_DIR" "$N" <<'PY'
import os, sys
import numpy as np, torch, torchvision
out, n = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
m = torchvision.models.resnet50(weights=None).eval()
torch.onnx.export(m, torch.randn(1, 3, 224, 224), os.path.join(out, "resnet50.onnx"), opset_version=13,
                  input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
rng = np.random.default_rng(0)
np.save(os.path.join(out, "x.npy"), rng.integers(0, 256, (n, 3, 224, 224), dtype=np.uint8))
np.save(os.path.join(out, "y.npy"), rng.integers(0, 1000, (n,), dtype=np.int64))
open(os.path.join(out, "count"), "w").write(str(n))
PY
fi
config() {  # config VALIDATION CALIBRATION
  cat <<EOF
model:
  path: resnet50.onnx
  preprocess: {scale: 0.00392156862745098, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
dataset: {format: npy, images: x.npy, labels: y.npy, calibration: {offset: 0, count: $2}, validation: {offset: $CAL, count: $1}}
EOF
}
config "$VAL" "$CAL" > "$OUT_DIR/memory.yaml"
printf 'default: {weight_bits: 8, prune_ratio: 0.0}\n' > "$OUT_DIR/int8.layers.yaml"
echo "# $(getconf _NPROCESSORS_ONLN) cores ($(lscpu | sed -n 's/^Model name: *//p')), OMP_NUM_THREADS=$OMP_NUM_THREADS; ResNet-50 at 224x224, $VAL validation and $CAL calibration images" >&2
for mode in fp32 int8; do
  extra=(); [[ $mode == int8 ]] && extra=(--layers "$OUT_DIR/int8.layers.yaml")
  start=$(date +%s.%N)
  json=$("$BUILD_DIR/dcsearch" eval "$OUT_DIR/memory.yaml" --json "${extra[@]}" 2>/dev/null)
  end=$(date +%s.%N)
  /usr/bin/python3 -c "
import json, sys
j = json.loads(sys.argv[1])
print('eval %s: peak memory %.2f GB, %.1f images/s over %d images, whole command %.1f s' % (
    sys.argv[2], j['peak_rss_bytes'] / 1e9, j['images_per_second'], j['samples'], float(sys.argv[3])))" \
    "$json" "$mode" "$(echo "$end - $start" | bc)"
done
# Speed against ONNX Runtime: the same model and images, fewer of them.
if [[ ! -d "$ORT_DIR/node_modules/onnxruntime-node" ]]; then
  mkdir -p "$ORT_DIR"
  (cd "$ORT_DIR" && npm init -y >/dev/null && npm install --ignore-scripts onnxruntime-node >&2)
fi
config "$SPEED_VAL" 64 > "$OUT_DIR/speed.yaml"
"$BUILD_DIR/bench/bench_runtime" "$OUT_DIR/speed.yaml" --repeats "$REPEATS" --no-reference --dump "$OUT_DIR/speed" \
  > "$OUT_DIR/speed.dcsearch.json"
node scripts/bench_ort.js "$OUT_DIR/speed" "$OUT_DIR/speed.dcsearch.json"
