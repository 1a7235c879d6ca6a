#!/usr/bin/env bash
# Goodput and throughput against the request rate for every --skip-exec mode, policy none and a
# skipping policy on the same Poisson arrival trace per rate: the Qwen2-0.5B shape (random
# weights, bf16), vLLM's random set (prompts of 64–511 tokens, 128 new tokens, end of sequence
# ignored), the settings of bench/gpu/serve_bench.sh. Writes one result JSON per (mode, rate)
# and summary.md into OUT_DIR.
#
#   bench/gpu/serve_rate_sweep.sh OUT_DIR
#
# Settings (environment): SEMSKIP (build/cuda/bin/semskip), NUM (256 requests per point), RATES
# ("32 64 128 256"), MODES ("gather bucket mask"), SKIP_POLICY ("static:layers=8+9+10+11"), SLO
# ("ttft:1000 tpot:50"), PYTHON (python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:?usage: serve_rate_sweep.sh OUT_DIR}"
mkdir -p "$out"
semskip="${SEMSKIP:-build/cuda/bin/semskip}"
num="${NUM:-256}"
slo="${SLO:-ttft:1000 tpot:50}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt"
model="$out/qwen2-0.5b"
mkdir -p "$model"
cp bench/models/qwen2-0.5b/config.json "$model/config.json"
cp models/tiny-dense/tokenizer.json "$model/tokenizer.json"
for m in ${MODES:-gather bucket mask}; do
  for r in ${RATES:-32 64 128 256}; do
    "$semskip" serve-bench --model "$model" --random-init --dtype bf16 --device cuda --max-new-tokens 128 --ignore-eos \
      --max-num-seqs 256 --max-num-batched-tokens 8192 --seed 0 --max-model-len 1024 --kv-cache-memory 16GiB \
      --num-warmups 8 --workload "vllm-random:num=$num,input_len=288,output_len=128,range_ratio=0.7777" \
      --num-prompts "$num" --request-rate "$r" --skip-exec "$m" --policy none --policy "${SKIP_POLICY:-static:layers=8+9+10+11}" \
      --goodput $slo --result-filename "$out/rate_${m}_${r}.json" > "$out/rate_${m}_${r}.txt" 2>&1
  done
done
rm -rf "$model"
"${PYTHON:-python3}" - "$out" "${MODES:-gather bucket mask}" "${RATES:-32 64 128 256}" "$slo" <<'PY'
import json, os, sys
out, modes, rates, slo = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
gpu = open(os.path.join(out, "gpu.txt")).read().strip()
lines = [f"# Goodput against request rate ({gpu})", "", f"SLO {slo}", "",
         "| skip-exec | rate req/s | policy | goodput req/s | req/s | out tok/s | P99 TTFT ms | P99 TPOT ms | FLOPs saved net |",
         "|---|---|---|---|---|---|---|---|---|"]
for m in modes:
    for r in rates:
        p = os.path.join(out, f"rate_{m}_{r}.json")
        if not os.path.exists(p):
            continue
        for x in json.load(open(p)):
            lines.append(f"| {m} | {r} | `{x['policy']}` | {x['request_goodput'] or 0:.2f} | {x['request_throughput']:.2f} | "
                         f"{x['output_throughput']:.0f} | {x['p99_ttft_ms']:.1f} | {x['p99_tpot_ms']:.2f} | {x['flops_saved_net']:.3f} |")
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
