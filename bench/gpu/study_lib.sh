# The set-up shared by the GPU study scripts (bench/gpu/*_study.sh), sourced from the repository
# root after `set -uo pipefail`.
#
#   study_begin NAME OUT_DIR   $out (absolute), $work (a fresh directory packed into
#                              OUT_DIR/NAME.tgz at exit and by `pack`), $t_start, $deadline
#                              (DEADLINE_S, default 560 s); the extra root of the GPU build;
#                              the GPU's name, memory and driver to $work/gpu.txt
#   left                       seconds left before the deadline
#   time_ok NEED WHAT          true when NEED seconds are left, else WHAT goes to skipped.txt
#   study_build "TARGETS"      the cuda build of TARGETS with the tests (scripts/gpu/build-cuda.sh),
#                              its log in $work/build.log, its time in gpu.txt; SKIP_BUILD=1 skips
#                              it; a failed build prints its first errors and exits 1
#   study_index_tests SECONDS  the GPU index tests (build/cuda) to $work/index_tests.txt, their
#                              exit status to gpu.txt
#   study_stage_times          bench_small_search's stage times, fp16 and bf16, to
#                              $work/stages_DTYPE.jsonl
study_begin() {
  study_name="$1"
  out="$2"
  mkdir -p "$out"
  out="$(realpath "$out")"
  work="$(mktemp -d)"
  t_start=$(date +%s)
  deadline=${DEADLINE_S:-560}
  trap pack EXIT
  source scripts/gpu/extra-root.sh
  semskip_extra_root
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$work/gpu.txt"
}
pack() { tar czf "$out/$study_name.tgz" -C "$work" .; }
left() { echo $(( deadline - ($(date +%s) - t_start) )); }
time_ok() { if [ "$(left)" -ge "$1" ]; then return 0; fi; echo "$2" >> "$work/skipped.txt"; return 1; }
study_build() {
  [ "${SKIP_BUILD:-0}" = 1 ] && return 0
  local t0
  t0=$(date +%s)
  SEMSKIP_TARGETS="$1" SEMSKIP_BUILD_TESTS=ON \
    SEMSKIP_CMAKE_ARGS="-DSEMSKIP_REQUIRE_PYTHON_MODULES=OFF -DSEMSKIP_HARDENING_TESTS=OFF" \
    scripts/gpu/build-cuda.sh > "$work/build.log" 2>&1 || { grep -m 20 -A 8 error "$work/build.log"; exit 1; }
  echo "build: $(( $(date +%s) - t0 )) s" | tee -a "$work/gpu.txt"
}
study_index_tests() {
  timeout "$1" build/cuda/tests/index/semskip_index_tests --gtest_filter='*Cuda*:*cuda*:TorchReducedPrecision.*' \
    > "$work/index_tests.txt" 2>&1
  echo "index tests: exit $?" | tee -a "$work/gpu.txt"
}
study_stage_times() {
  local dt
  for dt in fp16 bf16; do
    timeout 120 build/cuda/bench/bench_small_search --dtype $dt > "$work/stages_$dt.jsonl" 2> "$work/stages_$dt.log"
    echo "stage times $dt: exit $?" | tee -a "$work/gpu.txt"
  done
}
