#!/usr/bin/env python3
"""`semskip run` under mpiexec, against single-process runs it must equal (label mpi).

usage: test_run_mpi.py CASE SEMSKIP SCRATCH MPIEXEC NUMPROC_FLAG [MPIEXEC_FLAG...]

CASE is one of:
  union        2 ranks × batch 1 with --cache-mode replicated (evicting) and sharded equal one
               process × batch 2 over the same requests: hits, insertions, skips, FLOPs
  ep           tiny-moe with --ep 2 on 2 ranks equals one process; hit tokens of target=mlp / routed
               stay out of the expert all-to-all; each rank holds only its experts
               (/per_rank weight_bytes against the bytes computed here from config.json);
               stopped on one rank and resumed, it equals the uninterrupted run
  determinism  3 ranks with --cache-mode local equal 3 single-process runs of the same shards
  sync         adversarial ranks (all hits, no hits, no tokens) under --sync global and
               batch:<f>: no deadlock, one decision per step on every rank for global
  failure      a refused config, a rank failing mid-run, rank 0 failing to write the report, a
               wrong world size for --ep, a rank killed by SIGKILL mid-run
               end the job promptly, non-zero, naming the rank, leaving no report or .tmp
  report       /per_rank, the reduced /summary and the root attributes of a 2-rank run
Each run's report is read back with h5py, an independent reader.
"""
import json
import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

case, semskip, scratch, mpiexec, np_flag = sys.argv[1:6]
mpi_flags = sys.argv[6:]
scratch = os.path.join(scratch, case)
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
env = dict(os.environ, OMP_NUM_THREADS="1")
source_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
tiny_moe = os.path.join(source_dir, "models", "tiny-moe")
failures = []

# Prompts of equal length (no padding in any batch), with shared prefixes so the caches hit.
PREFIX_WORKLOAD = "vllm-prefix-repetition,num=16,prefix_len=24,suffix_len=8,num_prefixes=3,output_len=0"


def check(cond, what):
    if not cond:
        failures.append(what)


def run(args, ranks=None, expect_ok=True, timeout=240, extra_env=None):
    cmd = [semskip, "run", *args]
    if ranks is not None:
        cmd = [mpiexec, np_flag, str(ranks), *mpi_flags, *cmd]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(env, **(extra_env or {})), cwd=scratch,
                       timeout=timeout)
    elapsed = time.monotonic() - t0
    out = p.stdout + p.stderr
    if expect_ok and p.returncode != 0:
        failures.append(f"{' '.join(cmd)}: exit {p.returncode}\n{out}")
    return p, out, elapsed


def table(path, name):
    with h5py.File(os.path.join(scratch, path), "r") as f:
        return f[name][()]


def text(col):
    return [c.decode() for c in col]


def by_policy(rows, policy):
    return rows[np.array(text(rows["policy"])) == policy]


def same(a, b, cols, what, tol=None):
    for c in cols:
        x, y = a[c], b[c]
        ok = np.allclose(x, y, rtol=tol, atol=1e-6) if tol else np.array_equal(x, y)
        check(ok, f"{what}: column {c} differs\n  {x}\n  {y}")


EXACT_SUMMARY = ["policy", "n_requests", "n_tokens", "flops_full", "flops_executed", "flops_overhead",
                 "cache_lookups", "cache_hits", "cache_insertions", "cache_size", "cache_vetoed"]
EXACT_LAYERS = ["policy", "layer", "n_block_run", "n_block_skip", "n_mlp_skip", "n_kv_propagated", "flops_full",
                "flops_executed"]
EXACT_REQUESTS = ["policy", "request_id", "n_tokens", "n_block_skips", "n_mlp_skips", "n_positions", "n_generated"]
CLOSE_REQUESTS = ["kl_sum", "nll_full_sum", "nll_sum"]


def requests_by_id(path):
    r = table(path, "/requests")
    return r[np.lexsort((r["request_id"], r["policy"]))]


