#!/usr/bin/env python3
"""`semskip serve-bench` end to end on the embedded tiny-dense model: the result JSON and the
HDF5 report read back and checked against each other and against vLLM's definitions.

usage: bench_e2e.py SEMSKIP_BINARY SCRATCH_DIR [MPIEXEC NP_FLAG [MPIEXEC_FLAGS...]]

Without MPIEXEC one process serves 12 requests (Poisson arrivals at 50 req/s) with policies
none and static:layers=1; checked: every request completes, policy none's exact match against
itself is 1.0, the JSON's totals, throughputs and means equal what its own per-request lists
(--save-detailed) give, the report's /requests hold the same TTFTs, /steps' token counts add
up to the prompts and outputs served, the static policy skips its layer for every computed
token, and no temporary file is left. With MPIEXEC the same run under 2 ranks: both ranks
serve, every request completes once, and policy none's outputs equal the single-process run's
(greedy decoding of the same prompts).
"""
import json
import math
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

semskip, scratch = sys.argv[1], sys.argv[2]
mpiexec = sys.argv[3:]
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
failures = []
N = 12


def check(cond, what):
    if not cond:
        failures.append(what)


def serve(tag, launcher=()):
    result = os.path.join(scratch, f"{tag}.json")
    report = os.path.join(scratch, f"{tag}.h5")
    cmd = list(launcher) + [semskip, "serve-bench", "--workload", "vllm-random:num=12,input_len=24,output_len=6,range_ratio=0.5",
                            "--num-prompts", str(N), "--max-new-tokens", "6", "--ignore-eos", "--request-rate", "50",
                            "--seed", "3", "--policy", "static:layers=1", "--max-num-seqs", "4",
                            "--max-num-batched-tokens", "48", "--goodput", "ttft:100000", "tpot:100000",
                            "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99",
                            "--save-result", "--save-detailed", "--result-filename", result, "--report", report]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}\nexit {p.returncode}\n{p.stdout}\n{p.stderr}")
    check("============ Serving Benchmark Result ============" in p.stdout, f"{tag}: no result block")
    check("Mean E2EL (ms):" in p.stdout and "P50 TTFT (ms):" in p.stdout, f"{tag}: selected metrics not printed")
    check(not os.path.exists(result + ".tmp") and not os.path.exists(report + ".tmp"), f"{tag}: temporary file left")
    return json.load(open(result)), h5py.File(report, "r"), p.stdout


def close(a, b, what, tol=1e-6):
    check(math.isclose(a, b, rel_tol=tol, abs_tol=tol), f"{what}: {a} != {b}")


