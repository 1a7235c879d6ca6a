#!/usr/bin/env python3
"""`semskip run` stopped by signals and resumed: the final report equals an uninterrupted run's.

usage: test_resume.py CASE SEMSKIP SCRATCH [MPIEXEC NUMPROC_FLAG [MPIEXEC_FLAG...]]

CASE is one of:
  signal   SIGTERM after steps 1, 3 and 5 (a test hook raising the real signal inside the run):
           status "partial" and exit status 75; `--resume` completes it and every table equals
           the uninterrupted run's (timings aside), each request exactly once per policy
  second   a second signal while the partial report is being written ends the run at once by
           that signal: the previous report is byte-identical, no .tmp is left
  kill     SIGKILL at random moments (several seeds): what remains is no report, a partial one
           or a complete one that equals the reference; `--resume` completes whatever remains
  refuse   --resume of a complete report, of another configuration, of a file that is no
           report: refused naming the report, the report unchanged
  mpi      2 ranks (replicated and sharded caches), the signal raised on rank 1 only: both ranks
           stop at the same step; the resumed run equals the uninterrupted 2-rank run
Reports are read back with h5py, an independent reader.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

case, semskip, scratch = sys.argv[1:4]
mpi = sys.argv[4:]
scratch = os.path.join(scratch, case)
shutil.rmtree(scratch, ignore_errors=True)
os.makedirs(scratch)
base_env = dict(os.environ, OMP_NUM_THREADS="1")
for k in ("SEMSKIP_TEST_SIGNAL_AT_STEP", "SEMSKIP_TEST_SIGNAL_IN_WRITE"):
    base_env.pop(k, None)
failures = []
EXIT_INTERRUPTED = 75

# Shared prefixes make the caches hit. The policies
# carry every kind of state a resume must restore: an evicting LRU cache (cap=8), a PCA
# projection fitted on calibration, an admission stream, a FIFO plan cache, a random stream and
# a calibrated static choice.
WORKLOAD = "vllm-prefix-repetition,num=16,prefix_len=24,suffix_len=8,num_prefixes=3,output_len=0"
CONFIG = ["--workload", WORKLOAD, "--max-requests", "12", "--calib-requests", "4", "--batch", "2",
          "--policy", "none", "--policy", "static:k=1", "--policy", "random:rate=0.3,seed=7",
          "--policy", "residual:p=2,r=7,tau=0.6,cap=8,evict=lru",
          "--policy", "residual:p=1,r=5,tau=0.8,proj=pca,kdim=16,admit=sample:0.7,cap=16,evict=lfu",
          "--policy", "plan:p=2,beta=0.05,tau=0.9,cap=4,evict=fifo",
          "--bootstrap", "50"]
# The first 4 requests calibrate; 11 are evaluated (ids 4–14): 6 steps of 2.
N_STEPS, N_REQUESTS = 6, 11


def check(cond, what):
    if not cond:
        failures.append(what)


def cmd_of(args, ranks):
    cmd = [semskip, "run", *args]
    if ranks:
        cmd = [mpi[0], mpi[1], str(ranks), *mpi[2:], *cmd]
    return cmd


def run(args, ranks=None, env=None, timeout=240):
    p = subprocess.run(cmd_of(args, ranks), capture_output=True, text=True, env=env or base_env, cwd=scratch,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def timing(name):
    # Timings, and the peak resident memory a process measures of itself: neither is the same
    # in two runs of one plan.
    return (name.startswith("t_") or name.endswith("_ns") or "per_s" in name or "speedup" in name
            or name == "peak_rss_bytes")


def tables(path):
    """Every table's non-timing columns, and the root attributes that describe the result."""
    out = {}
    with h5py.File(path, "r") as f:
        for name in ("summary", "per_layer", "per_rank", "requests", "steps"):
            d = f[name][:]
            out[name] = {c: d[c] for c in d.dtype.names if not timing(c)}
        out["status"] = f.attrs["status"]
        out["steps_done"] = int(f.attrs["steps_done"])
    return out


def same(a, b, what):
    for t in ("summary", "per_layer", "per_rank", "requests", "steps"):
        for c in a[t]:
            if c not in b[t]:
                failures.append(f"{what}: /{t} lacks {c}")
            elif not np.array_equal(a[t][c], b[t][c]):
                failures.append(f"{what}: /{t}/{c} differs: {a[t][c]} != {b[t][c]}")


def each_request_once(t, what, n_policies):
    ids = list(zip(t["requests"]["policy"], t["requests"]["request_id"]))
    check(len(ids) == len(set(ids)), f"{what}: a request recorded twice")
    check(len(ids) == n_policies * N_REQUESTS, f"{what}: {len(ids)} request rows, expected {n_policies * N_REQUESTS}")
    for pol in set(t["requests"]["policy"]):
        mine = sorted(t["requests"]["request_id"][t["requests"]["policy"] == pol])
        check(mine == sorted(set(mine)) and len(mine) == N_REQUESTS, f"{what}: {pol} has requests {mine}")