def compare_with_union(single, dist, what, extra_summary=()):
    """A distributed run against one process over the union micro-batches: counts and FLOPs
    exactly; accuracy sums to float noise (batch 2 and batch 1 round differently)."""
    same(table(single, "/summary"), table(dist, "/summary"), EXACT_SUMMARY + list(extra_summary), what)
    same(table(single, "/per_layer"), table(dist, "/per_layer"), EXACT_LAYERS, what)
    ra, rb = requests_by_id(single), requests_by_id(dist)
    same(ra, rb, EXACT_REQUESTS, what)
    same(ra, rb, CLOSE_REQUESTS, what, tol=1e-3)


def case_union():
    policies = ["--policy", "none", "--policy", "residual:p=2,r=7,tau=0.9", "--policy",
                "residual:p=1,r=4,tau=0.8,target=mlp,k=2"]
    common = ["--workload", PREFIX_WORKLOAD, "--max-requests", "8", "--calib-requests", "2", "--max-new-tokens", "2",
              *policies]
    # Replicated with a small capacity: LRU evicts, and every replica must evict alike (the
    # plan cache's uses are one tick per request, in the union's request order).
    evicting = [*common, "--capacity", "40", "--policy", "plan:p=2,beta=0.3,tau=0.95,cap=2"]
    run([*evicting, "--batch", "2", "--report", "one_small.h5"])
    run([*evicting, "--batch", "1", "--cache-mode", "replicated", "--report", "rep.h5"], ranks=2)
    compare_with_union("one_small.h5", "rep.h5", "replicated", extra_summary=["cache_evictions"])
    s = table("rep.h5", "/summary")
    check(all(s["cache_evictions"][1:] > 0), f"replicated: the caches must evict in this test {s['cache_evictions']}")
    check(all(s["cache_hits"][1:] > 0), "replicated: the caches must hit in this test")
    # Sharded: equal while no shard evicts.
    large = [*common, "--capacity", "1000", "--policy", "plan:p=2,beta=0.3,tau=0.95"]
    run([*large, "--batch", "2", "--report", "one_large.h5"])
    run([*large, "--batch", "1", "--cache-mode", "sharded", "--report", "shard.h5"], ranks=2)
    compare_with_union("one_large.h5", "shard.h5", "sharded")
    pr = table("shard.h5", "/per_rank")
    resid = by_policy(pr, "residual:p=2,r=7,tau=0.9")
    check(resid["comm_alltoallv_sent_bytes"].min() > 0, "sharded: lookups must travel through all-to-alls")
    # The job's cache is the union of the shards: their sizes add up to one process's cache.
    sizes = table("one_large.h5", "/summary")["cache_size"]
    check(np.array_equal(table("shard.h5", "/summary")["cache_size"], sizes), "sharded: shard sizes add up")


