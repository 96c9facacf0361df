#!/usr/bin/env bash
# MPI scaling benchmark (docs/performance.md, "MPI scaling"):
#  1. coordinator round trip per candidate with workers that do nothing (upper bound of the
#     coordinator's cost per dispatched candidate);
#  2. parallel efficiency at 2..65 ranks (oversubscribed) with workers that sleep 100 ms per candidate,
#     4 candidates per worker in batches of one per worker (a generation of NSGA-II);
#  3. real speedup of 2 worker ranks over 1 on the LeNet-5 quick search (2 cores, OMP_NUM_THREADS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
[[ -x "$BUILD_DIR/bench/bench_mpi" ]] || scripts/setup.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
MPIRUN=(mpirun --oversubscribe)
echo "# cores: $(getconf _NPROCESSORS_ONLN)"
echo "# 1. round trip, no work"
for np in 2 3 5; do "${MPIRUN[@]}" -np $np "$BUILD_DIR/bench/bench_mpi" 0 20000; done
echo "# 2. efficiency, 100 ms per candidate"
for np in 2 3 5 9 17 33 65; do
  w=$((np - 1))
  "${MPIRUN[@]}" -np $np "$BUILD_DIR/bench/bench_mpi" 100 $((4 * w)) $w
done
echo "# 3. real search, configs/lenet5-quick.yaml"
tmp=$(mktemp -d)
for np in 2 3; do
  start=$(date +%s.%N)
  "${MPIRUN[@]}" -np $np "$BUILD_DIR/dcsearch" search configs/lenet5-quick.yaml --output "$tmp/r$np.h5" 2>/dev/null >/dev/null
  end=$(date +%s.%N)
  echo "{\"ranks\":$np,\"workers\":$((np - 1)),\"search_seconds\":$(awk "BEGIN{print $end - $start}")}"
done
rm -rf "$tmp"
