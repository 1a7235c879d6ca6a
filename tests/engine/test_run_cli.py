#!/usr/bin/env python3
"""`semskip run` end to end: the report read back with h5py, TOML configs, --config-from a
report, --json, canonical policy descriptors, --help's defaults, refusals.

usage: test_run_cli.py SEMSKIP_BINARY SCRATCH_DIR
"""
import json
import os
import re
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
# An existing report is kept unless --force; --metadata lands in the root attribute user_metadata.
before = open(report, "rb").read()
run("--max-requests", "3", "--calib-requests", "2", "--policy", "none", "--report", report, expect_ok=False,
    pattern="a file of that name exists; pass --force")
check(open(report, "rb").read() == before, "a refused run changed the existing report")
run("--max-requests", "3", "--calib-requests", "2", "--policy", "none", "--report", report, "--force",
    "--metadata", "study=frontier", "--metadata", "node=a1")
with h5py.File(report, "r") as f:
    meta = json.loads(f.attrs["user_metadata"])
    check(meta == {"study": "frontier", "node": "a1"}, f"user_metadata {meta}")
    check(f.attrs["status"] == "complete", f"status {f.attrs['status']}")
run("--max-requests", "3", "--calib-requests", "2", "--policy", "none", "--report", report, "--force",
    "--metadata", "novalue", expect_ok=False, pattern="novalue")
run("--max-requests", "3", "--calib-requests", "2", "--policy", "none", "--policy", "static:k=1",
    "--policy", "residual:p=2,r=7,tau=0.9", "--report", report, "--force")
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
    # The cache policy pays for lookups (checked by hand in the FLOPs run below).
    check(resid["cache_lookups"] == resid["n_tokens"], "one lookup per token")
    check(resid["flops_overhead"] > 0, "lookups are charged")
    check(0 <= resid["top1_agreement_lo"] <= resid["top1_agreement"] <= resid["top1_agreement_hi"] <= 1, "interval")
    req = f["/requests"][:]
    check(len(req) == 9, f"{len(req)} request rows")
    cfg = json.loads(f.attrs["config_json"])
    check(cfg["max_requests"] == 3 and cfg["policies"][2] == "residual:p=2,r=7,tau=0.9", "resolved config")
    check(f.attrs["command"] == "run", "command attribute")

# Permuted keys and other number spellings of one descriptor: the same canonical row, with the
# same FLOPs and accuracy as the run above; --json prints the table as JSON.
MEASURED = ["n_requests", "n_tokens", "flops_full", "flops_executed", "flops_overhead", "flops_saved_gross",
            "flops_saved_net", "top1_agreement", "top1_agreement_lo", "top1_agreement_hi", "kl", "ppl_full",
            "ppl", "cache_lookups", "cache_hits", "cache_size"]


def measured_rows(path):
    with h5py.File(path, "r") as f:
        s = f["/summary"][:]
        return [(r["policy"].decode(), r["index"].decode(), *[r[k].item() for k in MEASURED]) for r in s]


perm = os.path.join(scratch, "perm.h5")
p = run("--max-requests", "3", "--calib-requests", "2", "--policy", "none", "--policy", "static:k=01",
        "--policy", "residual:tau=0.90,r=7,p=2", "--report", perm, "--json")
check(measured_rows(perm) == measured_rows(report),
      f"permuted descriptors gave other rows:\n{measured_rows(perm)}\n{measured_rows(report)}")
try:
    rows = json.loads(p.stdout)
except ValueError:
    rows = None
    failures.append(f"--json printed no JSON:\n{p.stdout}")
