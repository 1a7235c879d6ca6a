#!/usr/bin/env bash
# semskip serve-bench beside Hugging Face transformers on one GPU, in one run (issue 18's
# targets): a Qwen2-0.5B shape with random weights (bench/models/qwen2-0.5b), bf16, 256
# requests with prompt lengths uniform in 64–512 tokens and 128 new tokens each, end of sequence
# ignored.
#   1. serve-bench at --request-rate inf: policy none and a skipping policy, in each
#      --skip-exec mode the binary offers;
#   2. a request-rate sweep (policy none and the skipping policy): goodput at a TTFT/TPOT SLO
#      against the offered rate;
#   3. bench/gpu/hf_serve_reference.py on the same token ids (written by serve-bench
#      --save-prompts): generate() in static left-padded batches of 32 and 128, and
#      generate_batch() where the installed transformers has it; with PyTorch's default SDPA
#      backends, and again with cuDNN attention off (HF_NO_CUDNN_BATCHES) as semskip runs.
# Every serve-bench process first serves NUM_WARMUPS requests untimed (--num-warmups), as the
# transformers script warms up on one batch of 8.
# Everything lands in OUT_DIR as JSON (one result JSON per serve-bench run, HF's JSON), the
# printed blocks, and summary.md naming the GPU.
#
#   bench/gpu/serve_bench.sh OUT_DIR
#
# Settings (environment): SEMSKIP (the binary, default build/cuda/bin/semskip, built with
# scripts/gpu/build-cuda.sh when missing), NUM (256), SKIP_POLICY ("static:layers=8+9+10+11"),
# RATES (the sweep, requests/s: "8 16 32 64"), SWEEP_NUM (128 requests per sweep point), SLO
# ("ttft:1000 tpot:50", ms), HF (1: run transformers), HF_BATCHES (32,128), PYTHON (python3),
# MAX_NUM_SEQS (256), MAX_NUM_BATCHED_TOKENS (8192), MAX_MODEL_LEN (1024), KV_CACHE_MEMORY (16GiB),
# NUM_WARMUPS (8), HF_NO_CUDNN_BATCHES (32,128; empty: not run), EXTRA (more serve-bench arguments). On an H200 the whole run takes about 5–7
# minutes when the build is already done.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: serve_bench.sh OUT_DIR}"
mkdir -p "$out"
semskip="${SEMSKIP:-build/cuda/bin/semskip}"
num="${NUM:-256}"
skip_policy="${SKIP_POLICY:-static:layers=8+9+10+11}"
rates="${RATES:-8 16 32 64}"
sweep_num="${SWEEP_NUM:-128}"
slo="${SLO:-ttft:1000 tpot:50}"
py="${PYTHON:-python3}"
max_seqs="${MAX_NUM_SEQS:-256}"
max_tokens="${MAX_NUM_BATCHED_TOKENS:-8192}"

if [ ! -x "$semskip" ]; then
  SEMSKIP_TARGETS="semskip" scripts/gpu/build-cuda.sh > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
fi
if [ -n "${SEMSKIP_EXTRA_ROOT:-}" ]; then
  export LD_LIBRARY_PATH="$SEMSKIP_EXTRA_ROOT/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"

# The model folder: the published shape's config.json and, since the weights are random and the
# prompts are token ids, the embedded tiny model's tokenizer (its ids lie inside Qwen2's vocabulary).
model="$out/qwen2-0.5b"
mkdir -p "$model"
cp bench/models/qwen2-0.5b/config.json "$model/config.json"
cp models/tiny-dense/tokenizer.json "$model/tokenizer.json"

# 64–511 prompt tokens: vLLM's random set with input_len 288 and range_ratio 0.7777.
workload() { echo "vllm-random:num=$1,input_len=288,output_len=128,range_ratio=0.7777"; }
common=(--model "$model" --random-init --dtype bf16 --device cuda --max-new-tokens 128 --ignore-eos
        --max-num-seqs "$max_seqs" --max-num-batched-tokens "$max_tokens" --seed 0
        --max-model-len "${MAX_MODEL_LEN:-1024}" --kv-cache-memory "${KV_CACHE_MEMORY:-16GiB}"
        --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,90,99 --num-warmups "${NUM_WARMUPS:-8}"
        ${EXTRA:-})
modes="gather"
if "$semskip" serve-bench --help | grep -q -- "--skip-exec"; then modes="gather bucket mask"; fi

