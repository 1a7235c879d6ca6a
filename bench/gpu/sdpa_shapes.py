#!/usr/bin/env python3
"""The cost of a new attention shape on the GPU: PyTorch's scaled_dot_product_attention at the
shapes a serving step of semskip produces (decode rows with a per-row additive mask over a key
length that grows by one slot per step), timed at the first call of each shape and again at a
repeat, for each SDPA backend the installed PyTorch enables by default and with cuDNN attention
switched off. Prints JSON (backend chosen, first-call and repeat medians in ms).

  python3 bench/gpu/sdpa_shapes.py [--batch 256] [--kv-heads 2] [--rep 7] [--head-dim 64]
"""
import argparse
import json
import statistics
import time

import torch


def run(a, lengths, use_cudnn):
    torch.backends.cuda.enable_cudnn_sdp(use_cudnn)
    dev, dt = "cuda", torch.bfloat16
    first, again = [], []
    choice = None
    for tk in lengths:
        q = torch.randn(a.batch, a.kv_heads, a.rep, a.head_dim, device=dev, dtype=dt)
        k = torch.randn(a.batch, a.kv_heads, tk, a.head_dim, device=dev, dtype=dt)
        v = torch.randn_like(k)
        mask = torch.zeros(a.batch, 1, a.rep, tk, device=dev, dtype=dt)
        mask[:, :, :, : tk // 3] = float("-inf")
        if choice is None:
            try:
                choice = int(torch._fused_sdp_choice(q, k, v, mask, 0.0, False))
            except Exception as e:  # noqa: BLE001 - private API, report what happened
                choice = f"unavailable: {e}"
        for dst in (first, again):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            torch.cuda.synchronize()
            dst.append((time.perf_counter() - t0) * 1e3)
    return {"cudnn_enabled": use_cudnn, "fused_sdp_choice": choice,
            "first_call_ms_median": statistics.median(first), "first_call_ms_max": max(first),
            "repeat_ms_median": statistics.median(again)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--rep", type=int, default=7)
    ap.add_argument("--head-dim", type=int, default=64)
    a = ap.parse_args()
    torch.zeros(1, device="cuda")
    out = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
           "cudnn_sdp_enabled_default": torch.backends.cuda.cudnn_sdp_enabled(),
           "flash_sdp_enabled": torch.backends.cuda.flash_sdp_enabled(),
           "mem_efficient_sdp_enabled": torch.backends.cuda.mem_efficient_sdp_enabled(),
           "runs": []}
    out["runs"].append(run(a, list(range(300, 340)), True))
    out["runs"].append(run(a, list(range(400, 440)), False))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
