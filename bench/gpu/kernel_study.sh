#!/usr/bin/env bash
# The hand-written CUDA kernels on one GPU, in one run: builds semskip, bench_engine and the
# index and model test suites (cuda preset, scripts/gpu/build-cuda.sh, no FAISS), runs the
# kernels' GPU tests (index/cuda/select_topk.h against CPU sorts, model/cuda/fused_ops.h against
# the eager expressions, the fixed-shape decode tests), the index study's torch backends
# (bench/gpu/index_study.sh without FAISS) and batch-1 graph decoding with the fused layer-loop
# kernels on and off (SEMSKIP_FUSED_ROPE=0 SEMSKIP_FUSED_SILU=0 SEMSKIP_FUSED_KV=0), alternated, each setting its
# own process.
#
#   bench/gpu/kernel_study.sh OUT_DIR
#
# Settings (environment): ROPE_MODELS (default bench/models/qwen2-0.5b bench/models/llama-3-8b),
# ROPE_ROUNDS (alternations per model, default 2), INDEX_SWEEPS (default "headline small step
# ann real"), SKIP_BUILD (1: reuse build/cuda). Writes OUT_DIR/kernel_study.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/gpu/study_lib.sh
study_begin kernel_study "${1:?usage: kernel_study.sh OUT_DIR}"
study_build "semskip bench_engine semskip_index_tests semskip_model_tests"
study_index_tests 240
timeout 240 build/cuda/tests/model/semskip_model_tests --gtest_filter='RopeCuda.*:SiluMulCuda.*:KvWriteSlotCuda.*:*Fixed*' > "$work/model_tests.txt" 2>&1
echo "model tests: exit $?" | tee -a "$work/gpu.txt"
grep -hE "^\[  (PASSED|FAILED) |^\[  FAILED  \]" "$work/index_tests.txt" "$work/model_tests.txt"
pack
INDEX_STUDY_WORK="$work/index" INDEX_STUDY_BUILD=0 INDEX_STUDY_KOKKOS=0 INDEX_STUDY_DEADLINE_S=240 \
  INDEX_STUDY_SWEEPS="${INDEX_SWEEPS:-headline small step ann real}" \
  bash bench/gpu/index_study.sh "$work/index_out" > "$work/index_study.log" 2>&1
rm -rf "$work/index_out" "$work"/index/*.npy
find "$work/index" -name '*.h5' -delete
grep -E "Plain|Fastest|rate rel|Lowest" "$work/index_study.log"
pack
for m in ${ROPE_MODELS:-bench/models/qwen2-0.5b bench/models/llama-3-8b}; do
  name="$(basename "$m")"
  for r in $(seq 1 "${ROPE_ROUNDS:-2}"); do
    for fused in 0 1; do
      SEMSKIP_FUSED_ROPE=$fused SEMSKIP_FUSED_SILU=$fused SEMSKIP_FUSED_KV=$fused build/cuda/bench/bench_engine --model "$m" --random-init --dtype bf16 --device cuda \
        --attn sdpa --decode-batch 1 --decode-mode graph --new-tokens 128 --prompt-len 32 --prefill-batch 1 \
        --prefill-len 32 --warmup 1 --reps 5 > "$work/rope_${name}_fused${fused}_round${r}.json" 2> "$work/rope_${name}_fused${fused}_round${r}.log"
      echo "$name fused=$fused round $r: exit $?"
    done
  done
  pack
done