# 1. All requests at once, per --skip-exec mode.
first=1
for m in $modes; do
  exec_args=()
  if [ "$modes" != gather ]; then exec_args=(--skip-exec "$m"); fi
  prompts=()
  if [ $first = 1 ]; then prompts=(--save-prompts "$out/requests.jsonl"); fi
  "$semskip" serve-bench "${common[@]}" "${exec_args[@]}" "${prompts[@]}" --workload "$(workload "$num")" \
    --num-prompts "$num" --request-rate inf --policy none --policy "$skip_policy" --goodput $slo \
    --result-filename "$out/serve_inf_${m}.json" --report "$out/serve_inf_${m}.h5" --force \
    | tee "$out/serve_inf_${m}.txt"
  first=0
done

# 2. Goodput against the request rate.
for r in $rates; do
  "$semskip" serve-bench "${common[@]}" --workload "$(workload "$sweep_num")" --num-prompts "$sweep_num" \
    --request-rate "$r" --policy none --policy "$skip_policy" --goodput $slo \
    --result-filename "$out/serve_rate_${r}.json" | tee "$out/serve_rate_${r}.txt"
done

# 3. transformers on the same token ids.
if [ "${HF:-1}" = 1 ]; then
  "$py" bench/gpu/hf_serve_reference.py --model "$model" --requests "$out/requests.jsonl" --dtype bf16 \
    --batch "${HF_BATCHES:-32,128}" > "$out/hf_reference.json"
  if [ -n "${HF_NO_CUDNN_BATCHES-32,128}" ]; then
    "$py" bench/gpu/hf_serve_reference.py --model "$model" --requests "$out/requests.jsonl" --dtype bf16 \
      --batch "${HF_NO_CUDNN_BATCHES-32,128}" --cudnn-sdpa 0 > "$out/hf_reference_nocudnn.json"
  fi
fi

# The summary.
"$py" - "$out" "$modes" "$rates" "$slo" <<'PY'
import json, os, sys
out, modes, rates, slo = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
gpu = open(os.path.join(out, "gpu.txt")).read().strip().splitlines()
lines = ["# serve-bench on one GPU", "", "GPU (nvidia-smi name, memory.total, driver_version): "
         + (gpu[-1] if gpu else "unknown"), "",
         "Qwen2-0.5B shape, random weights, bf16; prompts 64–511 tokens, 128 new tokens each, "
         "end of sequence ignored.", "",
         "## All requests at once (--request-rate inf)", "",
         "| skip-exec | policy | out tok/s | req/s | mean TTFT ms | mean TPOT ms | goodput req/s | FLOPs saved net | exact match |",
         "|---|---|---|---|---|---|---|---|---|"]
for m in modes:
    p = os.path.join(out, f"serve_inf_{m}.json")
    if not os.path.exists(p):
        continue
    for r in json.load(open(p)):
        lines.append(f"| {m} | `{r['policy']}` | {r['output_throughput']:.0f} | {r['request_throughput']:.2f} | "
                     f"{r['mean_ttft_ms']:.1f} | {r['mean_tpot_ms']:.2f} | {r['request_goodput'] or 0:.2f} | "
                     f"{r['flops_saved_net']:.3f} | {r['exact_match']:.3f} |")
lines += ["", f"## Goodput against request rate (SLO {slo})", "",
          "| rate req/s | policy | goodput req/s | req/s | out tok/s | P99 TTFT ms | P99 TPOT ms |", "|---|---|---|---|---|---|---|"]
for rate in rates:
    p = os.path.join(out, f"serve_rate_{rate}.json")
    if not os.path.exists(p):
        continue
    for r in json.load(open(p)):
        lines.append(f"| {rate} | `{r['policy']}` | {r['request_goodput'] or 0:.2f} | {r['request_throughput']:.2f} | "
                     f"{r['output_throughput']:.0f} | {r['p99_ttft_ms']:.1f} | {r['p99_tpot_ms']:.2f} |")
for name in ("hf_reference.json", "hf_reference_nocudnn.json"):
    hf = os.path.join(out, name)
    if not os.path.exists(hf):
        continue
    h = json.load(open(hf))
    lines += ["", f"## Hugging Face transformers {h['transformers']} (torch {h['torch']}) on the same token ids, "
              f"cuDNN attention {'on' if h.get('cudnn_sdpa', True) else 'off'}", "",
              "| mode | output tokens/s | seconds |", "|---|---|---|"]
    for m in h["modes"]:
        if "error" in m:
            lines.append(f"| {m['mode']} | – ({m['error']}) | |")
        else:
            lines.append(f"| {m['mode']} | {m['output_tokens_per_s']:.0f} | {m['seconds']:.1f} |")
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
