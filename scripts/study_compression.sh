#!/usr/bin/env bash
# Compression study (docs/compression.md, "Nearest against GPTQ rounding"): for each example model, the
# same search (the example config's budget and seed) with compression.rounding nearest and gptq, each
# front judged on a held-out test subset the search never saw (dataset.test: the 7,488 Fashion-MNIST
# test images after calibration and validation); then every layer alone at 2, 3 and 4 bits both ways.
# Prints markdown tables. Usage:
#   scripts/study_compression.sh [MODEL...]     (default: lenet5 lenet300 resnet_bn; configs/MODEL.yaml)
# Environment: BUILD_DIR (build), OMP_NUM_THREADS (2), OUT (a temporary directory; kept when given).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
[[ -x "$BUILD_DIR/dcsearch" ]] || DCS_TARGETS=dcsearch scripts/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
models=("$@")
[[ ${#models[@]} -gt 0 ]] || models=(lenet5 lenet300 resnet_bn)
if [[ -n "${OUT:-}" ]]; then mkdir -p "$OUT"; else OUT="$(mktemp -d)"; trap 'rm -rf "$OUT"' EXIT; fi
dcs="$PWD/$BUILD_DIR/dcsearch"

# configs/MODEL.yaml with the rounding, a test subset and its own results file.
make_config() {  # model rounding -> path
  local src="configs/$1.yaml" dst="$OUT/$1-$2.yaml"
  /usr/bin/python3 - "$src" "$dst" "$2" "$OUT/$1-$2.h5" "$PWD/configs" <<'EOF'
import re, sys
src, dst, rounding, results, configs = sys.argv[1:]
text = open(src).read()
text = re.sub(r"(\n  path: )(?!/)", r"\1" + configs + "/", text, count=1)           # model path
text = text.replace("\ncompression:\n", "\ncompression:\n  rounding: %s\n" % rounding, 1)
text = re.sub(r"(\n  validation: \{offset: (\d+), count: (\d+)\})",
              lambda m: m.group(1) + "\n  test: {offset: %d, count: %d}" % (
                  int(m.group(2)) + int(m.group(3)), 10000 - int(m.group(2)) - int(m.group(3))), text, count=1)
text = re.sub(r"\n  path: results/[^\n]*", "\n  path: " + results, text)
open(dst, "w").write(text)
EOF
  echo "$dst"
}

echo "## Searches (best compression ratio of the final front within a drop; validation / held-out test)"
echo
echo "| model | rounding | evaluations | seconds | baseline val / test | within 0.5 pt | within 1 pt | within 2 pt |"
echo "|---|---|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  for r in nearest gptq; do
    cfg="$(make_config "$m" "$r")"
    start=$(date +%s%N)
    "$dcs" search "$cfg" --force --json > "$OUT/$m-$r.json" 2> "$OUT/$m-$r.log"
    secs=$(( ($(date +%s%N) - start) / 1000000000 ))
    /usr/bin/python3 - "$OUT/$m-$r.json" "$m" "$r" "$secs" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); m, r, secs = sys.argv[2], sys.argv[3], float(sys.argv[4])
b = d["baseline"]
def best(key, base, drop):
    ok = [f["compression_ratio"] for f in d["front"] if (base - f[key]) * 100 <= drop + 1e-9]
    return max(ok) if ok else 0.0
cells = ["%.1fx / **%.1fx**" % (best("accuracy", b["accuracy"], p), best("test_accuracy", b["test_accuracy"], p))
         for p in (0.5, 1.0, 2.0)]
print("| %s | %s | %d | %.0f | %.2f / %.2f | %s |" % (m, r, d["evaluations"], secs, 100 * b["accuracy"],
      100 * b["test_accuracy"], " | ".join(cells)))
EOF
  done
done

echo
echo "## Each layer alone (the others 8-bit): test accuracy (%) at 2 / 3 / 4 bits, nearest -> gptq"
echo
echo "| model | layer | 2 bits | 3 bits | 4 bits |"
echo "|---|---|---|---|---|"
for m in "${models[@]}"; do
  layers=$("$dcs" inspect "configs/$m.onnx" --json | /usr/bin/python3 -c 'import json,sys; print(" ".join(l["name"] for l in json.load(sys.stdin)["layers"]))')
  for l in $layers; do
    row="| $m | $l |"
    for b in 2 3 4; do
      printf 'default: {weight_bits: 8, prune_ratio: 0.0}\nlayers:\n  %s: {weight_bits: %d, prune_ratio: 0.0}\n' "$l" "$b" > "$OUT/layers.yaml"
      cell=""
      for r in nearest gptq; do
        acc=$("$dcs" eval "$OUT/$m-$r.yaml" --layers "$OUT/layers.yaml" --json 2>/dev/null |
              /usr/bin/python3 -c 'import json,sys; print("%.2f" % (100 * json.load(sys.stdin)["test_accuracy"]))')
        cell+="${cell:+ -> }$acc"
      done
      row+=" $cell |"
    done
    echo "$row"
  done
done