if rows is not None:
    with h5py.File(perm, "r") as f:
        s = f["/summary"][:]
    check([r["policy"] for r in rows] == ["none", "static:k=1", "residual:p=2,r=7,tau=0.9"], f"--json rows {rows}")
    check(set(rows[0]) == {"policy", "index", "hit_rate", "saved_gross", "saved_net", "top1_agree", "top1_agree_lo",
                           "top1_agree_hi", "kl", "ppl_full", "ppl"}, f"--json fields {sorted(rows[0])}")
    check(rows[0]["index"] is None and rows[0]["hit_rate"] is None and rows[2]["index"] == "torch:flat",
          "--json: null where the table prints '-'")
    for r, h in zip(rows, s):
        check(r["saved_net"] == h["flops_saved_net"] and r["saved_gross"] == h["flops_saved_gross"]
              and r["top1_agree"] == h["top1_agreement"] and r["kl"] == h["kl"] and r["ppl"] == h["ppl"]
              and r["ppl_full"] == h["ppl_full"], f"--json row {r} differs from the report's {h}")
    check(rows[2]["hit_rate"] == s[2]["cache_hits"] / s[2]["cache_lookups"], "--json hit rate")

# --config-from: a report's config_json reruns the same configuration; the command line wins.
again = os.path.join(scratch, "again.h5")
run("--config-from", perm, "--report", again)
with h5py.File(perm, "r") as f, h5py.File(again, "r") as g:
    c1, c2 = json.loads(f.attrs["config_json"]), json.loads(g.attrs["config_json"])
    check(c1["policies"] == ["none", "static:k=1", "residual:p=2,r=7,tau=0.9"], f"canonical policies {c1['policies']}")
    check(c1["report"] == perm and c2["report"] == again, "report paths")
    c1.pop("report"), c2.pop("report")
    check(c1 == c2, f"--config-from changed the configuration:\n{c1}\n{c2}")
check(measured_rows(again) == measured_rows(perm), "--config-from gave other /summary rows")
run("--config-from", perm, "--max-requests", "1", "--policy", "none", "--report", "over.h5")
with h5py.File(os.path.join(scratch, "over.h5"), "r") as f:
    cfg = json.loads(f.attrs["config_json"])
    check(cfg["max_requests"] == 1 and cfg["policies"] == ["none"] and cfg["calib_requests"] == 2,
          f"the command line over --config-from: {cfg}")
run("--config-from", os.path.join(scratch, "missing.h5"), "--report", "bad.h5", expect_ok=False,
    pattern="missing.h5")

# --help shows every default (values written here, independently of the program), and its
# options are exactly config_json's keys (policies and indexes: --policy and --index; plus
# --config, --config-from, --help).
h = subprocess.run([semskip, "run", "--help"], capture_output=True, text=True, env=env).stdout
DEFAULTS = {"--dtype": "fp32", "--device": "cpu", "--chunk": "128", "--max-requests": "40", "--calib-requests": "8",
            "--batch": "1", "--max-new-tokens": "0", "--index": "torch:flat", "--capacity": "4096",
            "--bootstrap": "1000", "--seed": "0", "--threads": "0", "--report": "semskip-run.h5",
            "--cache-mode": "local", "--sync": "token", "--ep": "1", "--shard": "round-robin", "--shard-of": "0",
            "--shard-index": "0", "--policy": "static:k=1 random:rate=0.1 residual:p=2,r=7,tau=0.95 "
                                              "residual:p=2,r=8,tau=0.98,target=mlp,proj=pca,kdim=64,cap=8192"}
for flag, d in DEFAULTS.items():  # CLI11 writes "--chunk INT=128" (older versions "[128]")
    shown = [line for line in h.splitlines() if line.strip().startswith(flag + " ")]
    check(len(shown) == 1 and re.search(rf"^\s*{flag} \S+(={re.escape(d)}( |$)| .*\[{re.escape(d)}\])", shown[0]),
          f"--help does not show {flag}'s default {d}: {shown}")
