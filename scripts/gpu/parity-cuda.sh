#!/usr/bin/env bash
# Runs `semskip parity` on the GPU for every fixture, both attention implementations (and sdpa with
# the CUDA-graph decode), after
# scripts/gpu/build-cuda.sh. Writes one JSON per run into ${1:-parity-cuda}/ and exits non-zero
# if any run fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-parity-cuda}"
mkdir -p "$out"
rc=0
for f in llama-gqa qwen2-tied qwen2moe mixtral qwen2moe-mixed olmoe; do
  for attn in eager sdpa; do
    if build/cuda/bin/semskip parity --model "tests/data/parity/$f" \
        --reference "tests/data/parity/$f/reference.safetensors" --device cuda --attn "$attn" \
        > "$out/parity_${f}_${attn}.json"; then
      echo "parity $f $attn: pass"
    else
      echo "parity $f $attn: FAIL"
      rc=1
    fi
  done
  # Greedy decoding from the captured CUDA graph (model/fixed_decode.h) against the same reference.
  if build/cuda/bin/semskip parity --model "tests/data/parity/$f" \
      --reference "tests/data/parity/$f/reference.safetensors" --device cuda --attn sdpa --decode-mode graph \
      > "$out/parity_${f}_sdpa_graph.json"; then
    echo "parity $f sdpa, decode graph: pass"
  else
    echo "parity $f sdpa, decode graph: FAIL"
    rc=1
  fi
done
exit $rc
