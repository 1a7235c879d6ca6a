#!/usr/bin/env python3
"""Where the time of a profiled generation goes: reads a Kineto / Chrome trace (bench_engine
--profile-out) and prints, for CPU operators and GPU kernels, total time, calls and share, plus
the span of the trace and the GPU's busy time within it.

  python3 bench/gpu/summarize_trace.py trace.json [--top 25] [--json out.json]
"""
import argparse
import collections
import json


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--json", help="also write the summary as JSON")
    a = ap.parse_args()
    with open(a.trace) as f:
        events = json.load(f)
    events = events.get("traceEvents", events) if isinstance(events, dict) else events
    complete = [e for e in events if e.get("ph") == "X" and "dur" in e]
    if not complete:
        raise SystemExit(f"{a.trace}: no complete ('X') events")
    t0 = min(e["ts"] for e in complete)
    t1 = max(e["ts"] + e["dur"] for e in complete)
    by_cat = collections.defaultdict(lambda: collections.defaultdict(lambda: [0.0, 0]))
    for e in complete:
        cat = e.get("cat", "")
        slot = by_cat[cat][e.get("name", "?")]
        slot[0] += e["dur"]
        slot[1] += 1
    kernels = by_cat.get("kernel", {})
    gpu_busy = sum(v[0] for v in kernels.values())
    span = t1 - t0
    summary = {"span_us": span, "gpu_kernel_us": gpu_busy, "gpu_busy_share": gpu_busy / span if span else 0.0,
               "n_kernels": sum(v[1] for v in kernels.values()),
               "categories": {}}
    print(f"trace span {span / 1e3:.2f} ms; GPU kernels {gpu_busy / 1e3:.2f} ms "
          f"({100 * summary['gpu_busy_share']:.1f}% busy), {summary['n_kernels']} kernel launches")
    for cat in ("kernel", "cuda_runtime", "cpu_op", "gpu_memcpy", "gpu_memset"):
        rows = sorted(by_cat.get(cat, {}).items(), key=lambda kv: -kv[1][0])
        total = sum(v[0] for _, v in rows)
        summary["categories"][cat] = {"total_us": total,
                                      "top": [{"name": n, "us": v[0], "calls": v[1]} for n, v in rows[:a.top]]}
        if not rows:
            continue
        print(f"\n{cat}: {total / 1e3:.2f} ms in {sum(v[1] for _, v in rows)} events")
        for name, (us, calls) in rows[:a.top]:
            print(f"  {us / 1e3:9.3f} ms {calls:7d}  {100 * us / total:5.1f}%  {name[:110]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
