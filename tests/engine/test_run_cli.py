#!/usr/bin/env python3
"""`semskip run` end to end: the report read back with h5py, TOML configs, refusals.

usage: test_run_cli.py SEMSKIP_BINARY SCRATCH_DIR
"""
import json
import os
import shutil
import subprocess
import sys

import h5py

semskip, scratch = sys.argv[1], sys.argv[2]
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
env = dict(os.environ, OMP_NUM_THREADS="1")
failures = []


def run(*args, expect_ok=True, pattern=None):
    p = subprocess.run([semskip, "run", *args], capture_output=True, text=True, env=env, cwd=scratch)
    out = p.stdout + p.stderr
    if expect_ok != (p.returncode == 0):
        failures.append(f"{args}: exit {p.returncode}\n{out}")
    if pattern is not None and pattern not in out:
        failures.append(f"{args}: output lacks {pattern!r}\n{out}")
    return p


def check(cond, what):
    if not cond:
        failures.append(what)


# A small comparison written to a report.
report = os.path.join(scratch, "run.h5")
run("--max-requests", "3", "--calib-requests", "2", "--policy", "none", "--policy", "static:k=1",
    "--policy", "residual:p=2,r=7,tau=0.9", "--report", report)
with h5py.File(report, "r") as f:
    s = f["/summary"][:]
    pol = [p.decode() for p in s["policy"]]
    check(pol == ["none", "static:k=1", "residual:p=2,r=7,tau=0.9"], f"policies {pol}")
    none, static, resid = s[0], s[1], s[2]
    check(none["flops_saved_net"] == 0 and none["top1_agreement"] == 1.0 and abs(none["kl"]) < 1e-9,
          "the none policy must equal the full model")
    check(none["flops_executed"] == none["flops_full"], "none executes the full FLOPs")
    # Static skipping of one whole layer saves exactly that layer's share of the full FLOPs.
    layers = f["/per_layer"][:]
    st = layers[[p.decode() == "static:k=1" for p in layers["policy"]]]
    skipped = st[st["n_block_run"] == 0]
    check(len(skipped) == 1, f"static:k=1 skipped {len(skipped)} layers")
    share = skipped["flops_full"][0] / static["flops_full"]
    check(abs(static["flops_saved_gross"] - share) < 1e-12, f"static saving {static['flops_saved_gross']} != {share}")
    check(static["flops_overhead"] == 0, "static has no overhead")
    # The cache policy pays for lookups; its net saving is its gross saving minus them.
    check(resid["cache_lookups"] == resid["n_tokens"], "one lookup per token")
    net = 1 - (resid["flops_executed"] + resid["flops_overhead"]) / resid["flops_full"]
    check(abs(resid["flops_saved_net"] - net) < 1e-12, "net saving")
    check(resid["flops_overhead"] > 0, "lookups are charged")
    check(0 <= resid["top1_agreement_lo"] <= resid["top1_agreement"] <= resid["top1_agreement_hi"] <= 1, "interval")
    req = f["/requests"][:]
    check(len(req) == 9, f"{len(req)} request rows")
    cfg = json.loads(f.attrs["config_json"])
    check(cfg["max_requests"] == 3 and cfg["policies"][2] == "residual:p=2,r=7,tau=0.9", "resolved config")
    check(f.attrs["command"] == "run", "command attribute")

# TOML: its values apply, the command line wins.
toml = os.path.join(scratch, "run.toml")
with open(toml, "w") as fh:
    fh.write('policy = ["none", "static:layers=3"]\nmax-requests = 2\ncalib-requests = 0\nreport = "t.h5"\n')
run("--config", toml, "--max-requests", "1")
with h5py.File(os.path.join(scratch, "t.h5"), "r") as f:
    s = f["/summary"][:]
    check([p.decode() for p in s["policy"]] == ["none", "static:layers=3"], "policies from TOML")
    check(all(s["n_requests"] == 1), "--max-requests on the command line wins over TOML")

# Every index backend serves the cache, Kokkos included (initialised by the command).
run("--max-requests", "2", "--calib-requests", "0", "--policy", "residual:p=2,r=7,tau=0.9",
    "--index", "kokkos:flat", "--index", "torch:flat", "--report", "k.h5")
with h5py.File(os.path.join(scratch, "k.h5"), "r") as f:
    s = f["/summary"][:]
    check([i.decode() for i in s["index"]] == ["kokkos:flat", "torch:flat"], "one row per index")
    check(s["cache_hits"][0] == s["cache_hits"][1], "exact backends agree on hits")

# Refusals: clear message, non-zero exit, no report.
bad = os.path.join(scratch, "bad.toml")
with open(bad, "w") as fh:
    fh.write("max-request = 2\n")
run("--config", bad, "--report", "bad.h5", expect_ok=False, pattern="unknown key 'max-request'")
run("--policy", "residual:p=2,r=2,tau=0.9", "--report", "bad.h5", expect_ok=False, pattern="need 0 ≤ p < r")
run("--policy", "magic", "--report", "bad.h5", expect_ok=False, pattern="unknown policy 'magic'")
run("--workload", "text:/nonexistent/file.txt", "--report", "bad.h5", expect_ok=False, pattern="/nonexistent/file.txt")
run("--index", "faiss:NoSuchIndex", "--policy", "residual:p=2,r=7,tau=0.9", "--report", "bad.h5",
    expect_ok=False, pattern="NoSuchIndex")
check(not os.path.exists(os.path.join(scratch, "bad.h5")), "a failed run left a report")
check(not os.path.exists(os.path.join(scratch, "bad.h5.tmp")), "a failed run left a temporary report")

if failures:
    print("\n".join(failures))
    print(f"0 passed, {len(failures)} failed")
    sys.exit(1)
print("run CLI checks passed")
