#!/usr/bin/env bash
# Rebuilds the seed corpora of the fuzz targets in fuzz/corpus/<target>/ from the project's own
# files: small test models and ONNX backend node tests of supported operators (onnx), the shipped
# configs (config), small IDX files cut from Fashion-MNIST in every supported form (idx), small .npy/.npz
# arrays of each layout, type and archive kind (npy), and the results files of two tiny searches (results). Needs a built build/dcsearch (scripts/setup.sh).
# The corpora are committed; CI replays them (fuzz_replay_* tests). See docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
out=fuzz/corpus
rm -rf "$out"
mkdir -p "$out"/{onnx,config,idx,results,npy}

/usr/bin/python3 - "$out" <<'PY'
import glob, gzip, hashlib, os, shutil, struct, sys
import onnx
out = sys.argv[1]
def put(target, data, name):
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)

# onnx: the PyTorch-exported test models under 64 KiB, and node tests whose operators are supported.
supported = {"Conv", "Gemm", "MatMul", "Add", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool",
             "Flatten", "Reshape", "Pad", "Constant", "Identity", "Dropout", "BatchNormalization", "Concat",
             "Softmax"}
for p in sorted(glob.glob("tests/data/models/*/model.onnx")):
    if os.path.getsize(p) <= 64 * 1024:
        put("onnx", open(p, "rb").read(), "torch_" + p.split("/")[-2] + ".onnx")
for p in sorted(glob.glob("/usr/share/**/node/test_*/model.onnx", recursive=True)):
    m = onnx.load(p)
    ops = {n.op_type for n in m.graph.node}
    if ops and ops <= supported and os.path.getsize(p) <= 16 * 1024:
        put("onnx", open(p, "rb").read(), "node_" + p.split("/")[-2] + ".onnx")

# config: every shipped config.
for p in sorted(glob.glob("configs/*.yaml")):
    put("config", open(p, "rb").read(), os.path.basename(p))

# idx: fuzz_idx's input is a 2-byte big-endian label-file length, the label file, then the image file.
def idx(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload
fm = "/usr/share/datasets/fashion-mnist/"
imgs = gzip.open(fm + "t10k-images-idx3-ubyte.gz").read()
labs = gzip.open(fm + "t10k-labels-idx1-ubyte.gz").read()
n = 3
px = imgs[16:16 + n * 28 * 28]
lb = labs[8:8 + n]
def pair(name, labels, images):
    put("idx", struct.pack(">H", len(labels)) + labels + images, name)
pair("u8_nhw", idx(0x08, [n], lb), idx(0x08, [n, 28, 28], px))
pair("u8_nhw_gzip", gzip.compress(idx(0x08, [n], lb), mtime=0), gzip.compress(idx(0x08, [n, 28, 28], px), mtime=0))
pair("u8_nchw3", idx(0x08, [2], lb[:2]), idx(0x08, [2, 3, 4, 4], bytes(range(96))))
pair("f32_nhw", idx(0x08, [2], lb[:2]), idx(0x0D, [2, 4, 4], b"".join(struct.pack(">f", i / 31) for i in range(32))))
pair("i32_labels", idx(0x0C, [2], struct.pack(">ii", 1, 9)), idx(0x08, [2, 2, 2], bytes(8)))
pair("i16_labels_gzip_labels", gzip.compress(idx(0x0B, [2], struct.pack(">hh", 0, 3)), mtime=0),
     idx(0x08, [2, 2, 2], bytes(8)))

# npy: fuzz_npy loads its input both as an .npy file and as an .npz archive.
import numpy as np
rng = np.random.default_rng(0)
d = os.path.join(out, "npy")
np.save(f"{d}/u8_nhw.npy", rng.integers(0, 255, (3, 4, 4), dtype=np.uint8))
np.save(f"{d}/f32_nchw.npy", rng.random((2, 3, 2, 2), dtype=np.float32))
np.save(f"{d}/labels_i64.npy", np.arange(3, dtype=np.int64))
np.save(f"{d}/be_f32.npy", rng.random((2, 1, 2, 2)).astype(">f4"))
np.savez(f"{d}/stored.npz", images=rng.integers(0, 255, (3, 1, 4, 4), dtype=np.uint8), labels=np.array([0, 1, 2], np.uint8))
np.savez_compressed(f"{d}/deflated.npz", images=rng.integers(0, 255, (2, 4, 4), dtype=np.uint8),
                    labels=np.array([1, 9], np.int32))
PY

# results: two tiny searches on the LeNet-5 example (one with 8 layers of choices, one with BOPs).
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for variant in size bops; do
  objectives="[accuracy, size]"
  [[ $variant == bops ]] && objectives="[accuracy, size, bops]"
  cat > "$tmp/$variant.yaml" <<YAML
model:
  path: $PWD/configs/lenet5.onnx
  preprocess: {scale: 0.00392156862745098, mean: [0.2860], std: [0.3530]}
dataset:
  format: idx
  images: /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
  labels: /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz
  calibration: {offset: 0, count: 64}
  validation: {offset: 64, count: 64}
compression:
  weight_bits: [2, 8]
  prune_ratios: [0.0, 0.5]
search:
  population: 4
  generations: 1
  objectives: $objectives
output:
  path: $tmp/$variant.h5
YAML
  OMP_NUM_THREADS=1 "$BUILD_DIR/dcsearch" search "$tmp/$variant.yaml" --force > /dev/null
  cp "$tmp/$variant.h5" "$out/results/$variant.h5"
done
for t in onnx config idx results npy; do
  echo "$t: $(ls "$out/$t" | wc -l) files, $(du -sk "$out/$t" | cut -f1) KiB"
done
