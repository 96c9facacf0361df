#!/usr/bin/env bash
# Runs an exported QDQ model (DIR/model.onnx from `dcsearch export` or `apply`) in ONNX Runtime on the
# config's validation subset and compares its accuracy with the expected one (e.g. the `accuracy` that
# `dcsearch export --json` printed). Not part of the test suite: it needs onnxruntime-node, installed
# with `npm install --ignore-scripts onnxruntime-node` into ORT_DIR (default: a scratch directory) when
# missing. idx datasets only.
#
#   scripts/check_export_ort.sh config.yaml DIR EXPECTED_ACCURACY [TOLERANCE_PT]   (default 0.2 pt)
set -euo pipefail
if [[ $# -lt 3 || $# -gt 4 ]]; then
    echo "usage: $0 config.yaml DIR EXPECTED_ACCURACY [TOLERANCE_PT]" >&2
    exit 2
fi
cfg="$(realpath "$1")"; dir="$(realpath "$2")"; expected="$3"; tol="${4:-0.2}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
ort_dir="${ORT_DIR:-$scratch/ort}"
if [[ ! -d "$ort_dir/node_modules/onnxruntime-node" ]]; then
    mkdir -p "$ort_dir"
    (cd "$ort_dir" && npm init -y >/dev/null && npm install --ignore-scripts onnxruntime-node >&2)
fi
# The validation images, preprocessed as dcsearch does (x = (pixel * scale - mean) / std).
/usr/bin/python3 - "$cfg" "$scratch/val" <<'PY'
import gzip, os, sys, yaml, numpy as np
cfg = yaml.safe_load(open(sys.argv[1])); base = os.path.dirname(sys.argv[1]); out = sys.argv[2]
ds = cfg["dataset"]
if ds.get("format", "idx") != "idx": sys.exit("only idx datasets are supported")
def rd(p):
    p = p if os.path.isabs(p) else os.path.join(base, p)
    b = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
    nd = b[3]; dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)
imgs, labels = rd(ds["images"]), rd(ds["labels"])
v = ds.get("validation", {"offset": 512, "count": 2000})
sl = slice(v.get("offset", 512), v.get("offset", 512) + v.get("count", 2000))
pre = cfg.get("model", {}).get("preprocess", {})
x = imgs[sl].astype(np.float32)
if x.ndim == 3: x = x[:, None]
mean = np.array(pre.get("mean", [0.0]), np.float32).reshape(1, -1, 1, 1)
std = np.array(pre.get("std", [1.0]), np.float32).reshape(1, -1, 1, 1)
x = ((x * np.float32(pre.get("scale", 1 / 255)) - mean) / std).astype(np.float32)
x.tofile(out + ".f32"); labels[sl].astype(np.int32).tofile(out + ".labels")
open(out + ".shape", "w").write(",".join(map(str, x.shape)))
PY
cat > "$scratch/run.js" <<'JS'
const fs = require('fs'), path = require('path');
const ort = require(path.join(process.argv[2], 'node_modules', 'onnxruntime-node'));
(async () => {
  const [model, prefix] = process.argv.slice(3);
  const shape = fs.readFileSync(prefix + '.shape', 'utf8').split(',').map(Number);
  const raw = fs.readFileSync(prefix + '.f32');
  const x = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const lr = fs.readFileSync(prefix + '.labels');
  const labels = new Int32Array(lr.buffer, lr.byteOffset, lr.byteLength / 4);
  const s = await ort.InferenceSession.create(model, {intraOpNumThreads: 1});
  const per = x.length / shape[0];
  let correct = 0;
  for (let b = 0; b < shape[0]; b += 256) {
    const n = Math.min(256, shape[0] - b);
    const t = new ort.Tensor('float32', x.subarray(b * per, (b + n) * per), [n, ...shape.slice(1)]);
    const out = (await s.run({[s.inputNames[0]]: t}))[s.outputNames[0]].data;
    const k = out.length / n;
    for (let i = 0; i < n; ++i) {
      let best = 0;
      for (let j = 1; j < k; ++j) if (out[i * k + j] > out[i * k + best]) best = j;
      correct += best === labels[b + i];
    }
  }
  console.log((correct / shape[0]).toFixed(6));
})().catch(e => { console.error(e.message); process.exit(1); });
JS
acc="$(node "$scratch/run.js" "$ort_dir" "$dir/model.onnx" "$scratch/val")"
/usr/bin/python3 - "$acc" "$expected" "$tol" <<'PY'
import sys
a, e, t = map(float, sys.argv[1:])
d = abs(a - e) * 100
print(f"ONNX Runtime accuracy {a:.4f}, expected {e:.4f}: difference {d:.2f} pt (tolerance {t} pt)")
sys.exit(0 if d <= t + 1e-9 else 1)
PY
