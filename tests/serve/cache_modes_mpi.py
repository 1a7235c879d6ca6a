#!/usr/bin/env python3
"""serve-bench's cache policies under 2 ranks, against one process.

Every request arrives at once (--request-rate inf) and the budgets hold every request, so each
rank schedules its share exactly as one process schedules the whole set; with a `replicated` or
`sharded` cache the ranks' lookups see the cache over the union of their insertions, row for
row in the order one process inserts them (union_row_offset). Each policy's generated text of
every request, its hit rate and its net FLOPs saved must then equal one process's exactly. With
`local` caches each rank sees only its own insertions: the run must complete, every request
served exactly once, with `none` unchanged.

usage: cache_modes_mpi.py SEMSKIP SCRATCH MPIEXEC -n [flags...]
"""
import json
import os
import shutil
import subprocess
import sys

semskip, scratch = sys.argv[1], sys.argv[2]
mpiexec = sys.argv[3:]
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
failures = []
POLICIES = ["residual:p=2,r=7,tau=0.9", "plan:p=2,beta=0.05,tau=0.95"]


def check(cond, what):
    if not cond:
        failures.append(what)


def serve(tag, launcher=(), extra=()):
    result = os.path.join(scratch, f"{tag}.json")
    cmd = list(launcher) + [semskip, "serve-bench", "--num-prompts", "8", "--max-new-tokens", "6", "--ignore-eos",
                            "--request-rate", "inf", "--kv-cache-memory", "64MiB", "--save-result", "--save-detailed",
                            "--result-filename", result, *[a for p in POLICIES for a in ("--policy", p)], *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=400)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\nexit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return {r["policy"]: r for r in json.load(open(result))}


one = serve("np1")
check(sorted(one) == sorted(["none", *POLICIES]), f"np1: policies {sorted(one)}")
check(one[POLICIES[0]]["hit_rate"] > 0.0, f"np1: {POLICIES[0]} never hit ({one[POLICIES[0]]['hit_rate']}): no test")
launcher = mpiexec[:2] + ["2"] + mpiexec[2:]
for mode in ("replicated", "sharded"):
    two = serve(f"np2-{mode}", launcher, ["--cache-mode", mode])
    for pol in ["none", *POLICIES]:
        a, b = one[pol], two.get(pol)
        if b is None:
            check(False, f"{mode}: policy {pol} missing")
            continue
        check(b["completed"] == a["completed"] == 8, f"{mode} {pol}: completed {b['completed']} vs {a['completed']}")
        check(b["request_ids"] == a["request_ids"], f"{mode} {pol}: request ids {b['request_ids']}")
        check(b["generated_texts"] == a["generated_texts"], f"{mode} {pol}: outputs differ from one process")
        check(b["output_lens"] == a["output_lens"], f"{mode} {pol}: output lengths {b['output_lens']}")
        check(b["hit_rate"] == a["hit_rate"], f"{mode} {pol}: hit rate {b['hit_rate']} vs {a['hit_rate']}")
        check(abs(b["flops_saved_net"] - a["flops_saved_net"]) <= 1e-12,
              f"{mode} {pol}: net saved {b['flops_saved_net']} vs {a['flops_saved_net']}")
local = serve("np2-local", launcher, ["--cache-mode", "local"])
for pol in ["none", *POLICIES]:
    r = local[pol]
    check(r["completed"] == 8 and sorted(r["request_ids"]) == sorted(one[pol]["request_ids"]),
          f"local {pol}: requests {r['request_ids']} ({r['completed']} completed)")
    check(all(n == 6 for n in r["output_lens"]), f"local {pol}: output lengths {r['output_lens']}")
check(local["none"]["generated_texts"] == one["none"]["generated_texts"], "local none: outputs differ from one process")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("serve-bench cache policies under 2 ranks: replicated and sharded equal one process, local complete")
