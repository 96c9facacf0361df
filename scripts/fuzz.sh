#!/usr/bin/env bash
# Fuzzes the input parsers with libFuzzer under ASan and UBSan (clang): the ONNX importer, the config
# loader, the IDX dataset reader and the results-file reader (fuzz/fuzz_<target>.cpp).
#
#   [JOBS=2] scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   default: 600 s each, all four, one at a time
#
# Each target starts from the committed seed corpus (fuzz/corpus/<target>) and keeps what it finds in
# build-fuzz/corpus/<target>; a crash, sanitizer report or escaped non-InputError exception stops it
# is kept in build-fuzz/crashes/<target>/ (fork mode: the fuzzer goes on until its time is up) (replay it with build/fuzz/fuzz_<target>_replay,
# then add it to fuzz/regressions/<target>/ with the fix). MERGE=1 merges new coverage into the
# committed corpus afterwards. Results are summarised at the end; see docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(onnx config idx results npy)
dir="${FUZZ_BUILD_DIR:-build-fuzz}"
if ! command -v clang++ > /dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev > /dev/null
fi
[[ -x build/dcsearch ]] || scripts/setup.sh
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDCS_FUZZ=ON \
  -DDCS_BUILD_TESTS=OFF -DDCS_BUILD_BENCH=OFF > /dev/null
ninja -C "$dir" -j"$(getconf _NPROCESSORS_ONLN)" $(printf 'fuzz_%s ' "${targets[@]}") > /dev/null
export OMP_NUM_THREADS=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# One target: fuzz, then summarise into $dir/summary_<target>.txt (exit 1 on a finding).
fuzz_one() {
  local t="$1" rc=0 log="$dir/fuzz_$1.log"
  mkdir -p "$dir/corpus/$t" "$dir/crashes/$t"
  echo "fuzz: $t for ${secs}s (log: $log)" >&2
  "$dir/fuzz/fuzz_$t" "$dir/corpus/$t" "fuzz/corpus/$t" -max_total_time="$secs" -rss_limit_mb=4096 \
    -malloc_limit_mb=2048 -timeout=20 -max_len=262144 -artifact_prefix="$dir/crashes/$t/" \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 > "$log" 2>&1 || rc=$?
  local last runs cov found
  last="$(grep -E '^#[0-9]+: cov' "$log" | tail -1)"
  runs="$(sed -E 's/^#([0-9]+):.*/\1/' <<< "$last")"
  cov="$(sed -E 's/.*cov: ([0-9]+).*/\1/' <<< "$last")"
  found="$(find "$dir/crashes/$t" -type f | wc -l)"
  [[ $found -eq 0 ]] || rc=1
  echo "$t: ${secs}s, $runs executions, coverage $cov edges, corpus $(ls "$dir/corpus/$t" | wc -l) files, exit $rc, artifacts $found" \
    > "$dir/summary_$t.txt"
  if [[ "${MERGE:-0}" == 1 ]]; then
    "$dir/fuzz/fuzz_$t" -merge=1 "fuzz/corpus/$t" "$dir/corpus/$t" -max_len=262144 > "$dir/merge_$t.log" 2>&1
  fi
  return $rc
}

# JOBS targets at a time (default 1: one core each).
status=0
running=0
for t in "${targets[@]}"; do
  if [[ $running -ge "${JOBS:-1}" ]]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
while [[ $running -gt 0 ]]; do
  wait -n || status=1
  running=$((running - 1))
done
for t in "${targets[@]}"; do cat "$dir/summary_$t.txt"; done
exit $status
