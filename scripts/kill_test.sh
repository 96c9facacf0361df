#!/usr/bin/env bash
# Kill test (docs/reliability.md): runs a search to the end once, then KILLS times starts the same
# search, SIGKILLs it at a random moment, checks that the results file opens, resumes it with --resume
# and checks that the resumed search ends with exactly the same evaluations and fronts.
# Usage: scripts/kill_test.sh [KILLS] [NP]   (NP > 1 runs under mpirun -np NP and kills mpirun)
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS="${1:-20}"
NP="${2:-1}"
BIN="$(pwd)/${BUILD_DIR:-build}/dcsearch"
PY=/usr/bin/python3
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -e "s|path: lenet5.onnx|path: $(pwd)/configs/lenet5.onnx|" -e "s|path: results/lenet5.h5|path: $tmp/r.h5|" \
    -e 's/generations: 20/generations: 12/' configs/lenet5.yaml > "$tmp/c.yaml"
run() {
  if [[ "$NP" -gt 1 ]]; then mpirun --oversubscribe -np "$NP" "$BIN" search "$tmp/c.yaml" "$@"
  else "$BIN" search "$tmp/c.yaml" "$@"; fi
}
dump() {
  $PY - "$1" <<'PY'
import h5py, sys
f = h5py.File(sys.argv[1], 'r')
e = f['evaluations']
for i in range(e['id'].shape[0]):
    print(e['generation'][i], list(e['genome'][i]), repr(e['accuracy'][i]), e['size_bytes'][i])
g = f['generations']
print(list(g['front_ids'][:]), [repr(x) for x in g['hypervolume'][:]], f.attrs['complete'])
PY
}
start=$(date +%s.%N)
run --force > /dev/null 2>&1
full_seconds=$(awk "BEGIN{print $(date +%s.%N) - $start}")
dump "$tmp/r.h5" > "$tmp/want.txt"
echo "uninterrupted run: $full_seconds s, $(wc -l < "$tmp/want.txt") lines of evaluations and fronts"
ok=0
for i in $(seq 1 "$KILLS"); do
  rm -f "$tmp/r.h5"
  delay=$(awk -v s="$RANDOM" -v t="$full_seconds" 'BEGIN{srand(s); printf "%.2f", 0.05 + rand() * t}')
  if [[ "$NP" -gt 1 ]]; then
    mpirun --oversubscribe -np "$NP" "$BIN" search "$tmp/c.yaml" --force > /dev/null 2>&1 &
  else
    "$BIN" search "$tmp/c.yaml" --force > /dev/null 2>&1 &
  fi
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rows="none"
  if [[ -f "$tmp/r.h5" ]]; then
    rows=$($PY -c "import h5py,sys; print(h5py.File(sys.argv[1],'r')['evaluations/id'].shape[0])" "$tmp/r.h5")
    run --resume > /dev/null 2>&1
  else
    run > /dev/null 2>&1  # killed before the first checkpoint: nothing to resume, start again
  fi
  dump "$tmp/r.h5" > "$tmp/got.txt"
  if cmp -s "$tmp/want.txt" "$tmp/got.txt"; then ok=$((ok + 1)); verdict=same; else verdict=DIFFERENT; fi
  echo "kill $i at ${delay}s: file had $rows evaluations; resumed run: $verdict"
done
echo "$ok of $KILLS resumed runs ended with the same evaluations and fronts"
[[ "$ok" -eq "$KILLS" ]]
