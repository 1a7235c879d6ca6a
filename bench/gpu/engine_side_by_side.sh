#!/usr/bin/env bash
# semskip's engine beside Hugging Face transformers on one GPU, in one run: builds bench_engine
# with the `cuda` preset (scripts/gpu/build-cuda.sh), then for every model folder runs
# bench_engine and bench/gpu/hf_engine_bench.py on the same shapes and inputs (random weights
# from config.json, bf16, sdpa), and writes their JSON, a Kineto trace summary and a table.
#
#   bench/gpu/engine_side_by_side.sh OUT_DIR
#
# Settings (environment): MODELS (folders, default the three under bench/models), BATCHES
# (1,8,32,128), NEW_TOKENS (128), PROMPT_LEN (32), PREFILL (8x512 as "8 512"), WARMUP (1),
# REPS (3), SKIP (policies timed against none through the skip engine, space-separated; default
# "static:k=6 random:rate=0.25"; empty: none), SKIP_DECODE (32 32: batch and decode steps),
# SKIP_PREFILL (8 512), SKIP_EXEC (gather: row executions of the skipping runs, space-separated),
# SKIP_DECODE_MODES (eager: decode modes of the skipping runs, comma-separated; graph runs the
# whole-layer policies in the captured step), SKIP_PROFILE (1: trace one skipping prefill of the
# first policy on the first model), DECODE_MODES (eager,graph: bench_engine's --decode-mode), HF
# (1: also run transformers), PROFILE (1: trace one batch-1 generation of the first model),
# SKIP_BUILD (1: reuse build/cuda), TAR_TO (a .tgz rewritten with everything in OUT_DIR after
# each model, so that a run cut short keeps what it finished).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: engine_side_by_side.sh OUT_DIR}"
mkdir -p "$out"
models="${MODELS:-bench/models/qwen2-0.5b bench/models/llama-3-8b bench/models/qwen1.5-moe-a2.7b}"
batches="${BATCHES:-1,8,32,128}"
new_tokens="${NEW_TOKENS:-128}"
prompt_len="${PROMPT_LEN:-32}"
read -r prefill_b prefill_t <<<"${PREFILL:-8 512}"
warmup="${WARMUP:-1}"
reps="${REPS:-3}"
py="${PYTHON:-python3}"
skip_policies="${SKIP-static:k=6 random:rate=0.25}"
read -r skip_db skip_ds <<<"${SKIP_DECODE:-32 32}"
read -r skip_pb skip_pt <<<"${SKIP_PREFILL:-8 512}"
skip_args=()
for p in $skip_policies; do skip_args+=(--skip "$p"); done
if [ ${#skip_args[@]} -gt 0 ]; then
  skip_args+=(--skip-decode-batch "$skip_db" --skip-decode-steps "$skip_ds" --skip-prefill-batch "$skip_pb" --skip-prefill-len "$skip_pt")
  for e in ${SKIP_EXEC:-gather}; do skip_args+=(--skip-exec "$e"); done
  skip_args+=(--skip-decode-mode "${SKIP_DECODE_MODES:-eager}")
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  SEMSKIP_TARGETS="bench_engine" scripts/gpu/build-cuda.sh > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
fi
if [ -n "${SEMSKIP_EXTRA_ROOT:-}" ]; then
  export LD_LIBRARY_PATH="$SEMSKIP_EXTRA_ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"

first=1
for m in $models; do
  name="$(basename "$m")"
  prof=()
  if [ "${PROFILE:-1}" = 1 ] && [ $first = 1 ]; then prof=(--profile-out "$out/trace_${name}.json"); fi
  if [ "${SKIP_PROFILE:-0}" = 1 ] && [ ${#skip_args[@]} -gt 0 ]; then
    prof+=(--skip-profile-out "$out/trace_${name}_skip_prefill.json")
  fi
  build/cuda/bench/bench_engine --model "$m" --random-init --dtype bf16 --device cuda --attn sdpa \
    --decode-batch "$batches" --decode-mode "${DECODE_MODES:-eager,graph}" --new-tokens "$new_tokens" --prompt-len "$prompt_len" \
    --prefill-batch "$prefill_b" --prefill-len "$prefill_t" --warmup "$warmup" --reps "$reps" "${prof[@]}" "${skip_args[@]}" \
    > "$out/semskip_${name}.json"
  if [ ${#prof[@]} -gt 0 ]; then
    # One trace per decode mode: trace_<model>.json (the first mode), trace_<model>_<mode>.json;
    # trace_<model>_skip_prefill.json: the skipping prefill.
    for t in "$out"/trace_"${name}"*.json; do
      [ -f "$t" ] || continue
      tb="$(basename "$t" .json)"
      "$py" bench/gpu/summarize_trace.py "$t" > "$out/profile_${tb#trace_}.txt" || true
      rm -f "$t"
    done
  fi
  if [ "${HF:-1}" = 1 ]; then
    "$py" bench/gpu/hf_engine_bench.py --model "$m" --dtype bf16 --attn sdpa --decode-batch "$batches" \
      --new-tokens "$new_tokens" --prompt-len "$prompt_len" --prefill-batch "$prefill_b" \
      --prefill-len "$prefill_t" --warmup "$warmup" --reps "$reps" > "$out/hf_${name}.json"
  fi
  first=0
  if [ -n "${TAR_TO:-}" ]; then tar czf "$TAR_TO" -C "$out" .; fi
done
"$py" bench/gpu/engine_table.py "$out" | tee "$out/table.md"
if [ -n "${TAR_TO:-}" ]; then tar czf "$TAR_TO" -C "$out" .; fi