def no_leftovers(path, what):
    left = [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]
    check(not left, f"{what}: temporary files left: {left}")


def reference(ranks=None, extra=(), name="reference.h5", n_steps=N_STEPS):
    path = os.path.join(scratch, name)
    rc, out = run([*CONFIG, *extra, "--report", path], ranks)
    check(rc == 0, f"the uninterrupted run failed: {out}")
    t = tables(path)
    check(t["status"] == "complete" and t["steps_done"] == n_steps,
          f"reference: status {t['status']}, steps_done {t['steps_done']}, expected complete and {n_steps}")
    check(not os.path.exists(path + ".checkpoint"), "a complete run left its state files")
    return t


def case_signal():
    ref = reference()
    n_policies = len(set(ref["summary"]["policy"]))
    each_request_once(ref, "reference", len(ref["summary"]["policy"]))
    check(n_policies == 6, f"{n_policies} policies")
    for stop_at in (1, 3, 5):
        path = os.path.join(scratch, f"stop{stop_at}.h5")
        env = dict(base_env, SEMSKIP_TEST_SIGNAL_AT_STEP=str(stop_at))
        rc, out = run([*CONFIG, "--report", path, "--checkpoint-every", "0"], env=env)
        check(rc == EXIT_INTERRUPTED, f"stop at {stop_at}: exit {rc}, expected {EXIT_INTERRUPTED}\n{out}")
        check("--resume" in out, f"stop at {stop_at}: the message does not say how to resume\n{out}")
        part = tables(path)
        check(part["status"] == "partial", f"stop at {stop_at}: status {part['status']}")
        check(part["steps_done"] == stop_at, f"stop at {stop_at}: steps_done {part['steps_done']}")
        # The partial report holds exactly the requests of the steps done, as the reference has them.
        rows = len(part["requests"]["request_id"])
        check(rows == 6 * 2 * stop_at, f"stop at {stop_at}: {rows} request rows")
        ref_mask = ref["requests"]["step"] < stop_at
        for c in ("request_id", "n_block_skips", "n_top1_match", "kl_sum"):
            if c in part["requests"]:
                check(np.array_equal(part["requests"][c], ref["requests"][c][ref_mask]),
                      f"stop at {stop_at}: partial /requests/{c} differs from the reference's first steps")
        no_leftovers(path, f"stop at {stop_at}")
        # Resumed alone from the report: the recorded configuration, the saved state.
        rc, out = run(["--resume", path])
        check(rc == 0, f"resume after {stop_at}: exit {rc}\n{out}")
        final = tables(path)
        check(final["status"] == "complete" and final["steps_done"] == N_STEPS, f"resume after {stop_at}: status")
        same(ref, final, f"resume after {stop_at}")
        each_request_once(final, f"resume after {stop_at}", 6)
        check(not os.path.exists(path + ".checkpoint"), f"resume after {stop_at}: state files left")
        no_leftovers(path, f"resume after {stop_at}")
    # Interrupted twice (steps 2 and 4), with periodic checkpoints: still the reference.
    path = os.path.join(scratch, "twice.h5")
    rc, _ = run([*CONFIG, "--report", path, "--checkpoint-every", "1"], env=dict(base_env, SEMSKIP_TEST_SIGNAL_AT_STEP="2"))
    check(rc == EXIT_INTERRUPTED, f"twice: first stop exit {rc}")
    rc, _ = run(["--resume", path], env=dict(base_env, SEMSKIP_TEST_SIGNAL_AT_STEP="4"))
    check(rc == EXIT_INTERRUPTED, f"twice: second stop exit {rc}")
    check(tables(path)["steps_done"] == 4, "twice: the second partial report is not of step 4")
    rc, out = run(["--resume", path])
    check(rc == 0, f"twice: final resume exit {rc}\n{out}")
    same(ref, tables(path), "resumed twice")


def case_second():
    path = os.path.join(scratch, "second.h5")
    rc, _ = run([*CONFIG, "--report", path, "--checkpoint-every", "2"], env=dict(base_env, SEMSKIP_TEST_SIGNAL_AT_STEP="3"))
    check(rc == EXIT_INTERRUPTED, f"first run: exit {rc}")
    check(tables(path)["steps_done"] == 3, "first run: not stopped after step 3")
    before = open(path, "rb").read()
    env = dict(base_env, SEMSKIP_TEST_SIGNAL_AT_STEP="5", SEMSKIP_TEST_SIGNAL_IN_WRITE="1")
    p = subprocess.run([semskip, "run", "--resume", path, "--checkpoint-every", "0"], capture_output=True, text=True,
                       env=env, cwd=scratch, timeout=240)
    check(p.returncode == -signal.SIGTERM, f"second signal: exit {p.returncode}, expected death by SIGTERM\n{p.stderr}")
    check(open(path, "rb").read() == before, "second signal: the previous report changed")
    no_leftovers(path, "second signal")
    # The previous report is still resumable and completes to the reference.
    rc, out = run(["--resume", path])
    check(rc == 0, f"resume after the second signal: exit {rc}\n{out}")
    same(reference(), tables(path), "resume after the second signal")


