#!/usr/bin/env python3
"""Checks what `semskip index-bench` writes, as a reader of its reports would: the report of
the CTest sweep (index.bench_cli) read with h5py, a sweep over a .npy file written by numpy,
and a bad descriptor refused before anything is measured or written."""
import argparse
import json
import os
import subprocess
import sys

import h5py
import numpy as np


def fail(msg):
    print("check_index_bench: " + msg, file=sys.stderr)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def text(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def check_sweep(path, indexes):
    with h5py.File(path, "r") as f:
        attrs = f.attrs
        for name in ("schema_version", "semskip_version", "git_revision", "created_utc",
                     "command_line", "hosts", "config_json"):
            expect(name in attrs, f"root attribute {name} missing")
        expect("index-bench" in str(attrs["command_line"]), "command_line does not name index-bench")
        expect(str(attrs["command"]) == "index-bench", "attribute command is not index-bench")
        revision = str(attrs["git_revision"])
        config = json.loads(attrs["config_json"])
        expect(config["n"] == [300, 600] and config["dim"] == [16] and config["k"] == [1, 5]
               and config["index"] == indexes, f"config_json is not the resolved sweep: {config}")
        bench = f["/index/bench"][()]
        samples = f["/index/bench_samples"][()]
    # 2 values of n × 1 dim × 1 batch × 2 values of k × the indexes, descriptors fastest.
    expect(len(bench) == 4 * len(indexes), f"{len(bench)} rows, expected {4 * len(indexes)}")
    expect(text(bench["descriptor"]) == indexes * 4, f"descriptors {text(bench['descriptor'])}")
    expect(list(bench["n_keys"]) == [300] * (2 * len(indexes)) + [600] * (2 * len(indexes)),
           "n_keys do not follow the sweep order")
    expect(list(bench["k"]) == ([1] * len(indexes) + [5] * len(indexes)) * 2, "k does not follow the sweep")
    expect(all(bench["dim"] == 16) and all(bench["n_queries"] == 4) and all(bench["n_repeat"] == 3),
           "dim, n_queries or n_repeat wrong")
    for row in bench:
        desc = row["descriptor"].decode()
        exact = desc in ("torch:flat", "kokkos:flat", "faiss:Flat")
        expect(0 <= row["recall_at_k"] <= 1 and 0 <= row["recall_at_1"] <= 1, f"{desc}: recall out of range")
        if exact:
            expect(row["recall_at_k"] == 1.0 and row["recall_at_1"] == 1.0, f"{desc}: exact index missed neighbours")
            expect(row["lookup_query_flops"] == 2 * 16 * row["n_keys"], f"{desc}: flat lookup flops")
            expect(row["memory_bytes"] >= 4 * 16 * row["n_keys"], f"{desc}: memory below the stored floats")
        expect(row["lookup_batch_flops"] == 4 * row["lookup_query_flops"], f"{desc}: batch flops")
        expect(row["queries_per_s"] > 0 and row["build_s"] > 0, f"{desc}: no timing")
        expect(row["latency_min_s"] <= row["latency_p50_s"] <= row["latency_max_s"], f"{desc}: percentiles")
        expect(row["device"].decode() == "cpu", f"{desc}: device")
        expect(row["git_revision"].decode() == revision, f"{desc}: row revision differs from root")
    expect(len(samples) == 3 * len(bench), "one raw sample per timed batch")
    for i in range(len(bench)):
        lat = samples["latency_s"][samples["bench_row"] == i]
        expect(len(lat) == 3, f"row {i}: {len(lat)} samples")
        expect(abs(np.median(lat) - bench["latency_p50_s"][i]) < 1e-12, f"row {i}: p50 is not the median of its samples")


def check_npy(semskip, workdir):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((700, 12)).astype(np.float32)
    npy = os.path.join(workdir, "index_bench_vectors.npy")
    np.save(npy, x)
    report = os.path.join(workdir, "index_bench_npy.h5")
    subprocess.run([semskip, "index-bench", "--index", "torch:flat", "--data", npy, "--n", "500",
                    "--queries", "10", "--k", "3", "--repeat", "2", "--report", report, "--force"], check=True)
    with h5py.File(report, "r") as f:
        row = f["/index/bench"][()][0]
    expect(row["dim"] == 12, "dimension not taken from the .npy file")
    expect(row["data"].decode() == npy, "data column is not the file")
    expect(row["recall_at_k"] == 1.0, "exact search over file vectors missed neighbours")


def check_json(semskip, workdir):
    # --json prints the rows of /index/bench: the same descriptors, sizes and recall as the
    # report written by the same run (timings differ between runs, so one run gives both).
    report = os.path.join(workdir, "index_bench_json.h5")
    p = subprocess.run([semskip, "index-bench", "--index", "torch:flat", "--n", "200,400", "--dim", "8",
                        "--queries", "4", "--k", "3", "--repeat", "2", "--report", report, "--force", "--json"],
                       capture_output=True, text=True, check=True)
    rows = json.loads(p.stdout)
    with h5py.File(report, "r") as f:
        t = f["/index/bench"][()]
    expect(len(rows) == len(t) == 2, f"--json printed {len(rows)} rows, the report has {len(t)}")
    for row, rec in zip(rows, t):
        expect(set(row) == set(t.dtype.names), f"--json keys {sorted(set(row) ^ set(t.dtype.names))} differ")
        for name in ("descriptor", "n_keys", "dim", "k", "recall_at_k", "queries_per_s", "lookup_batch_flops",
                     "memory_bytes"):
            v = rec[name].decode() if isinstance(rec[name], bytes) else rec[name].item()
            expect(row[name] == v, f"--json {name} {row[name]!r} != report {v!r}")


def check_bad_descriptor(semskip, workdir):
    report = os.path.join(workdir, "index_bench_bad.h5")
    if os.path.exists(report):
        os.remove(report)
    p = subprocess.run([semskip, "index-bench", "--index", "torch:flat", "--index", "torch:flat|chunk=0",
                        "--n", "100", "--dim", "8", "--report", report], capture_output=True, text=True)
    expect(p.returncode != 0, "a bad descriptor was accepted")
    expect("torch:flat|chunk=0" in p.stderr and "chunk=0 must be" in p.stderr, f"unclear error: {p.stderr}")
    expect("index-bench [1/" not in p.stderr, "measuring started before the descriptors were checked")
    expect(not os.path.exists(report) and not os.path.exists(report + ".tmp"), "a report was left behind")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", required=True)
    ap.add_argument("--semskip", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--index", action="append", required=True)
    a = ap.parse_args()
    check_sweep(a.report, a.index)
    check_npy(a.semskip, a.workdir)
    check_json(a.semskip, a.workdir)
    check_bad_descriptor(a.semskip, a.workdir)
    print("check_index_bench: ok")


if __name__ == "__main__":
    main()
