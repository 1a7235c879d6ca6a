#!/usr/bin/env python3
"""The batch scripts of slurm/ submitted to a real SLURM controller (label slurm).

usage: test_slurm.py CASE SEMSKIP CLUSTER_DIR SCRATCH

The cluster is scripts/slurm-local.sh's, started in CLUSTER_DIR by the fixture test
slurm.start (tests/slurm/CMakeLists.txt). CASE is one of:
  single     slurm/run.sbatch with 2 tasks: the report has 2 ranks, the job's SLURM ids and
             allocation, the script's settings as metadata, sbatch's options over the script's
             defaults, and the same requests and counts as one process over the same workload
  array      a 3-task job array (slurm/submit-sweep.sh, a grid of one point in 3 shards, the
             shard taken from SLURM_ARRAY_TASK_ID) and its afterok merge job: every request once,
             as one process runs them; merging 2 of the 3 shards is refused; the grid's points
             are the Cartesian product (checked against itertools.product)
  scaling    slurm/scaling.sh, a strong-scaling chain at 1 and 2 tasks on the one node (standing
             in for 1 and 2 nodes): each run starts after the one before ended, and the table's
             speed-up and efficiency are those of the two reports' times
  weak       slurm/scaling.sh --mode weak at 1 and 2 tasks (4 requests per rank): the second run
             evaluates twice the requests, and the table's efficiency is t(1 task) / t(2 tasks),
             its throughput ratio the speed-up; and slurm/index-study.sbatch with tiny sizes: the
             study's report holds every CPU backend at every size, exact backends at recall 1
  interrupt  a run stopped by `scancel --signal=TERM`, and one stopped by its time limit's
             --signal warning: each requeues itself, resumes (--resume) to completion, and its
             report equals an uninterrupted run's, each request exactly once
Exit status 77 (skipped) where slurmctld is not installed. Reports are read with h5py.
"""
import itertools
import json
import os
import shutil
import subprocess
import sys
import time

case, semskip, cluster, scratch = sys.argv[1:5]
if not (shutil.which("slurmctld") or os.path.exists("/usr/sbin/slurmctld")):
    print("slurmctld is not installed: skipped")
    sys.exit(77)

import h5py  # noqa: E402  (after the skip, which needs no h5py)
import numpy as np  # noqa: E402

source = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
scratch = os.path.join(scratch, case)
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
env = dict(os.environ, SLURM_CONF=os.path.join(cluster, "slurm.conf"), SEMSKIP_HOME=source, SEMSKIP_BIN=semskip,
           SEMSKIP_CPU_BIND="none", OMP_NUM_THREADS="1")
for k in list(env):
    if k.startswith("SLURM_") and k != "SLURM_CONF":
        del env[k]  # a test run inside a job must not pass that job's ids on
failures = []
TINY = ["--calib-requests", "2", "--policy", "residual:p=2,r=7,tau=0.9", "--batch", "2"]


def check(cond, what):
    if not cond:
        failures.append(what)


