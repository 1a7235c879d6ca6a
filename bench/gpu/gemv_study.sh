#!/usr/bin/env bash
# The decode GEMV kernel (src/model/cuda/gemv.h) and the one-allocation small search on one GPU,
# in one run: builds semskip, bench_engine and the model and index test suites (cuda preset,
# scripts/gpu/build-cuda.sh, no FAISS), runs the kernels' GPU tests, the small exact search
# (16k × 256, 128 queries, k = 10: fp32, fp16, bf16, with the plain-matmul reference) with its
# buffers from one allocation and from one allocator call each (SEMSKIP_INDEX_ARENA=0),
# alternated, batch-1 graph decoding with the GEMV on and off (SEMSKIP_GEMV=0: cuBLAS),
# alternated, each setting its own process, a Kineto trace of one batch-1 generation of the
# first model with the GEMV on, and Hugging Face transformers at batch 1 on every model.
#
#   bench/gpu/gemv_study.sh OUT_DIR
#
# Settings (environment): GEMV_MODELS (default bench/models/qwen2-0.5b bench/models/llama-3-8b
# bench/models/qwen1.5-moe-a2.7b), GEMV_ROUNDS (alternations per model, default 2),
# SMALL_ROUNDS (alternations of the small search, default 3), SKIP_BUILD (1: reuse build/cuda),
# HF (1: run transformers), DEADLINE_S (default 560: later steps are skipped and named
# in OUT_DIR/skipped.txt). Writes OUT_DIR/gemv_study.tgz after every step.
set -uo pipefail
cd "$(dirname "$0")/../.."
source bench/gpu/study_lib.sh
study_begin gemv_study "${1:?usage: gemv_study.sh OUT_DIR}"
git rev-parse HEAD 2>/dev/null >> "$work/gpu.txt" || true
study_build "semskip bench_engine semskip_index_tests semskip_model_tests"
timeout 120 build/cuda/tests/model/semskip_model_tests \
  --gtest_filter='GemvCuda.*:RopeCuda.*:SiluMulCuda.*:KvWriteSlotCuda.*:*Fixed*' > "$work/model_tests.txt" 2>&1
echo "model tests: exit $?" | tee -a "$work/gpu.txt"
study_index_tests 180
grep -hE "^\[  (PASSED|FAILED) |^\[  FAILED  \]" "$work/model_tests.txt" "$work/index_tests.txt"
pack
# small TAG ARENA: the small search, its buffers from one allocation (ARENA=1) or not.
small() {
  SEMSKIP_INDEX_ARENA=$2 timeout 120 build/cuda/bin/semskip index-bench --index "torch:flat|device=cuda" \
    --index "torch:flat|device=cuda|dtype=fp16" --index "torch:flat|device=cuda|dtype=bf16" \
    --n 16384 --dim 256 --queries 128 --k 10 --warmup 20 --repeat 200 --json \
    --reference-json "$work/small_reference_$1.json" > "$work/small_$1.json" 2> "$work/small_$1.log"
  echo "small search $1: exit $?" | tee -a "$work/gpu.txt"
}
for r in $(seq 1 "${SMALL_ROUNDS:-3}"); do
  for arena in 0 1; do small "arena${arena}_round${r}" $arena; done
done
pack
first=1
for m in ${GEMV_MODELS:-bench/models/qwen2-0.5b bench/models/llama-3-8b bench/models/qwen1.5-moe-a2.7b}; do
  name="$(basename "$m")"
  for r in $(seq 1 "${GEMV_ROUNDS:-2}"); do
    for gemv in 0 1; do
      time_ok 60 "$name gemv=$gemv round $r" || continue
      SEMSKIP_GEMV=$gemv timeout 150 build/cuda/bench/bench_engine --model "$m" --random-init --dtype bf16 --device cuda \
        --attn sdpa --decode-batch 1 --decode-mode graph --new-tokens 128 --prompt-len 32 --prefill-batch 1 \
        --prefill-len 32 --warmup 1 --reps 5 > "$work/decode_${name}_gemv${gemv}_round${r}.json" \
        2> "$work/decode_${name}_gemv${gemv}_round${r}.log"
      echo "$name gemv=$gemv round $r: exit $?" | tee -a "$work/gpu.txt"
    done
  done
  if [ $first = 1 ] && time_ok 60 "$name profile"; then
    timeout 120 build/cuda/bench/bench_engine --model "$m" --random-init --dtype bf16 --device cuda --attn sdpa \
      --decode-batch 1 --decode-mode graph --new-tokens 16 --prompt-len 32 --prefill-batch 1 --prefill-len 32 \
      --warmup 1 --reps 1 --profile-out "$work/trace_${name}.json" > "$work/profile_run_${name}.json" 2>&1
    for t in "$work"/trace_"${name}"*.json; do
      [ -f "$t" ] || continue
      tb="$(basename "$t" .json)"
      python3 bench/gpu/summarize_trace.py "$t" > "$work/profile_${tb#trace_}_gemv.txt" 2>&1 || true
      rm -f "$t"
    done
  fi
  if [ "${HF:-1}" = 1 ] && time_ok 90 "$name transformers"; then
    timeout 150 python3 bench/gpu/hf_engine_bench.py --model "$m" --dtype bf16 --attn sdpa --decode-batch 1 \
      --new-tokens 128 --prompt-len 32 --prefill-batch 1 --prefill-len 32 --warmup 1 --reps 3 \
      > "$work/hf_${name}.json" 2> "$work/hf_${name}.log"
    echo "$name transformers: exit $?" | tee -a "$work/gpu.txt"
  fi
  first=0
  pack
done
time_ok 30 "small search after the decode runs" && small after_decode_arena1 1
echo "total: $(( $(date +%s) - t_start )) s" | tee -a "$work/gpu.txt"