def case_kill():
    t0 = time.monotonic()
    ref = reference()
    duration = time.monotonic() - t0
    outcomes = set()
    for seed in range(4):
        rnd = random.Random(seed)
        path = os.path.join(scratch, f"kill{seed}.h5")
        p = subprocess.Popen(cmd_of([*CONFIG, "--report", path, "--checkpoint-every", "1"], None), cwd=scratch,
                             env=base_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.3, 1.0) * duration)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if not os.path.exists(path):
            outcomes.add("none")
            rc, out = run(["--resume", path, *CONFIG])
        else:
            t = tables(path)
            outcomes.add(t["status"])
            check(t["status"] in ("partial", "complete"), f"seed {seed}: status {t['status']}")
            if t["status"] == "complete":
                same(ref, t, f"seed {seed}: complete after the kill")
                continue
            each_request_once_partial = len(t["requests"]["request_id"]) == 6 * 2 * t["steps_done"]
            check(each_request_once_partial, f"seed {seed}: the partial report's rows are not its steps'")
            rc, out = run(["--resume", path])
        check(rc == 0, f"seed {seed}: resume exit {rc}\n{out}")
        final = tables(path)
        same(ref, final, f"seed {seed}: resumed after the kill")
        each_request_once(final, f"seed {seed}", 6)
    check(len(outcomes) >= 2, f"the kills all left the same outcome {outcomes}: the moments are not spread")


def case_refuse():
    ref_path = os.path.join(scratch, "reference.h5")
    reference()
    before = open(ref_path, "rb").read()
    rc, out = run(["--resume", ref_path])
    check(rc != 0 and "complete" in out and ref_path in out, f"resume of a complete report: exit {rc}\n{out}")
    path = os.path.join(scratch, "partial.h5")
    rc, _ = run([*CONFIG, "--report", path], env=dict(base_env, SEMSKIP_TEST_SIGNAL_AT_STEP="2"))
    check(rc == EXIT_INTERRUPTED, f"partial run: exit {rc}")
    partial = open(path, "rb").read()
    rc, out = run(["--resume", path, "--batch", "3"])
    check(rc != 0 and "another configuration" in out and "batch" in out,
          f"resume with another batch: exit {rc}\n{out}")
    check(open(path, "rb").read() == partial, "a refused resume changed the partial report")
    bogus = os.path.join(scratch, "bogus.h5")
    open(bogus, "w").write("not a report")
    rc, out = run(["--resume", bogus])
    check(rc != 0 and bogus in out, f"resume of a non-report: exit {rc}\n{out}")
    check(open(ref_path, "rb").read() == before, "a refused resume changed the complete report")
    # A state file of the partial report damaged: refused naming it.
    state = os.path.join(path + ".checkpoint", "rank0.step2.state")
    check(os.path.exists(state), f"no state file {state}")
    data = open(state, "rb").read()
    open(state, "wb").write(data[: len(data) // 2])
    rc, out = run(["--resume", path])
    check(rc != 0 and "rank0.step2.state" in out, f"resume with a truncated state: exit {rc}\n{out}")


def case_mpi():
    for mode in ("replicated", "sharded"):
        extra = ["--cache-mode", mode]
        # Round robin gives the ranks 6 and 5 requests: 3 steps of 2 in lockstep.
        ref = reference(ranks=2, extra=extra, name=f"reference_{mode}.h5", n_steps=3)
        path = os.path.join(scratch, f"mpi_{mode}.h5")
        env = dict(base_env, SEMSKIP_TEST_SIGNAL_AT_STEP="1@1")  # rank 1 only
        p = subprocess.run(cmd_of([*CONFIG, *extra, "--report", path, "--checkpoint-every", "0"], 2),
                           capture_output=True, text=True, env=env, cwd=scratch, timeout=240)
        check(p.returncode == EXIT_INTERRUPTED, f"{mode}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        part = tables(path)
        check(part["status"] == "partial" and part["steps_done"] == 1, f"{mode}: partial status {part['status']}")
        # Both ranks stopped after the same step: each has exactly its rows of step 0.
        ranks = sorted(set(part["steps"]["rank"]))
        check(ranks == [0, 1] and set(part["steps"]["step"]) == {0}, f"{mode}: steps {part['steps']}")
        check(os.path.exists(os.path.join(path + ".checkpoint", "rank1.step1.state")), f"{mode}: no rank 1 state")
        rc, out = run(["--resume", path], ranks=2)
        check(rc == 0, f"{mode}: resume exit {rc}\n{out}")
        final = tables(path)
        same(ref, final, f"{mode}: resumed on 2 ranks")
        each_request_once(final, mode, 6)
        no_leftovers(path, mode)


{"signal": case_signal, "second": case_second, "kill": case_kill, "refuse": case_refuse, "mpi": case_mpi}[case]()
if failures:
    print("\n".join(failures[:40]))
    sys.exit(1)
print(f"test_resume {case}: ok")
