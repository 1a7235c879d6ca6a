#!/usr/bin/env python3
"""A `semskip run` report against reports/SCHEMA.md, read with h5py.

usage: check_run_schema.py SEMSKIP_BINARY SCHEMA_MD SCRATCH_DIR [MPIEXEC NP_FLAG [MPIEXEC_FLAGS...]]

The documented layout is parsed from SCHEMA.md itself (the root attributes, the `semskip run`
section's attributes and tables, their column names and types; the column tables are the
rendering of the records' field tables, one column per row), so the page and the writer
cannot drift apart: every documented attribute, table and column must exist with its
documented type, no undocumented one may exist, and the values must be sane (rates in [0, 1],
counts ≥ 0, intervals around their value, config_json holding the options given, world_size
and hosts those of the job). Without MPIEXEC one single-process run is checked; with it, a
2-rank run under mpiexec.
"""
import json
import math
import os
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np

semskip, schema_md, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
mpiexec = sys.argv[4:]
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


# ---------------------------------------------------------------- SCHEMA.md
def table_rows(lines, start):
    """The rows of the markdown table starting at or after lines[start], header and rule dropped."""
    i = start
    while i < len(lines) and not lines[i].startswith("|"):
        i += 1
    rows = []
    while i < len(lines) and lines[i].startswith("|"):
        cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
        rows.append(cells)
        i += 1
    return rows[2:], i  # header, |---|


def split_cell(cell):
    """Backticked names of a table cell; (`_lo`, `_hi`) suffixes attach to the name before them."""
    names, base = [], None
    for n in re.findall(r"`([^`]+)`", cell):
        if n.startswith("_") and base:
            names.append(base + n)
        else:
            names.append(n)
            base = n
    return names


def parse_columns(rows):
    """{column: type} of a table's rows; `comm_<kind>_…` expands over the kinds its meaning lists."""
    cols = {}
    for row in rows:
        cell, types, meaning = row[0], row[1], row[-1]  # | column | type | [unit |] meaning |
        names = split_cell(cell)
        tys = [t.strip() for t in types.split(",")]
        if len(tys) == 1:
            tys = tys * len(names)
        if len(tys) != len(names):
            failures.append(f"SCHEMA.md: cannot pair names {names} with types {tys}")
            continue
        for n, t in zip(names, tys):
            if "<kind>" in n:
                kinds = [k for k in re.findall(r"`([^`]+)`", meaning) if re.fullmatch(r"[a-z]+", k)]
                check(kinds, f"SCHEMA.md: no kinds listed for {n}")
                for k in kinds:
                    cols[n.replace("<kind>", k)] = t
            else:
                cols[n] = t
    return cols


