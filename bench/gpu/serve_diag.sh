#!/usr/bin/env bash
# Where a serving step's time goes on one GPU: serve-bench on the Qwen2-0.5B shape (random
# weights, bf16, 256 requests of 64–511 prompt tokens, 128 new tokens each, all at once) with
# the step phases of /steps in the HDF5 report, Kineto traces of chosen steps
# (bench/gpu/summarize_trace.py summarises them), with and without a warm-up, and the cost of a
# new attention shape (bench/gpu/sdpa_shapes.py). Everything lands in OUT_DIR.
#
#   bench/gpu/serve_diag.sh OUT_DIR
#
# Settings (environment): SEMSKIP (build/cuda/bin/semskip), NUM (256), POLICIES (served after
# none in each run: "random:rate=0"), SKIP_EXEC (gather), WARMUPS ("0 64": one run per value),
# PROFILE_STEPS (the traced window of each run, FIRST:COUNT: "60:3"), EXTRA (more serve-bench
# arguments), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: serve_diag.sh OUT_DIR}"
mkdir -p "$out"
semskip="${SEMSKIP:-build/cuda/bin/semskip}"
py="${PYTHON:-python3}"
num="${NUM:-256}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
"$py" bench/gpu/sdpa_shapes.py > "$out/sdpa_shapes.json" 2> "$out/sdpa_shapes.err" || true

model="$out/qwen2-0.5b"
mkdir -p "$model"
cp bench/models/qwen2-0.5b/config.json "$model/config.json"
cp models/tiny-dense/tokenizer.json "$model/tokenizer.json"
policies=()
for p in ${POLICIES-random:rate=0}; do policies+=(--policy "$p"); done
for w in ${WARMUPS:-0 64}; do
  "$semskip" serve-bench --model "$model" --random-init --dtype bf16 --device cuda --max-new-tokens 128 --ignore-eos \
    --max-num-seqs 256 --max-num-batched-tokens 8192 --seed 0 --max-model-len 1024 --kv-cache-memory 16GiB \
    --workload "vllm-random:num=$num,input_len=288,output_len=128,range_ratio=0.7777" --num-prompts "$num" \
    --request-rate inf --skip-exec "${SKIP_EXEC:-gather}" "${policies[@]}" --num-warmups "$w" \
    --profile-out "$out/trace_w$w.json" --profile-steps "${PROFILE_STEPS:-60:3}" \
    --result-filename "$out/serve_w$w.json" --report "$out/serve_w$w.h5" --force ${EXTRA:-} \
    > "$out/serve_w$w.txt" 2>&1 || { tail -30 "$out/serve_w$w.txt"; exit 1; }
  tail -12 "$out/serve_w$w.txt"
  for t in "$out"/trace_w"$w".*.json; do
    [ -f "$t" ] || continue
    "$py" bench/gpu/summarize_trace.py "$t" --top 30 > "${t%.json}.txt" || true
    rm -f "$t"
  done
done
