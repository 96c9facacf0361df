#!/usr/bin/env bash
# MPI benchmark (docs/performance.md, "MPI scaling"); prints JSON lines, one per run:
#  1. a real search (configs/lenet5.yaml, 816 evaluations) in one process with 2 threads against
#     `mpirun -np 2` (one worker with 2 threads) and `mpirun -np 3` (two workers with 1 thread) on the
#     same cores (-np 2 with --bind-to none: mpirun would bind the worker's threads to one core), ROUNDS
#     times interleaved: wall time, its ratio to the one-process run of the same round,
#     the workers' busy share and rank 0's CPU time, read from the results file's run table;
#  2. simulated evaluations (workers sleep SLEEP_MS x [1 - SPREAD, 1 + SPREAD), bench/bench_mpi.cpp) through the real
#     NSGA-II and MPI evaluator at 8 to 64 workers, with populations smaller and larger than the worker
#     count and `offspring` from the population to 4x the workers: the efficiency busy / (workers x wall).
#
#   scripts/bench_mpi.sh [ROUNDS]   (default 3; SLEEP_MS=100, SPREAD=0.5, CONFIG=configs/lenet5.yaml, PARTS="1 2")
#
# Part 1 also times an MPI job that does nothing (MPI_Init to MPI_Finalize, 3 ranks): OpenMPI's launch
# cost, which every -np run pays and no change to dcsearch removes.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
[[ -x "$BUILD_DIR/bench/bench_mpi" && -x "$BUILD_DIR/dcsearch" ]] ||
  DCS_TARGETS="dcsearch bench_mpi" scripts/setup.sh -DDCS_BUILD_BENCH=ON
ROUNDS="${1:-3}"
SLEEP_MS="${SLEEP_MS:-100}"
CONFIG="${CONFIG:-configs/lenet5.yaml}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPIRUN=(mpirun --oversubscribe)
cores="$(getconf _NPROCESSORS_ONLN)"
echo "# $cores cores ($(lscpu | sed -n 's/^Model name: *//p')), $CONFIG, $(date -u +%FT%TZ)" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The run table of a results file as JSON fields (docs/results-format.md, /runs).
run_fields() {
  /usr/bin/python3 - "$1" <<'PY'
import h5py, sys
f = h5py.File(sys.argv[1], 'r'); g = f['runs']
wall = float(g['wall_seconds'][0]); cpu = float(g['coordinator_cpu_seconds'][0]); w = int(g['workers'][0])
busy = float(sum(g['worker_busy_seconds'][:]))
print(f'"evaluations":{len(f["evaluations/id"])},"search_wall_s":{wall:.3f},"busy_share":{busy / (w * wall):.3f},'
      f'"rank0_cpu_s":{cpu:.3f},"rank0_cpu_share":{cpu / wall:.4f}')
PY
}

PARTS="${PARTS:-1 2}"
if [[ " $PARTS " == *" 1 "* ]]; then
echo "# 1. real search: one process (OMP_NUM_THREADS=$cores) against -np 2 and -np 3 on the same cores"
for round in $(seq "$ROUNDS"); do
  start=$(date +%s.%N)
  OMP_NUM_THREADS=1 "${MPIRUN[@]}" -np 3 "$BUILD_DIR/bench/bench_mpi" 0 4 0 0 > /dev/null
  end=$(date +%s.%N)
  echo "{\"round\":$round,\"mode\":\"empty MPI job, 3 ranks\",\"wall_s\":$(awk "BEGIN{printf \"%.3f\", $end - $start}")}"
  base=""
  for mode in single np2 np3; do
    out="$tmp/$mode.h5"
    start=$(date +%s.%N)
    case $mode in
      single) OMP_NUM_THREADS=$cores "$BUILD_DIR/dcsearch" search "$CONFIG" --output "$out" --force > /dev/null 2>&1 ;;
      np2) OMP_NUM_THREADS=$cores "${MPIRUN[@]}" --bind-to none -np 2 "$BUILD_DIR/dcsearch" search "$CONFIG" --output "$out" --force > /dev/null 2>&1 ;;
      np3) OMP_NUM_THREADS=1 "${MPIRUN[@]}" -np 3 "$BUILD_DIR/dcsearch" search "$CONFIG" --output "$out" --force > /dev/null 2>&1 ;;
    esac
    end=$(date +%s.%N)
    wall=$(awk "BEGIN{printf \"%.3f\", $end - $start}")
    [[ -n "$base" ]] || base=$wall
    echo "{\"round\":$round,\"mode\":\"$mode\",\"wall_s\":$wall,\"vs_single\":$(awk "BEGIN{printf \"%.3f\", $wall / $base}"),$(run_fields "$out")}"
  done
done
fi
[[ " $PARTS " == *" 2 "* ]] || exit 0

SPREAD="${SPREAD:-0.5}"
echo "# 2. simulated evaluations of ${SLEEP_MS} ms x [1 - $SPREAD, 1 + $SPREAD): efficiency = busy / (workers x wall)"
export OMP_NUM_THREADS=1
for workers in 8 16 32 64; do
  np=$((workers + 1))
  for pop in 16 32 128; do
    for offspring in 0 $workers $((2 * workers)) $((4 * workers)); do
      # Each run takes about 6 generations of the batch; skip the duplicate rows (offspring = population).
      [[ $offspring -ne $pop ]] || continue
      "${MPIRUN[@]}" -np $np "$BUILD_DIR/bench/bench_mpi" "$SLEEP_MS" $pop $offspring 5 "$SPREAD"
    done
  done
done