def check_run(tag, results, f):
    check([r["policy"] for r in results] == ["none", "static:layers=1"], f"{tag}: policies {[r['policy'] for r in results]}")
    for r in results:
        pol = r["policy"]
        check(r["completed"] == N and r["failed"] == 0, f"{tag} {pol}: completed {r['completed']}, failed {r['failed']}")
        check(r["output_lens"] == [6] * N, f"{tag} {pol}: output_lens {r['output_lens']}")
        check(r["total_output_tokens"] == sum(r["output_lens"]), f"{tag} {pol}: total_output_tokens")
        check(r["total_input_tokens"] == sum(r["input_lens"]), f"{tag} {pol}: total_input_tokens")
        check(all(12 <= n <= 36 for n in r["input_lens"]), f"{tag} {pol}: input_lens {r['input_lens']}")
        d = r["duration"]
        close(r["request_throughput"], N / d, f"{tag} {pol}: request_throughput")
        close(r["output_throughput"], r["total_output_tokens"] / d, f"{tag} {pol}: output_throughput")
        close(r["total_token_throughput"], (r["total_input_tokens"] + r["total_output_tokens"]) / d,
              f"{tag} {pol}: total_token_throughput")
        close(r["request_goodput"], N / d, f"{tag} {pol}: goodput with SLOs every request meets")
        ttfts = np.array(r["ttfts"])
        itls = np.concatenate([np.array(x) for x in r["itls"]])
        check(all(len(x) == 5 for x in r["itls"]), f"{tag} {pol}: 5 gaps per request")
        close(r["mean_ttft_ms"], ttfts.mean() * 1000, f"{tag} {pol}: mean_ttft_ms")
        close(r["median_ttft_ms"], np.median(ttfts) * 1000, f"{tag} {pol}: median_ttft_ms")
        close(r["std_ttft_ms"], ttfts.std() * 1000, f"{tag} {pol}: std_ttft_ms")
        close(r["p99_ttft_ms"], np.percentile(ttfts, 99) * 1000, f"{tag} {pol}: p99_ttft_ms")
        close(r["mean_itl_ms"], itls.mean() * 1000, f"{tag} {pol}: mean_itl_ms")
        close(r["p50_itl_ms"], np.percentile(itls, 50) * 1000, f"{tag} {pol}: p50_itl_ms")
        for k in ("mean_tpot_ms", "median_tpot_ms", "std_tpot_ms", "p99_tpot_ms", "mean_e2el_ms", "p99_e2el_ms"):
            check(k in r and r[k] >= 0, f"{tag} {pol}: {k}")
        check(len(r["generated_texts"]) == N and r["errors"] == [""] * N, f"{tag} {pol}: texts and errors")
        check(r["device"].startswith("cpu"), f"{tag} {pol}: device {r['device']}")
    none, skip = results
    check(none["exact_match"] == 1.0 and none["matched_prefix_mean"] == 6.0, f"{tag}: none against itself")
    check(none["flops_saved_net"] == 0.0 and none["hit_rate"] == 0.0, f"{tag}: none saves nothing")
    check(0.0 < skip["flops_saved_net"] < 0.5, f"{tag}: static:layers=1 saved {skip['flops_saved_net']}")
    check(0.0 <= skip["exact_match"] <= 1.0 and 0 <= skip["matched_prefix_mean"] <= 6, f"{tag}: static agreement")

    req = f["/requests"][()]
    steps = f["/steps"][()]
    check(f.attrs["status"] == "complete", f"{tag}: report status")
    pol = req["policy"].astype(str)
    for i, r in enumerate(results):
        rows = req[pol == r["policy"]]
        check(len(rows) == N, f"{tag}: {len(rows)} /requests rows of {r['policy']}")
        check(list(rows["request_id"]) == sorted(rows["request_id"]), f"{tag}: /requests order")
        check(np.allclose(rows["ttft_s"], r["ttfts"], atol=1e-9), f"{tag}: /requests ttft_s vs JSON ttfts")
        check(np.all(rows["first_token_s"] >= rows["scheduled_s"]) and np.all(rows["scheduled_s"] >= rows["arrival_s"]),
              f"{tag}: /requests times out of order")
        check(list(rows["n_tokens_prompt"]) == r["input_lens"], f"{tag}: /requests n_tokens_prompt")
        srows = steps[steps["policy"].astype(str) == r["policy"]]
        n_pre = int(rows["n_preemptions"].sum())
        check(n_pre > 0 or srows["n_prefill_tokens"].sum() == sum(r["input_lens"]),
              f"{tag}: prefill tokens {srows['n_prefill_tokens'].sum()} vs prompts {sum(r['input_lens'])}")
        # Each request's first token comes out of its last prefill step; the other five from decodes.
        check(srows["n_decode_tokens"].sum() == 5 * N, f"{tag}: decode tokens {srows['n_decode_tokens'].sum()}")
        check(np.all(srows["n_seqs"] <= 4), f"{tag}: --max-num-seqs exceeded")
        check(np.all(srows["n_prefill_tokens"] + srows["n_decode_tokens"] <= 48), f"{tag}: token budget exceeded")
        computed = srows["n_prefill_tokens"] + srows["n_decode_tokens"]
        if r["policy"] == "none":
            check(srows["n_block_skips"].sum() == 0 and list(rows["gen_exact_match"]) == [1] * N, f"{tag}: none skipped")
        else:
            check(np.array_equal(srows["n_block_skips_l1"], computed) and srows["n_block_skips_l0"].sum() == 0,
                  f"{tag}: static:layers=1 rows {list(srows['n_block_skips_l1'])} vs tokens {list(computed)}")
    summary = f["/summary"][()]
    check(list(summary["policy"].astype(str)) == ["none", "static:layers=1"], f"{tag}: /summary policies")
    close(float(summary["output_throughput_per_s"][0]), results[0]["output_throughput"], f"{tag}: /summary throughput")
    return req, pol


single, f1, _ = serve("np1")
req1, pol1 = check_run("np1", single, f1)
if mpiexec:
    launcher = mpiexec[:2] + ["2"] + mpiexec[2:]
    dist, f2, out = serve("np2", launcher)
    req2, pol2 = check_run("np2", dist, f2)
    check(sorted(set(req2["rank"][pol2 == "none"])) == [0, 1], f"np2: ranks serving {set(req2['rank'])}")
    # Greedy decoding of the same prompts: policy none's outputs do not depend on the split.
    check(dist[0]["generated_texts"] == single[0]["generated_texts"], "np2: none's outputs differ from one process")
    check(dist[0]["input_lens"] == single[0]["input_lens"], "np2: other prompts than one process")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"serve-bench end to end: {'2 ranks and ' if mpiexec else ''}one process checked")
