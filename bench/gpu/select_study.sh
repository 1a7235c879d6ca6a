#!/usr/bin/env bash
# The matmul path of torch:flat's half-precision GPU search with its product by cuBLAS straight
# (index/cuda/reduced_gemm.h) against the same through at::mm_out (SEMSKIP_INDEX_DIRECT_GEMM=0),
# on one GPU, in one run: builds semskip, the index tests and bench_small_search (cuda preset,
# scripts/gpu/build-cuda.sh, no FAISS), runs the GPU index tests, then
#   - the stage times of both search paths by CUDA events, with each stage's latency and the
#     host's time to issue it (bench/bench_small_search.cpp), fp16 and bf16;
#   - the cache-step size (16k × 256, 128 queries, k = 10), fp16 and bf16: fused=auto (which
#     takes the matmul path there), the matmul path with the product through LibTorch, and the
#     two-launch path (fused=1), alternated, each its own process, with the plain-matmul
#     reference of the same run;
#   - 1k–32k keys at 128 queries, and engine-step mode (queries from the GPU, 896-wide values),
#     direct and through LibTorch;
#   - N = 1M, d = 896, 256 queries against the plain fp16 matmul + top-k of the same run (a
#     search in chunks, which keeps at::mm).
#
#   bench/gpu/select_study.sh OUT_DIR
#
# Settings (environment): ROUNDS (alternations at the cache-step size, default 4), SKIP_BUILD
# (1: reuse build/cuda), DEADLINE_S (default 560: later steps are skipped and named in
# OUT_DIR/skipped.txt). Writes OUT_DIR/select_study.tgz after every step.
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/gpu/study_lib.sh
study_begin select_study "${1:?usage: select_study.sh OUT_DIR}"
nproc >> "$work/gpu.txt"
study_build "semskip semskip_index_tests bench_small_search"
study_index_tests 240
grep -hE "^\[  (PASSED|FAILED) |^\[  FAILED  \]" "$work/index_tests.txt"
pack
study_stage_times
pack
bench() {  # TAG DIRECT INDEX-SUFFIX [index-bench options…]
  local tag=$1 direct=$2 suffix=$3
  shift 3
  SEMSKIP_INDEX_DIRECT_GEMM=$direct timeout 120 build/cuda/bin/semskip index-bench \
    --index "torch:flat|device=cuda|dtype=fp16$suffix" --index "torch:flat|device=cuda|dtype=bf16$suffix" "$@" --json \
    > "$work/$tag.json" 2> "$work/$tag.log"
  echo "$tag: exit $?" | tee -a "$work/gpu.txt"
}
step="--n 16384 --dim 256 --queries 128 --k 10 --warmup 20 --repeat 200"
for r in $(seq 1 "${ROUNDS:-4}"); do
  time_ok 45 "step round $r" || continue
  # shellcheck disable=SC2086
  bench "step_direct_round$r" 1 "" $step --reference-json "$work/step_reference_direct_round$r.json"
  # shellcheck disable=SC2086
  bench "step_aten_round$r" 0 "" $step --reference-json "$work/step_reference_aten_round$r.json"
  # shellcheck disable=SC2086
  bench "step_fused_round$r" 1 "|fused=1" $step
done
pack
for direct in 1 0; do
  time_ok 40 "sizes direct=$direct" || continue
  bench "sizes_direct$direct" $direct "" --n 1024,4096,16384,32768 --dim 256 --queries 128 --k 10 --warmup 10 --repeat 100
  time_ok 30 "engine step direct=$direct" || continue
  bench "engine_direct$direct" $direct "" --n 16384 --dim 256 --queries 8,128 --k 10 --warmup 20 --repeat 200 \
    --query-device cuda --value-dim 896
done
pack
if time_ok 60 "headline 1M"; then
  timeout "$(left)" build/cuda/bin/semskip index-bench --index "torch:flat|device=cuda|dtype=fp16" \
    --index "torch:flat|device=cuda|dtype=bf16" --data clustered --n 1000000 --dim 896 --queries 256 --k 10 \
    --warmup 2 --repeat 8 --reference-json "$work/headline_reference.json" --json \
    > "$work/headline.json" 2> "$work/headline.log"
  echo "headline: exit $?" | tee -a "$work/gpu.txt"
fi
echo "total: $(( $(date +%s) - t_start )) s" | tee -a "$work/gpu.txt"