def qwen2_moe_params(cfg, experts_held):
    """Parameters of a qwen2_moe model holding `experts_held` routed experts per MoE layer,
    from config.json's shapes (every layer MoE: decoder_sparse_step 1, no mlp_only_layers)."""
    d, v, heads, kv = cfg["hidden_size"], cfg["vocab_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = d // heads
    attention = d * d + d + 2 * (kv * head_dim * d + kv * head_dim) + d * d  # q, k, v with bias; o without
    norms = 2 * d
    router = cfg["num_experts"] * d
    shared = 3 * cfg["shared_expert_intermediate_size"] * d + d  # gate, up, down; its sigmoid gate [1, d]
    expert = 3 * cfg["moe_intermediate_size"] * d
    layer = attention + norms + router + shared + experts_held * expert
    head = 0 if cfg["tie_word_embeddings"] else v * d
    return v * d + cfg["num_hidden_layers"] * layer + d + head


def case_ep():
    policies = ["--policy", "none", "--policy", "residual:p=1,r=3,tau=0.9", "--policy",
                "residual:p=1,r=3,tau=0.9,target=mlp", "--policy", "residual:p=1,r=3,tau=0.9,target=routed",
                "--policy", "static:k=1"]
    common = ["--model", tiny_moe, "--workload", PREFIX_WORKLOAD, "--max-requests", "6", "--calib-requests", "2",
              "--cache-mode", "replicated", "--dtype", "fp32", *policies]
    run([*common, "--batch", "2", "--report", "one.h5"])
    run([*common, "--batch", "1", "--ep", "2", "--report", "ep2.h5"], ranks=2)
    compare_with_union("one.h5", "ep2.h5", "ep 2")
    with open(os.path.join(tiny_moe, "config.json")) as fh:
        cfg = json.load(fh)
    top_k = cfg["num_experts_per_tok"]
    check(cfg["decoder_sparse_step"] == 1 and not cfg["mlp_only_layers"] and cfg["num_experts"] % 2 == 0,
          "ep: the hand count below assumes every layer MoE and experts halving over 2 ranks")
    # Weight memory: one process holds every expert, each of the 2 ranks half of them (fp32).
    one_rank, two_ranks = table("one.h5", "/per_rank"), table("ep2.h5", "/per_rank")
    whole = 4 * qwen2_moe_params(cfg, cfg["num_experts"])
    half = 4 * qwen2_moe_params(cfg, cfg["num_experts"] // 2)
    check(np.all(one_rank["weight_bytes"] == whole), f"ep 1: weight_bytes {one_rank['weight_bytes']}, computed {whole}")
    check(np.all(two_ranks["weight_bytes"] == half), f"ep 2: weight_bytes {two_ranks['weight_bytes']}, computed {half}")
    check(half < whole, "ep 2 must hold fewer weight bytes a rank than one process")
    # The peak resident set holds at least the weights, and is one figure per rank.
    for name, rows in [("ep 1", one_rank), ("ep 2", two_ranks)]:
        check(np.all(rows["peak_rss_bytes"] >= rows["weight_bytes"]), f"{name}: peak_rss_bytes {rows['peak_rss_bytes']}"
              f" below the weights {rows['weight_bytes']}")
        for r in np.unique(rows["rank"]):
            check(len(np.unique(rows[rows["rank"] == r]["peak_rss_bytes"])) == 1,
                  f"{name}: rank {r}'s peak_rss_bytes differs between its rows")
    # Stopped on rank 1 after step 1 and resumed: the sharded ranks continue from their saved
    # state (calibration agreed again, collectively) to the uninterrupted run's results.
    p, out, _ = run([*common, "--batch", "1", "--ep", "2", "--report", "ep2_resumed.h5", "--checkpoint-every", "0"],
                    ranks=2, expect_ok=False, extra_env={"SEMSKIP_TEST_SIGNAL_AT_STEP": "1@1"})
    check(p.returncode == 75, f"ep 2 stopped after step 1: exit {p.returncode}\n{out}")
    run(["--resume", "ep2_resumed.h5"], ranks=2)
    ra, rb = requests_by_id("ep2.h5"), requests_by_id("ep2_resumed.h5")
    same(ra, rb, EXACT_REQUESTS + CLOSE_REQUESTS + ["step", "rank"], "ep 2 resumed")
    check(np.all(table("ep2_resumed.h5", "/per_rank")["weight_bytes"] == half), "ep 2 resumed: weight_bytes")
    layers, pr = table("ep2.h5", "/per_layer"), table("ep2.h5", "/per_rank")
    for policy in ["none", "residual:p=1,r=3,tau=0.9,target=mlp", "residual:p=1,r=3,tau=0.9,target=routed",
                   "static:k=1"]:
        pl, rk = by_policy(layers, policy), by_policy(pr, policy)
        # Every (token, expert) pair that entered the all-to-all belongs to a token that ran the
        # MLP's routed experts: MLP-skip and routed-skip hits and skipped blocks never enter it.
        routed = top_k * int((pl["n_block_run"] - pl["n_mlp_skip"]).sum())
        check(int(rk["ep_n_pairs_routed"].sum()) == routed,
              f"ep {policy}: {rk['ep_n_pairs_routed'].sum()} pairs routed, {routed} tokens·top_k ran the MoE")
        check(int(rk["ep_n_pairs_run"].sum()) == routed, f"ep {policy}: pairs run != pairs routed")
        check(rk["ep_n_pairs_sent"].min() > 0, f"ep {policy}: experts on the other rank must be used")
    hits = by_policy(layers, "residual:p=1,r=3,tau=0.9,target=mlp")["n_mlp_skip"].sum()
    check(hits > 0, "ep: the target=mlp policy must hit in this test")
    hits = by_policy(layers, "residual:p=1,r=3,tau=0.9,target=routed")["n_mlp_skip"].sum()
    check(hits > 0, "ep: the target=routed policy must hit in this test")
    # static skips one layer on every rank: its all-to-alls are left out by all ranks together.
    calls = by_policy(pr, "static:k=1")["ep_n_calls"]
    none_calls = by_policy(pr, "none")["ep_n_calls"]
    check(np.array_equal(calls * 6, none_calls * 5), f"ep static:k=1: {calls} MoE calls, none {none_calls}")


def case_determinism():
    policies = ["--policy", "residual:p=2,r=7,tau=0.9", "--policy", "plan:p=2,beta=0.3,tau=0.9",
                "--policy", "random:rate=0.2", "--policy", "static:k=1"]
    common = ["--workload", PREFIX_WORKLOAD, "--max-requests", "10", "--calib-requests", "2", "--batch", "2",
              "--max-new-tokens", "2", "--shard", "balanced", "--seed", "5", *policies]
    run([*common, "--cache-mode", "local", "--report", "n3.h5"], ranks=3)
    req, steps = table("n3.h5", "/requests"), table("n3.h5", "/steps")
    ints = ["request_id", "step", "n_tokens", "n_block_skips", "n_mlp_skips", "n_positions", "n_top1_match",
            "n_targets", "n_generated", "gen_matched_prefix", "gen_exact_match"]
    floats = ["kl_sum", "nll_full_sum", "nll_sum"]
    step_cols = ["step", "n_requests", "n_tokens", "flops_full", "flops_executed", "flops_overhead", "cache_lookups",
                 "cache_hits"]
    seen = 0
    for i in range(3):
        run([*common, "--shard-of", "3", "--shard-index", str(i), "--report", f"one{i}.h5"])
        mine = req[req["rank"] == i]
        one = table(f"one{i}.h5", "/requests")
        check(len(mine) == len(one) and len(one) > 0, f"shard {i}: {len(mine)} requests on the rank, {len(one)} alone")
        if len(mine) == len(one):
            same(mine, one, ints + floats + ["policy"], f"determinism shard {i}")
        seen += len(one)
        ms = steps[(steps["rank"] == i) & (steps["n_requests"] > 0)]
        same(ms, table(f"one{i}.h5", "/steps"), step_cols + ["policy"], f"determinism steps of shard {i}")
    check(seen == len(req), f"the shards cover {seen} rows, the 3-rank run has {len(req)}")
    check(table("n3.h5", "/summary")["cache_hits"][0] > 0, "determinism: the residual cache must hit")


ADVERSARIAL = [
    "the cat sat on the mat and looked at the door",  # rank 0: the same prompt three times: hits
    "the cat sat on the mat and looked at the door",
    "the cat sat on the mat and looked at the door",
    "quantum lattice gauge theory predicts confinement",  # rank 1: unrelated prompts: misses
    "seventeen purple xylophones marched through Oslo",
    "a bright orange hedgehog solved the crossword",
    "hello",  # rank 2: one short request, then no tokens at all
]


def case_sync():
    path = os.path.join(scratch, "adversarial.jsonl")
    with open(path, "w") as fh:
        for p in ADVERSARIAL:
            fh.write(json.dumps({"prompt": p}) + "\n")
    # Contiguous over 3 ranks: 3, 3 and 1 request; with batch 1 rank 2 is idle after step 0.
    common = ["--model", tiny_moe, "--workload", f"jsonl:{path}", "--calib-requests", "0", "--shard", "contiguous",
              "--ep", "3", "--policy", "residual:p=1,r=3,tau=0.95", "--policy",
              "residual:p=1,r=2,tau=0.95,target=mlp", "--policy", "plan:p=1,beta=0.3,tau=0.95"]
    for mode in ["local", "sharded"]:
        name = f"global_{mode}.h5"
        run([*common, "--sync", "global", "--cache-mode", mode, "--report", name], ranks=3, timeout=120)
        st = table(name, "/steps")
        applied = refused = 0
        for policy in set(text(st["policy"])):
            ps = by_policy(st, policy)
            for step in np.unique(ps["step"]):
                s = ps[ps["step"] == step]
                # One decision per step for the whole job: hits somewhere means no rank refused.
                if s["cache_hits"].sum() > 0:
                    applied += 1
                    check(s["cache_vetoed"].sum() == 0, f"global {mode} {policy} step {step}: applied and refused")
                if s["cache_vetoed"].sum() > 0:
                    refused += 1
                    check(s["cache_hits"].sum() == 0, f"global {mode} {policy} step {step}: refused and applied")
        check(applied > 0 and refused > 0, f"global {mode}: the data must make both decisions ({applied}, {refused})")
    # Decode steps too (each its own decision), with the replicated cache: it must not hang.
    run([*common, "--sync", "global:0.3", "--cache-mode", "replicated", "--max-new-tokens", "3", "--report",
         "global_decode.h5"], ranks=3, timeout=120)
    # batch:<f>: each rank's micro-batch decides alone, by its own hits.
    run([*common, "--sync", "batch:0.5", "--cache-mode", "local", "--report", "batch.h5"], ranks=3, timeout=120)
    st = table("batch.h5", "/steps")
    for s in st:
        if s["cache_hits"] > 0:
            check(s["cache_vetoed"] == 0 and s["cache_hits"] >= 0.5 * s["cache_lookups"], f"batch:0.5 row {s}")
        if s["cache_vetoed"] > 0:
            check(s["cache_hits"] == 0 and s["cache_vetoed"] < 0.5 * s["cache_lookups"], f"batch:0.5 row {s}")
    check(st["cache_hits"].sum() > 0, "batch:0.5: rank 0's repeated prompt must hit")


def case_failure():
    # A refused configuration: decided on rank 0, every rank fails with it.
    p, out, elapsed = run(["--policy", "magic", "--report", "bad.h5"], ranks=2, expect_ok=False, timeout=60)
    check(p.returncode != 0, "a refused configuration must fail the job")
    check("unknown policy 'magic'" in out and "rank 0 refused the configuration" in out, f"refusal message:\n{out}")
    check(elapsed < 20, f"the refused job took {elapsed:.1f} s")
    # A rank failing mid-run: request 3 (empty prompt) falls in rank 1's shard, in its second
    # step, while rank 0 waits for it in a collective.
    path = os.path.join(scratch, "empty_prompt.jsonl")
    with open(path, "w") as fh:
        for prompt in ["one two three four", "five six seven eight", "nine ten eleven", "", "twelve", "thirteen"]:
            fh.write(json.dumps({"prompt": prompt}) + "\n")
    p, out, elapsed = run(["--workload", f"jsonl:{path}", "--calib-requests", "0", "--cache-mode", "replicated",
                           "--policy", "residual:p=1,r=3,tau=0.9", "--report", "bad.h5"], ranks=2, expect_ok=False,
                          timeout=60)
    check(p.returncode != 0, "a rank failing mid-run must fail the job")
    check("rank 1/2" in out and "empty prompt" in out, f"mid-run failure message:\n{out}")
    check(elapsed < 20, f"the failing job took {elapsed:.1f} s")
    check(not os.path.exists(os.path.join(scratch, "bad.h5")), "a failed run left a report")
    check(not os.path.exists(os.path.join(scratch, "bad.h5.tmp")), "a failed run left a temporary report")
    # A report path that cannot be written is refused by rank 0 before any work, and the job
    # ends on every rank (as root, permissions stop nothing, so the paths themselves are
    # impossible): (a) the report's directory is a regular file; (b) the report path is a
    # directory. Nothing is created, nothing in the way is changed, no result is printed.
    small = ["--workload", PREFIX_WORKLOAD, "--max-requests", "2", "--calib-requests", "0", "--policy", "none"]
    blocker = os.path.join(scratch, "not_a_dir")
    with open(blocker, "w") as fh:
        fh.write("a regular file\n")
    p, out, elapsed = run([*small, "--report", "not_a_dir/run.h5"], ranks=2, expect_ok=False, timeout=60)
    check(p.returncode != 0, "a report that cannot be created must fail the job")
    check("rank 0/2" in out and "report 'not_a_dir/run.h5'" in out and "is not a folder" in out,
          f"report creation failure message:\n{out}")
    check("ppl" not in p.stdout and "report written" not in out, f"the run must not have started:\n{out}")
    check(elapsed < 20, f"the job refusing its report took {elapsed:.1f} s")
    with open(blocker) as fh:
        check(fh.read() == "a regular file\n", "the file in the report's way was changed")
    target = os.path.join(scratch, "dir.h5")
    os.makedirs(target)
    p, out, elapsed = run([*small, "--report", "dir.h5"], ranks=2, expect_ok=False, timeout=60)
    check(p.returncode != 0, "a report path that is a directory must fail the job")
    check("rank 0/2" in out and "report 'dir.h5'" in out and "is a directory" in out,
          f"report directory failure message:\n{out}")
    check("ppl" not in p.stdout, f"the run must not have started:\n{out}")
    check(elapsed < 20, f"the job refusing its report took {elapsed:.1f} s")
    check(os.path.isdir(target) and os.listdir(target) == [], "the directory in the report's way was changed")
    check(not os.path.exists(target + ".tmp"), "a refused report left a temporary file")
    # A wrong world size for expert parallelism: refused by rank 0 before any work, on every rank.
    p, out, elapsed = run(["--model", tiny_moe, "--ep", "3", "--max-requests", "4", "--calib-requests", "0",
                           "--policy", "none", "--report", "ep3.h5"], ranks=2, expect_ok=False, timeout=60)
    check(p.returncode != 0, "--ep 3 on 2 ranks must fail the job")
    check("--ep 3 needs a multiple of 3 ranks" in out and "this run has 2" in out and "rank 1/2" in out,
          f"--ep world size message:\n{out}")
    check(elapsed < 20, f"the job refusing --ep 3 took {elapsed:.1f} s")
    check(not os.path.exists(os.path.join(scratch, "ep3.h5")), "a refused --ep run left a report")
    # A rank killed by a signal mid-run (SIGKILL: nothing can be caught): rank 1 kills itself a
    # few seconds into a run that takes longer; the job must end within seconds of that with the
    # rank named, and no report (or temporary one) may be left. Periodic checkpoints are off
    # (--checkpoint-every 0): one taken before the kill would rightly leave a partial report
    # to resume from, and how many steps fit in the first seconds depends on the machine.
    killer = ('if [ "${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}" = 1 ]; then (sleep 4; kill -9 $$) & fi; '
              'exec "$@"')
    cmd = [mpiexec, np_flag, "2", *mpi_flags, "sh", "-c", killer, "sh", semskip, "run", "--max-requests", "80",
           "--calib-requests", "0", "--policy", "none", "--policy", "random:rate=0.2", "--report", "killed.h5",
           "--checkpoint-every", "0"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=scratch, timeout=120)
    elapsed = time.monotonic() - t0
    out = p.stdout + p.stderr
    check(p.returncode != 0, f"a job with a killed rank must fail:\n{out}")
    check("rank 1" in out and ("signal 9" in out or "Killed" in out), f"killed rank message:\n{out}")
    check(elapsed < 4 + 30, f"the job with a killed rank took {elapsed:.1f} s to end")
    check("report written" not in out, f"a job with a killed rank reported success:\n{out}")
    check(not os.path.exists(os.path.join(scratch, "killed.h5")), "a job with a killed rank left a report")
    check(not os.path.exists(os.path.join(scratch, "killed.h5.tmp")), "a job with a killed rank left a temporary report")


def case_report():
    policies = ["--policy", "none", "--policy", "residual:p=2,r=7,tau=0.9"]
    args = ["--workload", PREFIX_WORKLOAD, "--max-requests", "5", "--calib-requests", "0", *policies]
    for mode in ["local", "replicated"]:
        name = f"{mode}.h5"
        run([*args, "--cache-mode", mode, "--report", name], ranks=2)
        with h5py.File(os.path.join(scratch, name), "r") as f:
            check(f.attrs["world_size"] == 2, "root attribute world_size")
            check(len(json.loads(f.attrs["hosts"])) == 2, "root attribute hosts: one per rank")
            check(f.attrs["cache_mode"] == mode, "root attribute cache_mode")
            check(json.loads(f.attrs["config_json"])["cache_mode"] == mode, "resolved config")
            s, pr, st, rq = f["/summary"][()], f["/per_rank"][()], f["/steps"][()], f["/requests"][()]
        check(len(pr) == 4 and list(pr["rank"]) == [0, 1, 0, 1], f"{mode}: /per_rank rows {pr['rank']}")
        check(list(pr["n_requests"][:2]) == [3, 2], f"{mode}: round robin gives 3 and 2 requests")
        check(sorted(set(rq["rank"])) == [0, 1] and len(rq) == 10, f"{mode}: /requests of both ranks")
        check(len(st) == 2 * 3 * 2, f"{mode}: /steps has (policy, step, rank) rows: {len(st)}")
        for i, policy in enumerate(text(s["policy"])):
            rk = by_policy(pr, policy)
            for col in ["n_tokens", "flops_full", "flops_executed", "flops_overhead", "cache_lookups", "cache_hits"]:
                check(s[col][i] == rk[col].sum(), f"{mode} {policy}: /summary {col} is not the sum over ranks")
            check(abs(s["t_skip_s"][i] - rk["t_skip_ns"].max() * 1e-9) < 1e-9, f"{mode}: t_skip_s is the slowest rank's")
            check(abs(s["t_skip_s_mean"][i] - rk["t_skip_ns"].mean() * 1e-9) < 1e-9, f"{mode}: t_skip_s_mean")
            check(all(rk["t_compute_ns"] == rk["t_skip_ns"] - rk["t_lookup_ns"] - rk["t_comm_ns"]), "t_compute_ns")
        none, resid = by_policy(pr, "none"), by_policy(pr, "residual:p=2,r=7,tau=0.9")
        check(none["comm_allgatherv_sent_bytes"].sum() == 0, f"{mode}: the full model alone communicates nothing")
        if mode == "local":
            check(resid["comm_allgatherv_sent_bytes"].sum() == 0, "local: the cache communicates nothing")
        else:
            check(resid["comm_allgatherv_sent_bytes"].min() > 0, "replicated: new entries are all-gathered")
            # One logical cache: the summary's size is a replica's, not the sum of replicas.
            check(s["cache_size"][1] == resid["cache_size"][0] == resid["cache_size"][1], "replicated cache size")


CASES = {"union": case_union, "ep": case_ep, "determinism": case_determinism, "sync": case_sync,
         "failure": case_failure, "report": case_report}
CASES[case]()
if failures:
    print("\n".join(failures))
    print(f"{case}: {len(failures)} failed")
    sys.exit(1)
print(f"{case}: passed")