def sh(args, timeout=120, **kw):
    p = subprocess.run(args, capture_output=True, text=True, env=env, cwd=scratch, timeout=timeout, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout


def sbatch(*args):
    return sh(["sbatch", "--parsable", *args]).strip().split(";")[0]


def job(jid):
    """scontrol's fields of a job (it keeps finished jobs for MinJobAge)."""
    out = sh(["scontrol", "show", "job", "-o", jid])
    fields = {}
    for tok in out.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            fields[k] = v
    return fields


def wait(jids, limit=200):
    end = time.monotonic() + limit
    done = {}
    while time.monotonic() < end:
        for j in jids:
            state = job(j)["JobState"]
            if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"):
                done[j] = state
            elif j in done:
                del done[j]
        if len(done) == len(jids):
            return done
        time.sleep(1)
    raise RuntimeError(f"jobs {jids} did not end within {limit} s: {[job(j)['JobState'] for j in jids]}")


def show_output(path):
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return "(no output file)"


def run_local(args, report):
    # The long reference (LONG, about 75 s alone) needs more than a command's 120 s on a busy
    # machine; the test's own limit (600 s) bounds it.
    sh([semskip, "run", *args, "--report", report], timeout=400)


def table(path, name):
    with h5py.File(path, "r") as f:
        return f[name][()]


def attrs(path):
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


def text(col):
    return [c.decode() if isinstance(c, bytes) else str(c) for c in col]


def requests_sorted(rows):
    return rows[np.lexsort((rows["request_id"], np.array(text(rows["policy"]))))]


EXACT_REQUESTS = ["request_id", "n_tokens", "n_block_skips", "n_mlp_skips", "n_positions", "n_top1_match",
                  "n_targets"]
EXACT_SUMMARY = ["n_requests", "n_tokens", "flops_full", "flops_executed", "flops_overhead", "cache_lookups",
                 "cache_hits", "cache_insertions", "cache_size"]


def same_rows(a, b, cols, what, tol=None):
    check(len(a) == len(b), f"{what}: {len(a)} rows against {len(b)}")
    if len(a) != len(b):
        return
    for c in cols:
        ok = np.allclose(a[c], b[c], rtol=tol, atol=1e-9) if tol else np.array_equal(a[c], b[c])
        check(ok, f"{what}: column {c} differs\n  {a[c]}\n  {b[c]}")


# ---------------------------------------------------------------- cases
def case_single():
    args = [*TINY, "--max-requests", "6"]
    # --time=10: above the script's five-minute warning (USR1@300), which a limit of 5 would
    # send at the job's first time-limit check, perhaps before the ranks can take it.
    jid = sbatch("--ntasks=2", "--job-name=override", "--time=10", f"--output={scratch}/single-%j.out",
                 os.path.join(source, "slurm", "run.sbatch"), "run", *args, "--report", f"{scratch}/single.h5")
    state = wait([jid])[jid]
    out = show_output(f"{scratch}/single-{jid}.out")
    check(state == "COMPLETED", f"run.sbatch: job {jid} ended {state}\n{out}")
    if state != "COMPLETED":
        return
    a = attrs(f"{scratch}/single.h5")
    check(a["world_size"] == 2, f"world_size {a['world_size']}, submitted with --ntasks=2")
    check(len(json.loads(a["hosts"])) == 2, f"hosts {a['hosts']}")
    check(a["slurm_job_id"] == jid, f"slurm_job_id {a['slurm_job_id']}, job {jid}")
    check(a.get("slurm_ntasks") == 2, f"slurm_ntasks {a.get('slurm_ntasks')}")
    check(a.get("slurm_job_name") == "override", f"sbatch --job-name must win over the script's: {a.get('slurm_job_name')}")
    check(a.get("slurm_partition") == "local", f"slurm_partition {a.get('slurm_partition')}")
    check(a.get("slurm_cpus_per_task") == 1, f"slurm_cpus_per_task {a.get('slurm_cpus_per_task')}")
    meta = json.loads(a["user_metadata"])
    check(meta.get("sbatch_script") == "run.sbatch", f"metadata {meta}")
    check(meta.get("sbatch_time_limit") == "10:00", f"the job's time limit in the metadata: {meta}")
    check("2 tasks on 1 nodes" in out, f"the job's first line names its tasks:\n{out}")
    # Into a file (the job's output), rank 0's progress is a plain line, the last at the end.
    check("6/6 requests" in out and "tokens/s" in out and "\r" not in out, f"the progress line in the log:\n{out}")
    quiet = subprocess.run([semskip, "run", *args, "--quiet"], capture_output=True, text=True, env=env, cwd=scratch)
    check(quiet.returncode == 0 and "tokens/s" not in quiet.stderr, f"--quiet leaves the progress out:\n{quiet.stderr}")
    run_local(args, f"{scratch}/one.h5")
    same_rows(requests_sorted(table(f"{scratch}/one.h5", "/requests")),
              requests_sorted(table(f"{scratch}/single.h5", "/requests")), ["request_id", "n_tokens", "n_positions"],
              "2 ranks under srun against one process")
    ranks = table(f"{scratch}/single.h5", "/per_rank")
    check(sorted(ranks["rank"].tolist()) == [0, 1], f"per_rank ranks {ranks['rank']}")


def case_array():
    grid = os.path.join(scratch, "grid")
    with open(grid, "w") as fh:
        fh.write(f"# one point in three shards\nmodel {source}/models/tiny-dense\nindex torch:flat\nlayers 2:7\n"
                 "tau 0.9\nshards 3\n")
    out = os.path.join(scratch, "out")
    line = sh([os.path.join(source, "slurm", "submit-sweep.sh"), grid, out, *TINY[:2], "--batch", "2",
               "--max-requests", "9"])
    ids = line.split()
    array, merge = ids[1], ids[-1]
    states = wait([merge], limit=200)
    check(states[merge] == "COMPLETED",
          f"merge job {merge} ended {states[merge]}\n{show_output(out + '/merge.out')}\n"
          + "\n".join(show_output(f"{out}/task-{i}.out") for i in range(3)))
    check(job(merge).get("Dependency", "(null)") in ("(null)", ""), "the merge job ran after its dependency cleared")
    if states[merge] != "COMPLETED":
        return
    merged = f"{out}/sweep.h5"
    src = table(merged, "/sources")
    check(text(src["slurm_array_task_id"]) == ["0", "1", "2"], f"array task ids {text(src['slurm_array_task_id'])}")
    check(set(text(src["slurm_array_job_id"])) == {array}, f"array job ids {text(src['slurm_array_job_id'])}")
    shards = [json.loads(c)["shard_index"] for c in text(src["config_json"])]
    check(shards == [0, 1, 2], f"each task runs the shard of its task id: {shards}")
    check(attrs(merged)["merged_sources"] == 3, "merged_sources")
    run_local([*TINY, "--max-requests", "9"], f"{scratch}/one.h5")
    one = requests_sorted(table(f"{scratch}/one.h5", "/requests"))
    all_ = requests_sorted(table(merged, "/requests"))
    check(sorted(all_["request_id"].tolist()) == sorted(one["request_id"].tolist()),
          f"the shards' requests {sorted(all_['request_id'].tolist())} are one process's "
          f"{sorted(one['request_id'].tolist())}, each once")
    same_rows(one, all_, ["request_id", "n_tokens", "n_positions"], "merged shards against one process")
    # An incomplete set of shards is refused, naming the missing one; nothing is written.
    p = subprocess.run([semskip, "report", "merge", f"{scratch}/two.h5", f"{out}/task-0000.h5", f"{out}/task-0001.h5"],
                       capture_output=True, text=True, env=env)
    check(p.returncode != 0 and "shard 2 is missing" in p.stderr, f"merge of 2 of 3 shards: {p.returncode} {p.stderr}")
    check(not os.path.exists(f"{scratch}/two.h5") and not os.path.exists(f"{scratch}/two.h5.tmp"),
          "a refused merge leaves no file")
    # The grid's points: the Cartesian product, models slowest, thresholds fastest.
    example = os.path.join(source, "slurm", "grid.example")
    script = (f"source {source}/slurm/grid.sh; semskip_grid_load {example}; "
              "for ((t = 0; t < grid_tasks; t++)); do semskip_grid_point $t; "
              "echo \"$point_model $point_index $point_policy\"; done")
    got = sh(["bash", "-c", script]).splitlines()
    want = [f"{m} {i} residual:p={l.split(':')[0]},r={l.split(':')[1]},tau={t}" for m, i, l, t in
            itertools.product(["models/tiny-dense"], ["torch:flat", "faiss:Flat"], ["2:7", "1:4"], ["0.85", "0.95"])]
    check(got == want, f"grid points\n{got}\n{want}")
    count = sh(["bash", os.path.join(source, "slurm", "sweep.sbatch"), "--count", example]).strip()
    check(count == "8", f"sweep.sbatch --count {count}")


def case_scaling():
    out = os.path.join(scratch, "out")
    line = sh([os.path.join(source, "slurm", "scaling.sh"), "--mode", "strong", "--tasks", "1 2", "--requests", "8",
               "--out", out, "--", *TINY])
    ids = line.replace(",", "").split()  # "runs A B table C"
    runs, final = ids[1:3], ids[-1]
    states = wait([final], limit=200)
    check(states[final] == "COMPLETED", f"scaling table job {final} ended {states[final]}\n"
          + show_output(f"{out}/scaling.out") + show_output(f"{out}/scale-1.out") + show_output(f"{out}/scale-2.out"))
    if states[final] != "COMPLETED":
        return
    first, second = job(runs[0]), job(runs[1])
    check(second["StartTime"] >= first["EndTime"], f"the chain: run 2 started {second['StartTime']}, "
          f"run 1 ended {first['EndTime']}")
    rows = table(f"{out}/scaling.h5", "/scaling")
    check(rows["n_ranks"].tolist() == [1, 2], f"n_ranks {rows['n_ranks']}")
    t1 = table(f"{out}/scale-1.h5", "/summary")["t_skip_s"][0]
    t2 = table(f"{out}/scale-2.h5", "/summary")["t_skip_s"][0]
    check(np.allclose(rows["speedup"], [1.0, t1 / t2]), f"speedup {rows['speedup']}, times {t1} {t2}")
    check(np.allclose(rows["efficiency"], [1.0, t1 / t2 / 2]), f"efficiency {rows['efficiency']}")
    check(attrs(f"{out}/scale-2.h5")["world_size"] == 2, "the second run has 2 ranks")
    with open(f"{out}/scaling.txt") as fh:
        check("strong scaling by ranks" in fh.read(), "scaling.txt holds the table")


def case_weak():
    out = os.path.join(scratch, "out")
    line = sh([os.path.join(source, "slurm", "scaling.sh"), "--mode", "weak", "--tasks", "1 2", "--requests", "4",
               "--out", out, "--", *TINY])
    ids = line.replace(",", "").split()
    final = ids[-1]
    study = f"{scratch}/study.h5"
    study_env = dict(SEMSKIP_INDEX_N="200,400", SEMSKIP_INDEX_DIM="16", SEMSKIP_INDEX_QUERIES="4",
                     SEMSKIP_INDEX_K="1", SEMSKIP_INDEX_REPEAT="2", SEMSKIP_INDEX_CPU="faiss:Flat torch:flat")
    env.update(study_env)
    index_job = sbatch(f"--output={scratch}/index-%j.out", os.path.join(source, "slurm", "index-study.sbatch"), study)
    states = wait([final, index_job], limit=240)
    check(states[final] == "COMPLETED", f"weak scaling table job {final} ended {states[final]}\n"
          + show_output(f"{out}/scaling.out") + show_output(f"{out}/scale-1.out") + show_output(f"{out}/scale-2.out"))
    if states[final] == "COMPLETED":
        rows = table(f"{out}/scaling.h5", "/scaling")
        check(rows["n_ranks"].tolist() == [1, 2], f"n_ranks {rows['n_ranks']}")
        s1, s2 = table(f"{out}/scale-1.h5", "/summary"), table(f"{out}/scale-2.h5", "/summary")
        check(s2["n_requests"][0] == 2 * s1["n_requests"][0] == 8,
              f"weak scaling: {s1['n_requests'][0]} then {s2['n_requests'][0]} requests (4 per rank)")
        check(np.allclose(rows["efficiency"], [1.0, s1["t_skip_s"][0] / s2["t_skip_s"][0]]),
              f"weak efficiency {rows['efficiency']}, times {s1['t_skip_s'][0]} {s2['t_skip_s'][0]}")
        with open(f"{out}/scaling.txt") as fh:
            check("weak scaling" in fh.read(), "scaling.txt holds the weak table")
    check(states[index_job] == "COMPLETED", f"index study job {index_job} ended {states[index_job]}\n"
          + show_output(f"{scratch}/index-{index_job}.out"))
    if states[index_job] == "COMPLETED":
        rows = table(study, "/index/bench")
        idx = text(rows["descriptor"])
        check(sorted(set(idx)) == ["faiss:Flat", "torch:flat"], f"backends {sorted(set(idx))}")
        check(sorted(set(rows["n_keys"].tolist())) == [200, 400], f"sizes {sorted(set(rows['n_keys'].tolist()))}")
        check(len(rows) == 4, f"{len(rows)} rows, expected 2 backends × 2 sizes")
        check(all(abs(r - 1.0) < 1e-9 for r in rows["recall_at_1"]), f"exact recall {rows['recall_at_1']}")
    for k in study_env:
        env.pop(k)


def interrupted(name, sbatch_args, signal_after, run_args, ref):
    """Submits a run that is stopped (by scancel TERM after `signal_after`s of running, or by
    its own time-limit warning when None), and waits for its requeued runs to complete it."""
    report = f"{scratch}/{name}.h5"
    jid = sbatch(*sbatch_args, f"--output={scratch}/{name}-%j.out", os.path.join(source, "slurm", "run.sbatch"),
                 "run", *run_args, "--report", report)
    log = f"{scratch}/{name}-{jid}.out"
    if signal_after is not None:
        end = time.monotonic() + 120
        while time.monotonic() < end and "semskip run:" not in show_output(log):
            time.sleep(0.2)
        time.sleep(signal_after)
        sh(["scancel", "--signal=TERM", jid])
    state = wait([jid], limit=420)[jid]
    out = show_output(log)
    check(state == "COMPLETED", f"{name}: job {jid} ended {state}\n{out}")
    check("partial report written" in out and "resuming the partial report" in out,
          f"{name}: the run must stop with a partial report and resume it\n{out}")
    if state != "COMPLETED":
        return
    a = attrs(report)
    check(a["status"] == "complete", f"{name}: status {a['status']}")
    check(a.get("slurm_restart_count", 0) >= 1, f"{name}: slurm_restart_count {a.get('slurm_restart_count')}")
    req = table(report, "/requests")
    keys = list(zip(text(req["policy"]), req["request_id"].tolist()))
    check(len(set(keys)) == len(keys), f"{name}: a request recorded twice for one policy")
    same_rows(requests_sorted(table(ref, "/requests")), requests_sorted(req), EXACT_REQUESTS, name)
    same_rows(requests_sorted(table(ref, "/requests")), requests_sorted(req), ["kl_sum", "nll_sum"], name, tol=1e-6)
    same_rows(table(ref, "/summary"), table(report, "/summary"), EXACT_SUMMARY, name)


INTERRUPT = [*TINY, "--max-requests", "60", "--checkpoint-every", "0"]


# Long enough to outlast slurmctld's time-limit check (every 30 s, at any phase of the job's
# start) on a fast quiet machine too: the shipped text has 87 requests and nine cache
# configurations run over them, about 75 s alone on 2 cores (three took 25 s and, in a clean
# clone, finished before the first check). Each configuration's requests are unique.
LONG_POLICIES = ["residual:p=1,r=5,tau=0.9", "residual:p=3,r=8,tau=0.95", "residual:p=2,r=7,tau=0.8",
                 "residual:p=1,r=6,tau=0.85", "residual:p=2,r=6,tau=0.95", "residual:p=3,r=7,tau=0.9",
                 "residual:p=1,r=4,tau=0.8", "residual:p=2,r=8,tau=0.85"]
LONG = [*TINY, *[a for p in LONG_POLICIES for a in ("--policy", p)], "--max-requests", "180",
        "--checkpoint-every", "0"]


def case_interrupt():
    run_local(INTERRUPT, f"{scratch}/reference.h5")
    # --time=10: its warning (USR1@300) comes long after the run; TERM stops it first.
    interrupted("scancel", ["--time=10"], 3, INTERRUPT, f"{scratch}/reference.h5")
    # A two minutes' limit warned 120 s ahead: the whole job lies in the warning window, so the
    # first time-limit check while it runs signals it; the requeued job completes the run.
    run_local(LONG, f"{scratch}/reference_long.h5")
    interrupted("timelimit", ["--time=2", "--signal=USR1@120"], None, LONG, f"{scratch}/reference_long.h5")


{"single": case_single, "array": case_array, "scaling": case_scaling, "weak": case_weak,
 "interrupt": case_interrupt}[case]()
if failures:
    print(f"{len(failures)} failure(s) in case {case}:")
    for f in failures:
        print(" -", f)
    sys.exit(1)
print(f"case {case}: ok")
