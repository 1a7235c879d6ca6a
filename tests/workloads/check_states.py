#!/usr/bin/env python3
"""`semskip workload states` checked against independent facts.

1. Its row count equals the prompt tokens that `semskip workload stats --json` counts (another
   code path), its width the model's hidden_size, and every value is finite.
2. Identical prompts give identical rows: a synthetic workload of one template and one filler
   repeats a single prompt, so the file is that prompt's rows over and over, bit for bit.
3. Several workloads are written one after another. The layer matters (block 1's output differs from block 2's), and a request's rows do not
   depend on the requests around it (the first request alone gives the first rows).
4. A layer past the model is refused with a message naming it, and no file is left.
usage: check_states.py SEMSKIP WORKDIR
"""
import json
import os
import subprocess
import sys

import numpy as np

semskip, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
env = dict(os.environ, OMP_NUM_THREADS="1")


def run(*args, ok=True):
    p = subprocess.run([semskip, "workload", *args], capture_output=True, text=True, env=env)
    if ok and p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(args)}\n{p.stdout}{p.stderr}")
    return p


def states(spec, layer, name, *extra):
    out = os.path.join(work, name)
    run("states", spec, "--layer", str(layer), "--out", out, *extra)
    return np.load(out)


spec = "text,max_requests=6"
x2 = states(spec, 2, "text_l2.npy")
stats = json.loads(run("stats", spec, "--json", "--redundancy-max", "0").stdout)
n_tokens = round(stats["prompt_tokens"]["n"] * stats["prompt_tokens"]["mean"])
assert x2.dtype == np.float32 and x2.shape == (n_tokens, 256), (x2.shape, n_tokens)
assert np.isfinite(x2).all()

x1 = states(spec, 1, "text_l1.npy")
assert x1.shape == x2.shape and np.abs(x1 - x2).max() > 1e-3, "block 1 and block 2 gave the same states"
first = states("text,max_requests=1", 2, "text_first.npy")
np.testing.assert_allclose(first, x2[: first.shape[0]], rtol=0, atol=1e-5)

syn = states("synthetic:num=4,templates=1,fillers=1", 3, "syn.npy")
assert syn.shape[0] % 4 == 0, syn.shape
per = syn.reshape(4, syn.shape[0] // 4, 256)
for k in range(1, 4):
    assert np.array_equal(per[k], per[0]), f"copy {k} of the same prompt has other states"

capped = states(spec, 2, "capped.npy", "--max-tokens", "100")
assert capped.shape == (100, 256)
np.testing.assert_allclose(capped, x2[:100], rtol=0, atol=1e-5)

# Several workloads go into one file, one after another.
out = os.path.join(work, "both.npy")
run("states", spec, "synthetic:num=4,templates=1,fillers=1", "--layer", "3", "--out", out)
both = np.load(out)
x3 = states(spec, 3, "text_l3.npy")
assert both.shape[0] == x3.shape[0] + syn.shape[0], (both.shape, x3.shape, syn.shape)
np.testing.assert_allclose(both[: x3.shape[0]], x3, rtol=0, atol=1e-5)
np.testing.assert_allclose(both[x3.shape[0]:], syn, rtol=0, atol=1e-5)

bad = os.path.join(work, "bad.npy")
p = run("states", spec, "--layer", "10", "--out", bad, ok=False)
assert p.returncode != 0 and "--layer 10 is not below the model's 10 layers" in p.stderr, p.stderr
assert not os.path.exists(bad) and not os.path.exists(bad + ".tmp")
print(f"ok: {x2.shape[0]} rows of width 256, identical prompts identical, layer and cap respected")
