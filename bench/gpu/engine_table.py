#!/usr/bin/env python3
"""The side-by-side table of bench/gpu/engine_side_by_side.sh: reads semskip_<model>.json and
hf_<model>.json from a folder and prints, per model, decode tokens/s at each batch for both
(semskip's eager and CUDA-graph decode modes), their ratios, the weight-read floor at batch 1, and prefill tokens/s; and, where bench_engine ran
--skip policies, their wall-clock saving next to their FLOPs saving against none."""
import glob
import json
import os
import sys


def main():
    d = sys.argv[1]
    gpu = open(os.path.join(d, "gpu.txt")).read().strip() if os.path.exists(os.path.join(d, "gpu.txt")) else "?"
    print(f"GPU: {gpu}\n")
    print("| model | batch | semskip eager tok/s | semskip graph tok/s | HF tok/s | eager / HF | graph / HF "
          "| graph step ms | graph capture ms | graph rows = eager | floor b1 tok/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    prefill = []
    for path in sorted(glob.glob(os.path.join(d, "semskip_*.json"))):
        name = os.path.basename(path)[len("semskip_"):-len(".json")]
        s = json.load(open(path))
        hp = os.path.join(d, f"hf_{name}.json")
        h = json.load(open(hp)) if os.path.exists(hp) else None
        hf_by_b = {r["batch"]: r for r in h["decode"]} if h else {}
        # Rows per (batch, decode mode); files from before decode modes hold eager rows only.
        by_b = {}
        for r in s["decode"]:
            by_b.setdefault(r["batch"], {})[r.get("decode_mode", "eager")] = r
        for b, modes in by_b.items():
            hr = hf_by_b.get(b)
            e, g = modes.get("eager"), modes.get("graph")
            fmt = lambda r: f"{r['decode_tokens_per_s']:.1f}" if r else "-"
            ratio = lambda r: f"{r['decode_tokens_per_s'] / hr['decode_tokens_per_s']:.2f}" if r and hr else "-"
            floor = f"{s['decode_floor_b1_tokens_per_s']:.0f}" if b == 1 else ""
            step = f"{g['step_ms']:.2f}" if g else "-"
            cap = f"{g['capture_ms']:.1f}" if g else "-"
            same = f"{g['rows_equal_first_mode']} of {b}" if g and "rows_equal_first_mode" in g else "-"
            hf = f"{hr['decode_tokens_per_s']:.1f}" if hr else "-"
            print(f"| {name} | {b} | {fmt(e)} | {fmt(g)} | {hf} | {ratio(e)} | {ratio(g)} | {step} | {cap} | {same} | {floor} |")
        hp_tps = h["prefill"]["tokens_per_s"] if h else None
        prefill.append((name, s["prefill"], hp_tps))
    print("\n| model | prefill | semskip tok/s | HF tok/s | ratio |")
    print("|---|---|---|---|---|")
    for name, p, hp in prefill:
        ratio = f"{p['tokens_per_s'] / hp:.2f}" if hp else "-"
        hps = f"{hp:.0f}" if hp else "-"
        print(f"| {name} | {p['batch']}x{p['tokens']} | {p['tokens_per_s']:.0f} | {hps} | {ratio} |")
    skip_rows = []
    for path in sorted(glob.glob(os.path.join(d, "semskip_*.json"))):
        name = os.path.basename(path)[len("semskip_"):-len(".json")]
        for r in json.load(open(path)).get("skipping", []):
            skip_rows.append((name, r))
    if skip_rows:
        print("\n| model | policy | rows | phase | shape | ms | ms none | wall saving | FLOPs saving | wall / FLOPs |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name, r in skip_rows:
            shape = f"{r['batch']}x{r['tokens']}" if r["phase"] == "prefill" else f"b{r['batch']}, {r['tokens']} steps"
            phase = r["phase"] + (f" {r['decode_mode']}" if r.get("decode_mode") else "")
            print(f"| {name} | {r['policy']} | {r.get('skip_exec', 'gather')} | {phase} | {shape} | {r['t_s'] * 1e3:.2f} "
                  f"| {r['t_none_s'] * 1e3:.2f} | {r['wall_saving']:.3f} | {r['flops_saving']:.3f} "
                  f"| {r['wall_over_flops_saving']:.2f} |")


if __name__ == "__main__":
    main()
