#!/usr/bin/env bash
# The two-launch small half-precision search (index/cuda/small_search.h) against the matmul
# path (fused=0) on one GPU, in one run: builds semskip and the index tests (cuda preset,
# scripts/gpu/build-cuda.sh, no FAISS), runs the GPU index tests, then
#   - the cache-step size (16k × 256, 128 queries, k = 10), fp16 and bf16, fused and fused=0
#     alternated, each its own process, with the plain-matmul reference of the same run;
#   - a sweep of key counts (1k–32k), widths (64, 256, 896) and queries per batch (1, 8, 128),
#     and 128k, 512k keys of 256;
#   - engine-step mode (queries from the GPU, each best match's 896-wide value fetched);
#   - the stage times of both paths by CUDA events (bench/bench_small_search.cpp), and, where
#     Nsight Compute reads the counters, its view of the two-launch path's kernels.
#
#   bench/gpu/small_search_study.sh OUT_DIR
#
# Settings (environment): KERNELS_ONLY (1: the stage times and the profile only), ROUNDS
# (alternations at the cache-step size, default 4), SKIP_BUILD (1: reuse build/cuda), DEADLINE_S
# (default 560: later steps are skipped and named in
# OUT_DIR/skipped.txt). Writes OUT_DIR/small_search_study.tgz after every step.
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/gpu/study_lib.sh
study_begin small_search_study "${1:?usage: small_search_study.sh OUT_DIR}"
nproc >> "$work/gpu.txt"
study_build "semskip semskip_index_tests bench_small_search"
study_index_tests 240
grep -hE "^\[  (PASSED|FAILED) |^\[  FAILED  \]" "$work/index_tests.txt"
pack
study_stage_times
if command -v ncu > /dev/null; then
  for kern in small_kernel select_kernel; do
    timeout 120 ncu --clock-control none -k regex:$kern -c 1 --section SpeedOfLight --section Occupancy \
      --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis \
      build/cuda/bench/bench_small_search --shape 16384,256,128 --reps 1 > "$work/ncu_$kern.txt" 2>&1
    echo "ncu $kern: exit $?" | tee -a "$work/gpu.txt"
  done
fi
pack
[ "${KERNELS_ONLY:-0}" = 1 ] && exit 0
bench() {  # TAG FUSED [index-bench options…]
  local tag=$1 fused=$2
  shift 2
  local suffix=""
  [ "$fused" = 0 ] && suffix="|fused=0"
  timeout 120 build/cuda/bin/semskip index-bench --index "torch:flat|device=cuda|dtype=fp16$suffix" \
    --index "torch:flat|device=cuda|dtype=bf16$suffix" "$@" --json \
    > "$work/$tag.json" 2> "$work/$tag.log"
  echo "$tag: exit $?" | tee -a "$work/gpu.txt"
}
for r in $(seq 1 "${ROUNDS:-4}"); do
  for fused in 0 1; do
    time_ok 30 "step fused=$fused round $r" || continue
    bench "step_fused${fused}_round${r}" $fused --n 16384 --dim 256 --queries 128 --k 10 --warmup 20 \
      --repeat 200 --reference-json "$work/step_reference_fused${fused}_round${r}.json"
  done
done
pack
for fused in 1 0; do
  time_ok 60 "sweep fused=$fused" || continue
  bench "sweep_fused${fused}" $fused --n 1024,4096,16384,32768 --dim 64,256,896 --queries 1,8,128 --k 10 \
    --warmup 10 --repeat 100
  time_ok 60 "large sweep fused=$fused" || continue
  bench "large_fused${fused}" $fused --n 131072,524288 --dim 256 --queries 1,128 --k 10 --warmup 10 --repeat 50
done
pack
for fused in 1 0; do
  time_ok 30 "engine step fused=$fused" || continue
  bench "engine_fused${fused}" $fused --n 16384 --dim 256 --queries 8,128 --k 10 --warmup 20 --repeat 200 \
    --query-device cuda --value-dim 896
done
echo "total: $(( $(date +%s) - t_start )) s" | tee -a "$work/gpu.txt"
