#!/usr/bin/env python3
"""Hugging Face transformers on the same shapes and inputs as bench_engine (the reference point
of bench/gpu/engine_side_by_side.sh).

Builds the model from a config.json with random weights directly on the GPU (bf16, sdpa), then
measures with CUDA synchronisation around every timed run, warm-up untimed, the median of
--reps runs:
  - prefill of B x T tokens (one forward with the cache on, logits of the last position);
  - greedy decode at each batch size: generate() of N new tokens and of 1 new token (end of
    sequence ignored); decode tokens/s = B (N - 1) / (t_N - t_1), the steps after the prefill;
    generate tokens/s = B N / t_N.
Prompts are the ids (i * 7919 + 13) mod V, as in bench_engine. Prints one JSON document.
"""
import argparse
import json
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="folder with config.json")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--decode-batch", default="1,8,32,128")
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--prefill-batch", type=int, default=8)
    ap.add_argument("--prefill-len", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()

    from hf_common import random_model

    model, cfg, torch, transformers = random_model(a.model, a.dtype, a.attn)
    gc = model.generation_config  # greedy, no end token (hf_common)
    vocab = cfg.vocab_size

    def ids(b, t):
        row = [(i * 7919 + 13) % vocab for i in range(t)]
        return torch.tensor([row] * b, dtype=torch.long, device="cuda")

    def timed(fn):
        for _ in range(a.warmup):
            fn()
        samples = []
        for _ in range(a.reps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            samples.append(time.perf_counter() - t0)
        return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples),
                "samples_s": samples}

    out = {"model": a.model, "model_type": cfg.model_type, "dtype": a.dtype, "attn": a.attn,
           "transformers": transformers.__version__, "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(0),
           "n_params": sum(p.numel() for p in model.parameters()),
           "warmup": a.warmup, "reps": a.reps}

    with torch.inference_mode():
        x = ids(a.prefill_batch, a.prefill_len)
        t = timed(lambda: model(input_ids=x, use_cache=True, logits_to_keep=1))
        out["prefill"] = {"batch": a.prefill_batch, "tokens": a.prefill_len,
                          "tokens_per_s": a.prefill_batch * a.prefill_len / t["median_s"], "timing": t}
        decode = []
        for b in [int(s) for s in a.decode_batch.split(",")]:
            x = ids(b, a.prompt_len)
            mask = torch.ones_like(x)

            def gen(n):
                return lambda: model.generate(input_ids=x, attention_mask=mask, max_new_tokens=n,
                                              min_new_tokens=n, do_sample=False, generation_config=gc)
            tn = timed(gen(a.new_tokens))
            t1 = timed(gen(1))
            steps = a.new_tokens - 1
            dt = max(tn["median_s"] - t1["median_s"], 1e-9)
            decode.append({"batch": b, "prompt_tokens": a.prompt_len, "new_tokens": a.new_tokens,
                           "decode_tokens_per_s": b * steps / dt,
                           "generate_tokens_per_s": b * a.new_tokens / tn["median_s"],
                           "step_ms": dt * 1e3 / steps, "generate_timing": tn, "generate_1_timing": t1})
            print(f"hf decode b{b}: {b * steps / dt:.1f} tokens/s", file=sys.stderr)
        out["decode"] = decode
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