def parse_schema(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    root = lines.index("## Root attributes")
    rows, _ = table_rows(lines, root)
    attrs = {r[0].strip("`"): r[1] for r in rows}
    run = lines.index("### `semskip run`")
    end = next((i for i in range(run + 1, len(lines)) if lines[i].startswith(("## ", "### "))), len(lines))
    section = lines[run:end]
    own = next(i for i, l in enumerate(section) if l.startswith("Root attributes of its own"))
    rows, _ = table_rows(section, own)
    for r in rows:
        attrs[r[0].strip("`")] = r[1]
    tables = {}
    for i, l in enumerate(section):
        m = re.match(r"^`(/[a-z_/]+)` — ", l)
        if m:
            rows, _ = table_rows(section, i + 1)
            tables[m.group(1)] = parse_columns(rows)
    return attrs, tables


attrs_doc, tables_doc = parse_schema(schema_md)
# The parse itself must have found the page's content (a reworded page must not pass vacuously).
check(len(attrs_doc) == 42, f"SCHEMA.md: {len(attrs_doc)} root attributes parsed, expected 24 + 18")
# Tables a run writes only when asked: the sweep's and the orders study's, and /per_rank_layer
# (MoE layers through a communicator).
OPTIONAL_TABLES = {"/orders", "/sweep", "/per_rank_layer"}
check(sorted(tables_doc) == ["/orders", "/per_layer", "/per_rank", "/per_rank_layer", "/requests", "/steps", "/summary",
                             "/sweep"],
      f"SCHEMA.md: tables parsed {sorted(tables_doc)}")
check(len(tables_doc.get("/summary", {})) >= 40, "SCHEMA.md: /summary columns not parsed")
check("top1_agreement_hi" in tables_doc.get("/summary", {}), "SCHEMA.md: interval columns not expanded")
check("comm_alltoallv_t_ns" in tables_doc.get("/per_rank", {}), "SCHEMA.md: comm_<kind> columns not expanded")
check(tables_doc.get("/per_rank", {}).get("host") == "string", "SCHEMA.md: paired types not parsed")


# ---------------------------------------------------------------- the report
def type_ok(dtype, doc):
    if doc == "int64":
        return dtype == np.dtype("<i8")
    if doc == "float64":
        return dtype == np.dtype("<f8")
    if doc == "string":
        return h5py.check_string_dtype(dtype) is not None and h5py.check_string_dtype(dtype).encoding == "utf-8"
    failures.append(f"SCHEMA.md: unknown type {doc!r}")
    return False


def attr_ok(value, doc):
    if doc == "int64":
        return isinstance(value, (np.integer,)) and np.asarray(value).dtype == np.dtype("<i8")
    if doc == "string":
        return isinstance(value, str)
    return False


def s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def check_report(path, given, world_size, n_layers=10):
    tag = os.path.basename(path)
    with h5py.File(path, "r") as f:
        # Root attributes: exactly the documented ones, with their types.
        names = set(f.attrs.keys())
        for a, t in attrs_doc.items():
            check(a in names, f"{tag}: root attribute {a} missing")
            if a in names:
                check(attr_ok(f.attrs[a], t), f"{tag}: root attribute {a} is {type(f.attrs[a])}, documented {t}")
        check(names <= set(attrs_doc), f"{tag}: undocumented root attributes {sorted(names - set(attrs_doc))}")
        A = {k: f.attrs[k] for k in names}
        check(A.get("schema_version") == 1, f"{tag}: schema_version {A.get('schema_version')}")
        check(re.fullmatch(r"\d+\.\d+\.\d+.*", A.get("semskip_version", "")), "semskip_version")
        check(A.get("git_revision", "") != "", "git_revision empty")
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", A.get("created_utc", "")), "created_utc not ISO 8601 UTC")
        check(" run " in f" {A.get('command_line', '')} ", f"{tag}: command_line {A.get('command_line')!r}")
        check(A.get("world_size") == world_size, f"{tag}: world_size {A.get('world_size')}")
        hosts = json.loads(A.get("hosts", "null"))
        check(isinstance(hosts, list) and len(hosts) == world_size and all(isinstance(h, str) and h for h in hosts),
              f"{tag}: hosts {hosts}")
        check(json.loads(A.get("gpus", "null")) == [], f"{tag}: gpus on CPU {A.get('gpus')}")
        for k in ("slurm_job_id", "slurm_array_job_id", "slurm_array_task_id"):
            check(A.get(k) == os.environ.get(k.upper(), ""), f"{tag}: {k} {A.get(k)!r}")
        cfg = json.loads(A.get("config_json", "{}"))
        for k, v in given.items():
            check(cfg.get(k) == v, f"{tag}: config_json[{k}] = {cfg.get(k)!r}, given {v!r}")
        check(cfg.get("chunk") == 128 and cfg.get("capacity") == 4096 and cfg.get("bootstrap") == 1000,
              f"{tag}: defaults missing from config_json")
        check(A.get("command") == "run", "command")
        check(A.get("model_type") == "qwen2", f"model_type {A.get('model_type')}")
        check(A.get("workload") == cfg.get("workload") and A.get("workload", "").startswith("text"), "workload")
        check(A.get("workload_bad_lines_skipped") == 0, "workload_bad_lines_skipped")
        check(A.get("cache_mode") == given.get("cache_mode", "local"), "cache_mode")
        check(A.get("sync") == "token", f"sync {A.get('sync')}")
        check(A.get("ep_size") == 1, "ep_size")
        check(A.get("shard") == "round-robin", "shard")

        # Tables: exactly the documented columns, with their types.
        for name, cols in tables_doc.items():
            if name in OPTIONAL_TABLES and name not in f:
                continue
            check(name in f, f"{tag}: table {name} missing")
            if name not in f:
                continue
            ds = f[name]
            fields = ds.dtype.names or ()
            for c, t in cols.items():
                check(c in fields, f"{tag}: {name} lacks documented column {c}")
                if c in fields:
                    check(type_ok(ds.dtype.fields[c][0], t), f"{tag}: {name}.{c} is {ds.dtype.fields[c][0]}, documented {t}")
            extra = [c for c in fields if c not in cols]
            check(not extra, f"{tag}: {name} has undocumented columns {extra}")
        datasets = []
        f.visit(lambda n: datasets.append("/" + n) if isinstance(f[n], h5py.Dataset) else None)
        check(sorted(datasets) == sorted(t for t in tables_doc if t not in OPTIONAL_TABLES or t in datasets),
              f"{tag}: datasets {sorted(datasets)}")

        S, L, R, Q, T = (f[t][()] for t in ("/summary", "/per_layer", "/per_rank", "/requests", "/steps"))
        policies = [s(p) for p in S["policy"]]
        check(policies == given["policies"], f"{tag}: policies {policies}")
        # Values: ranges, units, intervals, the documented formulas.
        for tab, rows in (("/summary", S), ("/per_layer", L), ("/per_rank", R), ("/requests", Q), ("/steps", T)):
            for c in rows.dtype.names:
                kind = tables_doc[tab].get(c)
                if kind == "int64":
                    check((rows[c] >= 0).all(), f"{tag}: {tab}.{c} negative: {rows[c]}")
                if kind == "float64":
                    check(np.isfinite(rows[c]).all(), f"{tag}: {tab}.{c} not finite: {rows[c]}")
                if kind == "float64" and (c.endswith(("_s", "_per_s")) or "_s_" in c):
                    check((rows[c] >= 0).all(), f"{tag}: {tab}.{c} negative time or rate")
        for base in ("top1_agreement", "kl", "ppl", "gen_exact_match", "gen_matched_prefix"):
            check((S[base + "_lo"] <= S[base] + 1e-12).all() and (S[base] <= S[base + "_hi"] + 1e-12).all(),
                  f"{tag}: interval of {base}")
        for c in ("hit_rate", "skip_rate", "top1_agreement", "top1_agreement_lo", "top1_agreement_hi",
                  "gen_exact_match", "gen_exact_match_lo", "gen_exact_match_hi"):
            check(((S[c] >= 0) & (S[c] <= 1)).all(), f"{tag}: /summary.{c} outside [0, 1]: {S[c]}")
        check((S["flops_saved_gross"] <= 1).all() and (S["flops_saved_net"] <= S["flops_saved_gross"] + 1e-12).all(),
              f"{tag}: savings")
        check((S["kl"] >= -1e-9).all() and (S["ppl"] >= 1).all() and (S["ppl_full"] >= 1).all(), f"{tag}: kl/ppl")
        n_req_total = given["max_requests"]
        for i, p in enumerate(policies):
            row = S[i]
            sel = lambda rows: rows[[s(x) == p for x in rows["policy"]]]
            q, t, r, l = sel(Q), sel(T), sel(R), sel(L)
            check(row["n_requests"] == n_req_total == len(q), f"{tag}: {p}: n_requests {row['n_requests']}, {len(q)} rows")
            check(row["n_ranks"] == world_size == len(r), f"{tag}: {p}: n_ranks")
            check(sorted(r["rank"]) == list(range(world_size)), f"{tag}: {p}: ranks {r['rank']}")
            check([s(h) for h in r["host"]] == [hosts[k] for k in r["rank"]], f"{tag}: {p}: hosts of ranks")
            check(len(l) == n_layers and list(l["layer"]) == list(range(n_layers)), f"{tag}: {p}: per_layer rows")
            for c in ("n_tokens", "flops_full", "flops_executed", "flops_overhead", "cache_lookups", "cache_hits",
                      "cache_vetoed"):
                check(row[c] == r[c].sum(), f"{tag}: {p}: /summary.{c} {row[c]} != Σ /per_rank {r[c].sum()}")
            for c in ("n_tokens", "flops_full", "flops_executed", "flops_overhead", "cache_lookups", "cache_hits"):
                check(row[c] == t[c].sum(), f"{tag}: {p}: /summary.{c} != Σ /steps")
            check(row["n_tokens"] >= q["n_tokens"].sum(), f"{tag}: {p}: n_tokens below the prompts'")
            check(0 < l["flops_full"].sum() < row["flops_full"], f"{tag}: {p}: per-layer FLOPs exceed the total")
            check(abs(row["flops_saved_gross"] - (1 - row["flops_executed"] / row["flops_full"])) < 1e-12, f"{p}: gross")
            check(abs(row["hit_rate"] - (row["cache_hits"] / row["cache_lookups"] if row["cache_lookups"] else 0)) < 1e-12,
                  f"{tag}: {p}: hit_rate")
            run, skip = l["n_block_run"].sum(), l["n_block_skip"].sum()
            check(abs(row["skip_rate"] - (skip / (run + skip) if run + skip else 0)) < 1e-12, f"{tag}: {p}: skip_rate")
            check(row["t_skip_s"] == r["t_skip_ns"].max() * 1e-9 or abs(row["t_skip_s"] - r["t_skip_ns"].max() * 1e-9) < 1e-9,
                  f"{tag}: {p}: t_skip_s is not the slowest rank's")
            check(abs(row["t_skip_s_mean"] - r["t_skip_ns"].mean() * 1e-9) < 1e-9, f"{tag}: {p}: t_skip_s_mean")
            check(row["t_skip_s"] >= row["t_skip_s_mean"] - 1e-12, f"{tag}: {p}: max < mean")
            check((r["t_compute_ns"] == r["t_skip_ns"] - r["t_lookup_ns"] - r["t_comm_ns"]).all(), f"{tag}: {p}: t_compute_ns")
            check(abs(row["top1_agreement"] - q["n_top1_match"].sum() / q["n_positions"].sum()) < 1e-12,
                  f"{tag}: {p}: top1 from /requests")
            check((q["n_top1_match"] <= q["n_positions"]).all() and (q["gen_exact_match"] <= 1).all() and
                  (q["gen_matched_prefix"] <= q["n_generated"]).all(), f"{tag}: {p}: request counts")
            check(sorted(q["request_id"]) == list(range(given["calib_requests"], given["calib_requests"] + n_req_total)),
                  f"{tag}: {p}: request ids {q['request_id']}")
            steps = sorted(set(t["step"]))
            n_steps = math.ceil(math.ceil(n_req_total / world_size) / given["batch"])
            check(steps == list(range(n_steps)), f"{tag}: {p}: steps {steps}, expected {n_steps}")
            check(len(t) == n_steps * world_size, f"{tag}: {p}: {len(t)} /steps rows")
            check(t["n_requests"].sum() == n_req_total and (t["n_requests"] <= given["batch"]).all(), f"{p}: step sizes")
            check((r["n_steps"] <= n_steps).all() and r["n_requests"].sum() == n_req_total, f"{tag}: {p}: per_rank")
            if given["max_new_tokens"] > 0:
                check((q["n_generated"] >= 1).all() and (q["n_generated"] <= given["max_new_tokens"]).all(),
                      f"{tag}: {p}: n_generated {q['n_generated']}")
            if row["index"]:
                ins, ev, size, cap = (r["cache_" + c] for c in ("insertions", "evictions", "size", "capacity"))
                check((size <= cap).all() and (ev == ins - size).all(), f"{tag}: {p}: eviction bookkeeping")
                check((t["cache_size"] <= cap.max()).all(), f"{tag}: {p}: /steps cache_size over capacity")
                check(row["cache_key_dim"] > 0 and row["cache_value_bytes"] > 0, f"{tag}: {p}: key_dim/value_bytes")
            else:
                check(row["cache_lookups"] == 0 and row["cache_capacity"] == 0 and row["hit_rate"] == 0,
                      f"{tag}: {p}: cache figures without a cache")
            if p == "none":
                check(row["flops_executed"] == row["flops_full"] and row["top1_agreement"] == 1 and row["skip_rate"] == 0,
                      f"{tag}: none is not the full model")
                check(row["gen_exact_match"] == (1.0 if given["max_new_tokens"] else 0.0), f"{tag}: none gen_exact_match")


def run(args, prefix=()):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run([*prefix, semskip, "run", *args], capture_output=True, text=True, env=env, cwd=scratch)
    if p.returncode != 0:
        failures.append(f"{' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p.returncode == 0


given = {
    "policies": ["none", "static:layers=5+7", "residual:p=2,r=7,tau=0.9,cap=64,evict=lfu"],
    "max_requests": 5, "calib_requests": 1, "batch": 2, "max_new_tokens": 2, "seed": 3, "chunk": 128,
}
args = ["--max-requests", "5", "--calib-requests", "1", "--batch", "2", "--max-new-tokens", "2", "--seed", "3",
        "--bootstrap", "1000"]
for p in given["policies"]:
    args += ["--policy", p]
if not mpiexec:
    if run(args + ["--report", "one.h5"]):
        check_report(os.path.join(scratch, "one.h5"), given, 1)
else:
    launcher = [mpiexec[0], mpiexec[1], "2", *mpiexec[2:]]
    g2 = dict(given, cache_mode="replicated")
    if run(args + ["--cache-mode", "replicated", "--report", "two.h5"], prefix=launcher):
        check_report(os.path.join(scratch, "two.h5"), g2, 2)

if failures:
    print("\n".join(failures))
    print(f"{len(failures)} schema checks failed")
    sys.exit(1)
print("run report matches reports/SCHEMA.md")
