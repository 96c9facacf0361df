#!/usr/bin/env bash
# The main job, from a fresh clone: sets everything up (scripts/setup.sh, building only the dcsearch
# binary), then takes the journey a user takes with the shipped LeNet-5 (configs/lenet5.yaml):
#   1. lists its compressible layers and evaluates its fp32 accuracy;
#   2. searches per-layer bit-widths and prune ratios under mpirun with 3 ranks (rank 0 coordinates,
#      ranks 1-2 evaluate) and prints the accuracy/size front;
#   3. writes the HTML trade-off report and the front as CSV;
#   4. exports the smallest candidate within 1 accuracy point (layers.yaml, QDQ model.onnx, packed
#      model.dcz) and re-evaluates the exported layers.yaml, which must give the recorded accuracy;
#   5. names the files it wrote and the next commands to try.
# Everything goes to results/demo/ (DEMO_OUT to change it); an earlier demo's files there are replaced.
set -euo pipefail
cd "$(dirname "$0")/.."
DCS_TARGETS=dcsearch scripts/setup.sh
BIN="${BUILD_DIR:-build}/dcsearch"
OUT="${DEMO_OUT:-results/demo}"
CONFIG=configs/lenet5.yaml
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"    # per rank: 2 workers on 2 cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
rm -rf "$OUT/deploy"
mkdir -p "$OUT"

echo "== layers of configs/lenet5.onnx: $BIN inspect configs/lenet5.onnx"
"$BIN" inspect configs/lenet5.onnx
echo
echo "== fp32 baseline: $BIN eval $CONFIG"
"$BIN" eval "$CONFIG"
echo
echo "== search: mpirun -np 3 $BIN search $CONFIG --output $OUT/lenet5.h5 --force"
mpirun --oversubscribe -np 3 "$BIN" search "$CONFIG" --output "$OUT/lenet5.h5" --force
echo
echo "== report: $BIN report $OUT/lenet5.h5 -o $OUT/report.html --csv $OUT/front.csv"
"$BIN" report "$OUT/lenet5.h5" -o "$OUT/report.html" --csv "$OUT/front.csv"
echo
echo "== export the smallest candidate within 1 point: $BIN export $OUT/lenet5.h5 --max-drop 1 -o $OUT/deploy"
"$BIN" export "$OUT/lenet5.h5" --max-drop 1 -o "$OUT/deploy" --json > "$OUT/deploy.json"
json_field() { /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }
id="$(json_field "$OUT/deploy.json" id)"
recorded="$(json_field "$OUT/deploy.json" accuracy)"
size="$(json_field "$OUT/deploy.json" size_bytes)"
echo "exported evaluation $id: accuracy $recorded, $size bytes"
echo
echo "== re-evaluate the export: $BIN eval $CONFIG --layers $OUT/deploy/layers.yaml"
"$BIN" eval "$CONFIG" --layers "$OUT/deploy/layers.yaml" --json > "$OUT/deploy-eval.json"
measured="$(json_field "$OUT/deploy-eval.json" accuracy)"
measured_size="$(json_field "$OUT/deploy-eval.json" size_bytes)"
dcz_size="$(stat -c %s "$OUT/deploy/model.dcz")"
echo "accuracy $measured (recorded $recorded), $measured_size bytes (model.dcz: $dcz_size bytes)"
if [[ "$measured" != "$recorded" || "$measured_size" != "$size" || "$dcz_size" != "$size" ]]; then
  echo "demo: the exported configuration does not reproduce the recorded result" >&2
  exit 1
fi

# The most accurate member of the front (the CSV lists it smallest first), for the `export --id` example.
other_id="$(tail -n 1 "$OUT/front.csv" | cut -d, -f1)"
cat <<EOF

== done. Files written:
  $OUT/lenet5.h5            every evaluation and the front of each generation (docs/results-format.md)
  $OUT/report.html          the trade-off report: charts, per-layer heatmaps, the front's table
  $OUT/front.csv            the feasible front, one row per candidate
  $OUT/deploy/layers.yaml   evaluation $id's per-layer bits and prune ratios (accuracy $recorded)
  $OUT/deploy/model.onnx    the same as a QDQ ONNX model (ONNX Runtime, TensorRT, OpenVINO)
  $OUT/deploy/model.dcz     the packed model, $size bytes

Next:
  open $OUT/report.html in a browser (or: scripts/render_report.sh $OUT/report.html report.png)
  $BIN export $OUT/lenet5.h5 --id $other_id -o my-deploy        # any id from the report's table
  $BIN eval $CONFIG --layers my-deploy/layers.yaml
  mpirun -np 8 $BIN search $CONFIG --output $OUT/lenet5.h5 --force    # more ranks (docs/mpi.md)
  $BIN search configs/resnet_bn.yaml --output $OUT/resnet_bn.h5   # another shipped model
  your own model: copy $CONFIG, set model.path and dataset (docs/config.md)
EOF
