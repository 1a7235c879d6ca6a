#!/usr/bin/env python3
"""Hugging Face transformers generating the requests of a `semskip serve-bench` run: the
reference point of bench/gpu/serve_bench.sh.

Reads the requests as served (`semskip serve-bench --save-prompts requests.jsonl`: one JSON
object per line with id, max_new_tokens and prompt_token_ids, the exact token ids), builds the
model of a config.json with random weights on the GPU (bf16, sdpa), and generates every
request's max_new_tokens greedily, end of sequence ignored, all requests submitted at once:
  - static batches: generate() on left-padded batches of --batch sizes (requests in file
    order, the last batch smaller); output tokens/s = all generated tokens / total time;
  - continuous batching: generate_batch() when the installed transformers has it (its paged
    cache, --cb-max-batch-tokens tokens per step), the same figure.
One untimed warm-up batch first; CUDA synchronised around every timed part. With
--cudnn-sdpa 0 PyTorch's cuDNN attention backend is switched off (as semskip does on CUDA: it
builds a plan for every new shape, and a growing cache gives a new shape every step), so that
both settings can be reported. Prints one JSON document (transformers and torch versions, the
GPU, the cuDNN setting, per mode the time and tokens/s).
"""
import argparse
import json
import sys
import time


def load_requests(path):
    reqs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
                reqs.append((list(r["prompt_token_ids"]), int(r["max_new_tokens"])))
            except (ValueError, KeyError, TypeError) as e:
                sys.exit(f"{path}:{n}: not a request of serve-bench --save-prompts ({e})")
    if not reqs:
        sys.exit(f"{path}: no requests")
    return reqs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="folder with config.json")
    ap.add_argument("--requests", required=True, help="JSON Lines of serve-bench --save-prompts")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--batch", default="32,128", help="static batch sizes, comma-separated")
    ap.add_argument("--continuous", type=int, default=1, help="1: also generate_batch() when available")
    ap.add_argument("--cb-max-batch-tokens", type=int, default=8192)
    ap.add_argument("--cudnn-sdpa", type=int, default=1, choices=[0, 1],
                    help="0: switch PyTorch's cuDNN attention backend off (1: PyTorch's default)")
    a = ap.parse_args()

    reqs = load_requests(a.requests)

    from hf_common import random_model

    model, cfg, torch, transformers = random_model(a.model, a.dtype, a.attn)
    if not a.cudnn_sdpa:
        torch.backends.cuda.enable_cudnn_sdp(False)
    gc = model.generation_config  # greedy, no end token (hf_common)

    out = {"model": a.model, "model_type": cfg.model_type, "dtype": a.dtype, "attn": a.attn,
           "transformers": transformers.__version__, "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name(0), "cudnn_sdpa": torch.backends.cuda.cudnn_sdp_enabled(),
           "n_requests": len(reqs),
           "n_prompt_tokens": sum(len(p) for p, _ in reqs),
           "n_output_tokens": sum(n for _, n in reqs), "modes": []}

    def static_batch(batch):
        width = max(len(p) for p, _ in batch)
        new = max(n for _, n in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long, device="cuda")
        mask = torch.zeros_like(ids)
        for i, (p, _) in enumerate(batch):
            ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long, device="cuda")
            mask[i, width - len(p):] = 1
        res = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                             do_sample=False, generation_config=gc)
        # Every row generates `new` tokens; a request asking fewer counts only its own.
        return sum(min(n, res.shape[1] - width) for _, n in batch)

    with torch.inference_mode():
        static_batch(reqs[:min(8, len(reqs))])  # warm-up, untimed
        for b in [int(s) for s in a.batch.split(",") if s]:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            produced = 0
            for i in range(0, len(reqs), b):
                produced += static_batch(reqs[i:i + b])
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            out["modes"].append({"mode": f"static_b{b}", "batch": b, "seconds": dt, "output_tokens": produced,
                                 "output_tokens_per_s": produced / dt})
            print(f"hf static b{b}: {produced / dt:.1f} output tokens/s", file=sys.stderr)

    # generate_batch updates its static tensors in place outside the inference mode it creates
    # them in ("Inplace update to inference tensor outside InferenceMode" in transformers
    # 5.17), so it runs under no_grad.
    with torch.no_grad():
        if a.continuous and hasattr(model, "generate_batch"):
            from transformers import GenerationConfig
            new = max(n for _, n in reqs)
            cb = GenerationConfig(max_new_tokens=new, eos_token_id=None, pad_token_id=0, do_sample=False,
                                  max_batch_tokens=a.cb_max_batch_tokens)
            inputs = [p for p, _ in reqs]
            try:
                model.generate_batch(inputs=inputs[:8], generation_config=cb)  # warm-up, untimed
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                res = model.generate_batch(inputs=inputs, generation_config=cb)
                torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                produced = 0
                for v in (res.values() if isinstance(res, dict) else res):
                    toks = getattr(v, "generated_tokens", None)
                    produced += len(toks) if toks is not None else new
                out["modes"].append({"mode": "generate_batch", "seconds": dt, "output_tokens": produced,
                                     "output_tokens_per_s": produced / dt,
                                     "max_batch_tokens": a.cb_max_batch_tokens})
                print(f"hf generate_batch: {produced / dt:.1f} output tokens/s", file=sys.stderr)
                if produced == 0:  # the manager logs failed requests instead of raising
                    out["modes"][-1] = {"mode": "generate_batch", "error": "no tokens generated (see the log)"}
            except Exception as e:  # an API that differs in this version: recorded, not fatal
                out["modes"].append({"mode": "generate_batch", "error": f"{type(e).__name__}: {e}"})
        elif a.continuous:
            out["modes"].append({"mode": "generate_batch", "error": "not in this transformers version"})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
