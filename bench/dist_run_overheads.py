#!/usr/bin/env python3
"""Overheads of a distributed `semskip run`: tokens/s per rank and in total, the share of time
in collectives, and the bytes each cache mode moves per step, for 1, 2 and 4 ranks on the
embedded tiny-dense and tiny-moe (expert parallelism 2 and 4).

usage: dist_run_overheads.py SEMSKIP OUT_PREFIX [--reps N] [--mpiexec CMD] [--requests N]

Every configuration is a Cartesian point (model, ranks, ep, cache mode), run --reps times under
`mpiexec --oversubscribe`; each run's HDF5 report is read back and one JSON row per point is
written with the median (and min, max) over repetitions, plus a Markdown table. Timings use the
report's own clocks (semskip times each step's full run and each policy's run; collectives are
timed inside the Communicator).

On a machine with fewer cores than ranks the ranks share cores: the figures show the costs
that distribution adds (collectives, waiting, bytes), not how throughput scales.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

import h5py
import numpy as np

SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICIES = {"tiny-dense": "residual:p=2,r=7,tau=0.9", "tiny-moe": "residual:p=1,r=3,tau=0.9"}
# (model, ranks, ep); cache modes are crossed with every point of more than one rank.
POINTS = [("tiny-dense", 1, 1), ("tiny-dense", 2, 1), ("tiny-dense", 4, 1),
          ("tiny-moe", 1, 1), ("tiny-moe", 2, 2), ("tiny-moe", 4, 2), ("tiny-moe", 4, 4)]
MODES = ["local", "replicated", "sharded"]
KINDS = ["allreduce", "allgather", "allgatherv", "alltoallv", "broadcast", "barrier"]


def one_run(args, model, ranks, ep, mode, report):
    cmd = [*args.mpiexec.split(), "-n", str(ranks), args.semskip, "run", "--model", os.path.join(SOURCE, "models", model),
           "--max-requests", str(args.requests), "--calib-requests", "0", "--batch", str(args.batch),
           "--max-new-tokens", str(args.new_tokens), "--threads", "1", "--ep", str(ep), "--cache-mode", mode,
           "--policy", "none", "--policy", POLICIES[model], "--report", report]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}{p.stderr}")
    with h5py.File(report, "r") as f:
        pr, st = f["/per_rank"][()], f["/steps"][()]
        hosts = json.loads(f.attrs["hosts"])
        rev = f.attrs["git_revision"]
    out = {}
    for policy in ["none", POLICIES[model]]:
        rk = pr[np.array([p.decode() for p in pr["policy"]]) == policy]
        ps = st[np.array([p.decode() for p in st["policy"]]) == policy]
        t_skip = rk["t_skip_ns"].astype(float) * 1e-9
        n_steps = len(np.unique(ps["step"]))
        out[policy] = {
            # The job finishes with its slowest rank.
            "tokens_per_s_total": float(rk["n_tokens"].sum() / t_skip.max()),
            "tokens_per_s_per_rank": float(np.mean(rk["n_tokens"] / t_skip)),
            "comm_share": float(np.mean(rk["t_comm_ns"] / rk["t_skip_ns"])),
            "sent_bytes_per_step_per_rank": float(sum(rk[f"comm_{k}_sent_bytes"].sum() for k in KINDS)
                                                  / n_steps / len(rk)),
            "alltoallv_bytes_per_step_per_rank": float(rk["comm_alltoallv_sent_bytes"].sum() / n_steps / len(rk)),
            "allgatherv_bytes_per_step_per_rank": float(rk["comm_allgatherv_sent_bytes"].sum() / n_steps / len(rk)),
            "ep_alltoall_share": float(np.mean(rk["ep_t_alltoall_ns"] / rk["t_skip_ns"])),
            "hit_rate": float(rk["cache_hits"].sum() / max(1, rk["cache_lookups"].sum())),
            "n_tokens": int(rk["n_tokens"].sum()),
            "n_steps": n_steps,
        }
    return out, hosts, rev


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("semskip")
    ap.add_argument("out_prefix")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mpiexec", default="mpiexec --allow-run-as-root --oversubscribe")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=4)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model, ranks, ep in POINTS:
            for mode in (MODES if ranks > 1 else ["local"]):
                reps = []
                for r in range(args.reps):
                    out, hosts, rev = one_run(args, model, ranks, ep, mode, os.path.join(tmp, "r.h5"))
                    reps.append(out)
                row = {"model": model, "ranks": ranks, "ep": ep, "cache_mode": mode, "hosts": sorted(set(hosts)),
                       "git_revision": rev, "requests": args.requests, "batch": args.batch,
                       "max_new_tokens": args.new_tokens, "reps": args.reps}
                for policy in reps[0]:
                    for key in reps[0][policy]:
                        vals = [rep[policy][key] for rep in reps]
                        row[f"{policy}/{key}"] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
                rows.append(row)
                print(f"{model} np{ranks} ep{ep} {mode}: done", file=sys.stderr)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "node": platform.node(),
            "oversubscribed": True, "note": "ranks share cores: overheads only, not scaling"}
    with open(args.out_prefix + ".json", "w") as fh:
        json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    with open(args.out_prefix + ".md", "w") as fh:
        fh.write(f"Machine: {meta['cpus']} CPU cores ({meta['machine']}), ranks oversubscribed, OMP_NUM_THREADS=1; "
                 f"{args.requests} requests of 128 tokens, batch {args.batch}, {args.new_tokens} generated tokens; "
                 f"median of {args.reps} runs. Revision {rows[0]['git_revision']}.\n\n")
        fh.write("| model | ranks | ep | cache | policy | tokens/s total | tokens/s per rank | comm share | "
                 "EP all-to-all share | bytes sent per step per rank | of which all-to-all | of which allgatherv | "
                 "hit rate |\n")
        fh.write("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            for policy in ["none", POLICIES[r["model"]]]:
                g = lambda k: r[f"{policy}/{k}"]["median"]
                fh.write(f"| {r['model']} | {r['ranks']} | {r['ep']} | {r['cache_mode']} | {policy} | "
                         f"{g('tokens_per_s_total'):.0f} | {g('tokens_per_s_per_rank'):.0f} | "
                         f"{100 * g('comm_share'):.1f}% | {100 * g('ep_alltoall_share'):.1f}% | "
                         f"{g('sent_bytes_per_step_per_rank'):.0f} | {g('alltoallv_bytes_per_step_per_rank'):.0f} | "
                         f"{g('allgatherv_bytes_per_step_per_rank'):.0f} | {100 * g('hit_rate'):.1f}% |\n")


if __name__ == "__main__":
    main()