flags = {f for line in h.splitlines() for w in line.split()[:1] for f in w.split(",") if f.startswith("--")}
FLAG = {"policies": "--policy", "indexes": "--index"}
want = {FLAG.get(k, "--" + k.replace("_", "-")) for k in c2} | {"--report", "--config", "--config-from", "--help", "--metadata", "--force",
                                                         "--resume", "--checkpoint-every", "--quiet"}
check(flags == want, f"--help options {sorted(flags ^ want)} differ from config_json's keys")

# FLOPs by hand from models/tiny-dense/config.json: hidden 256, intermediate 704, 4 heads of
# 64, 2 KV heads, 10 layers, vocabulary 4096 (tied head); q/k/v biases are free (bias adds are
# not counted). Causal convention: the token at position i of a request attends to i + 1 keys.
D, I, H, HKV, HD, NL, V = 256, 704, 4, 2, 64, 10, 4096
BLOCK_PER_TOKEN = 2 * D * H * HD + 2 * (2 * D * HKV * HD) + 2 * H * HD * D + 3 * (2 * D * I)  # 1474560
ATTN_PER_PAIR = 2 * (2 * HD) * H  # QKᵀ and AV, all heads: 1024
KV_PROPAGATE_PER_TOKEN = 2 * (2 * D * HKV * HD)  # K and V of one skipped token: 131072
LM_HEAD_PER_TOKEN = 2 * D * V
ROTARY_PER_POSITION = 2 * (HD // 2)  # the inverse-frequency × position product, per forward position


def layer_flops(n):
    """One decoder layer over a request of n tokens (teacher-forced, batch 1)."""
    return n * BLOCK_PER_TOKEN + ATTN_PER_PAIR * n * (n + 1) // 2


def rows_of(table, policy):
    return table[[p.decode() == policy for p in table["policy"]]]


def lookup_and_kv_overhead(steps, layers):
    """Overhead of a residual policy without key projection: an exact flat lookup costs 2·d·N
    per query, N the entries held when the step looks up (all of a step's lookups happen before
    its misses are inserted), plus the K/V of every propagated token."""
    lookup, prev_size = 0, 0
    for st in sorted(steps, key=lambda r: r["step"]):
        lookup += int(st["cache_lookups"]) * 2 * D * prev_size
        prev_size = int(st["cache_size"])
    return lookup + int(layers["n_kv_propagated"].sum()) * KV_PROPAGATE_PER_TOKEN


RES = "residual:p=2,r=7,tau=0.9"
run("--max-requests", "3", "--calib-requests", "0", "--policy", "none", "--policy", "static:layers=5+7",
    "--policy", RES, "--policy", RES + ",kv=mask", "--report", "flops.h5")
with h5py.File(os.path.join(scratch, "flops.h5"), "r") as f:
    s, layers, steps, req = f["/summary"][:], f["/per_layer"][:], f["/steps"][:], f["/requests"][:]
    byp = {p.decode(): row for p, row in zip(s["policy"], s)}
    ns = [int(n) for n in rows_of(req, "none")["n_tokens"]]
    check(len(ns) == 3 and sum(ns) == byp["none"]["n_tokens"], f"request lengths {ns}")
    per_layer = sum(layer_flops(n) for n in ns)
    full = sum(NL * layer_flops(n) + n * LM_HEAD_PER_TOKEN + n * ROTARY_PER_POSITION for n in ns)
    for p, row in byp.items():
        check(row["flops_full"] == full, f"{p}: flops_full {row['flops_full']} != {full} by hand")
        check(all(rows_of(layers, p)["flops_full"] == per_layer), f"{p}: per-layer full FLOPs")
    none = byp["none"]
    check(none["flops_executed"] == full and none["flops_overhead"] == 0, "none executes exactly the full FLOPs")
    check(none["flops_saved_net"] == 0.0 and none["flops_saved_gross"] == 0.0, "none saves nothing")
    st = byp["static:layers=5+7"]
    check(full - st["flops_executed"] == 2 * per_layer,
          f"static:layers=5+7 saved {full - st['flops_executed']} != 2 blocks {2 * per_layer}")
    check(st["flops_overhead"] == 0, "static: no overhead (no one attends to a layer every token skips)")
    check(abs(st["flops_saved_net"] - 2 * per_layer / full) < 1e-12 and st["flops_saved_net"] == st["flops_saved_gross"],
          f"static:layers=5+7 net {st['flops_saved_net']} != {2 * per_layer / full}")
    sl = rows_of(layers, "static:layers=5+7")
    check(list(sl["n_block_run"][[5, 7]]) == [0, 0] and list(sl["n_block_skip"][[5, 7]]) == [sum(ns)] * 2,
          "static skips layers 5 and 7 for every token")
    for p in (RES, RES + ",kv=mask"):
        row, lay, stp = byp[p], rows_of(layers, p), rows_of(steps, p)
        over = lookup_and_kv_overhead(stp, lay)
        check(row["flops_overhead"] == over, f"{p}: overhead {row['flops_overhead']} != {over} by hand")
        net = 1 - (row["flops_executed"] + over) / full
        check(abs(row["flops_saved_net"] - net) < 1e-12, f"{p}: net {row['flops_saved_net']} != {net}")
        # /per_layer means what /summary means: the model's own operations (the summary adds those
        # outside the decoder layers, the same as the full model's), overheads apart.
        outside = full - int(lay["flops_full"].sum())
        check(int(lay["flops_executed"].sum()) + outside == row["flops_executed"],
              f"{p}: per-layer executed {lay['flops_executed'].sum()} + {outside} != {row['flops_executed']}")
        check(int(lay["flops_overhead"].sum()) == row["flops_overhead"], f"{p}: per-layer overhead")
        check(row["flops_insert"] == 0 and row["flops_train"] == 0 and row["flops_correction"] == 0, f"{p}: a flat index without PCA charges none")
        check(row["cache_hits"] > 0, f"{p}: no hits, the comparison would be vacuous")
        skipped = lay["n_block_skip"]
        check(all(skipped[3:8] == row["cache_hits"]) and skipped[:3].sum() + skipped[8:].sum() == 0,
              f"{p}: hits skip blocks 3..7: {skipped}")
    prop_l, mask_l = rows_of(layers, RES), rows_of(layers, RES + ",kv=mask")
    check(all(prop_l["n_kv_propagated"] == prop_l["n_block_skip"]), "kv=propagate computes the K/V of every skip")
    check(mask_l["n_kv_propagated"].sum() == 0, "kv=mask charges no K/V propagation")
    mstp = rows_of(steps, RES + ",kv=mask")
    prev = 0
    for stx in mstp:  # without propagation each step's overhead is its lookups alone
        check(stx["flops_overhead"] == stx["cache_lookups"] * 2 * D * prev, f"kv=mask step {stx['step']} overhead")
        prev = stx["cache_size"]
    # Same lookups and the same first request (an empty cache: all misses, the full model); after
    # that hidden tokens change what later tokens see.
    rp, rm = rows_of(req, RES), rows_of(req, RES + ",kv=mask")
    check(rp["kl_sum"][0] == 0 and rm["kl_sum"][0] == 0, "the first request runs the full model")
    check(byp[RES]["cache_lookups"] == byp[RES + ",kv=mask"]["cache_lookups"] == sum(ns), "one lookup per token")
    check(abs(byp[RES]["kl"] - byp[RES + ",kv=mask"]["kl"]) > 1e-9, "kv=mask and kv=propagate gave the same outputs")

# Bounded caches evict: FIFO and LFU through the run, the counts in the report by hand.
for ev in ("fifo", "lfu"):
    p = f"{RES},cap=200,evict={ev}"
    run("--max-requests", "4", "--calib-requests", "0", "--policy", p, "--report", f"evict-{ev}.h5")
    with h5py.File(os.path.join(scratch, f"evict-{ev}.h5"), "r") as f:
        row, rank, stp, lay = f["/summary"][0], f["/per_rank"][0], f["/steps"][:], f["/per_layer"][:]
        check(row["policy"].decode() == p, f"policy {row['policy']}")
        check(row["cache_capacity"] == 200 and row["cache_size"] == 200, f"{ev}: size {row['cache_size']} of 200")
        check(row["cache_evictions"] == row["cache_insertions"] - row["cache_size"] and row["cache_evictions"] > 0,
              f"{ev}: evictions {row['cache_evictions']} != insertions {row['cache_insertions']} − size")
        # Every miss is offered: it is inserted, or rejected when one step brings more than the cache holds.
        check(rank["cache_lookups"] - rank["cache_hits"] == rank["cache_insertions"] + rank["cache_rejected"],
              f"{ev}: misses != insertions + rejected")
        sizes = [int(r["cache_size"]) for r in sorted(stp, key=lambda r: r["step"])]
        check(sizes == sorted(sizes) and max(sizes) == 200, f"{ev}: sizes over time {sizes}")
        check(row["flops_overhead"] == lookup_and_kv_overhead(stp, lay), f"{ev}: overhead by hand")

# TOML: its values apply, the command line wins.
toml = os.path.join(scratch, "run.toml")
with open(toml, "w") as fh:
    fh.write('policy = ["none", "static:layers=3"]\nmax-requests = 2\ncalib-requests = 0\nreport = "t.h5"\n')
run("--config", toml, "--max-requests", "1")
with h5py.File(os.path.join(scratch, "t.h5"), "r") as f:
    s = f["/summary"][:]
    check([p.decode() for p in s["policy"]] == ["none", "static:layers=3"], "policies from TOML")
    check(all(s["n_requests"] == 1), "--max-requests on the command line wins over TOML")
    cfg = json.loads(f.attrs["config_json"])
    check(cfg["max_requests"] == 1 and cfg["calib_requests"] == 0 and cfg["report"] == "t.h5",
          f"command line over TOML over defaults: {cfg}")
    check(cfg["chunk"] == 128 and cfg["batch"] == 1 and cfg["capacity"] == 4096 and cfg["indexes"] == ["torch:flat"],
          f"defaults of options given nowhere: {cfg}")
# Keys may spell '-' as '_' and name the lists as config_json does (policies, indexes).
with open(os.path.join(scratch, "snake.toml"), "w") as fh:
    fh.write('policies = ["none"]\nmax_requests = 1\ncalib_requests = 0\nreport = "snake.h5"\n')
run("--config", os.path.join(scratch, "snake.toml"))
with h5py.File(os.path.join(scratch, "snake.h5"), "r") as f:
    cfg = json.loads(f.attrs["config_json"])
    check(cfg["max_requests"] == 1 and cfg["policies"] == ["none"], f"TOML keys max_requests, policies: {cfg}")
# A list option on the command line replaces the TOML list, it does not extend it.
run("--config", toml, "--policy", "static:layers=4", "--report", "t2.h5")
with h5py.File(os.path.join(scratch, "t2.h5"), "r") as f:
    check([p.decode() for p in f["/summary"]["policy"]] == ["static:layers=4"], "--policy replaces the TOML list")
    check(json.loads(f.attrs["config_json"])["max_requests"] == 2, "TOML max-requests applies when not given")

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
with open(os.path.join(scratch, "arr.toml"), "w") as fh:
    fh.write("max-requests = [1, 2]\n")
run("--config", os.path.join(scratch, "arr.toml"), "--report", "bad.h5", expect_ok=False,
    pattern="key 'max-requests' takes one value, not an array")
run("--batch", "0", "--report", "bad.h5", expect_ok=False, pattern="--batch must be ≥ 1, got 0")
run("--shard-index", "1", "--report", "bad.h5", expect_ok=False, pattern="--shard-index needs --shard-of")
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
