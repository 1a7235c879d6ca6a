#pragma once
// Evaluator: runs a workload through the full model and through each skip policy on the same
// inputs, and gathers what a report needs: FLOPs (full-equivalent, executed, overhead),
// per-layer skip counts, cache statistics, accuracy per request, time per phase.
//
// Teacher-forced requests (prompt only) are scored position by position; with
// max_new_tokens > 0 each request's prompt is also continued greedily by both runs and the
// continuations compared. Requests run in micro-batches of `batch` sequences (left-padded);
// a policy's cache sees the steps in order, so lookups of a step see every earlier step.
//
// Distributed (docs/architecture.md §4), each rank evaluates its own shard of the requests and every
// rank steps in lockstep: one allgather per step tells every rank whether any rank has work
// left and where its rows sit in the step's union micro-batch; a rank without requests takes
// empty steps (zero sequences) until all are done, so it joins every collective of the full
// model (expert parallelism) and of the policies (distributed caches, sync global). The greedy
// continuation of a step runs as many decode steps on every rank (an allreduce per decode
// step); a rank whose sequences have all stopped decodes empty steps. Each step's full run and
// each policy's run is timed and its collectives attributed to it.
//
// Interruption and resumption (RunControl): at each step boundary every rank says whether it
// wishes to stop, in the same allgather that starts the step, so the ranks stop together at the
// first boundary where any of them asked, even when a signal reached only some. A checkpoint
// callback sees the results so far at a boundary (every N steps, and when stopping); a resumed
// run starts at the step after the checkpoint with the results and the policies' state of that
// boundary restored, and continues exactly as the uninterrupted run would have.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/comm_totals.h"
#include "engine/skip_engine.h"
#include "metrics/accuracy.h"
#include "metrics/flop_counter.h"
#include "skip/skip_policy.h"
#include "workloads/request.h"

namespace semskip {

class Transformer;
class Communicator;
class ExpertParallel;

struct EvalOptions {
  int64_t batch = 1;
  int64_t max_new_tokens = 0;
  int64_t eos_token = -1;  // generation stops at it (−1: never)
  RowExec row_exec = RowExec::gather;  // how the policies' steps execute skipping layers (--skip-exec)
};

// The ranks of a distributed evaluation; the defaults are one process.
struct EvalDist {
  Communicator* world = nullptr;  // every rank of the run, in lockstep; null: one process
  ExpertParallel* ep = nullptr;   // MoE layers expert-parallel over its group; null: local
  // Communicators whose traffic is attributed to the steps that cause it (the world, the EP
  // group, the caches' communicator); the caches' traffic counts when theirs is listed.
  std::vector<Communicator*> counted;
};

// One request's outcome under one policy.
struct RequestRecord {
  int64_t request_id = 0;
  int rank = 0;                 // the rank that ran it
  int64_t step = 0;             // the micro-batch step it ran in
  int64_t n_tokens = 0;         // prompt tokens
  int64_t n_block_skips = 0;    // (token, layer) block skips, prompt and generated
  int64_t n_mlp_skips = 0;
  RequestAccuracy accuracy;
};

// One micro-batch step (prefill and its decode steps) under one policy.
struct StepRecord {
  int64_t step = 0;
  int rank = 0;
  int64_t n_requests = 0;
  int64_t n_tokens = 0;  // prompt + generated tokens processed
  int64_t flops_full = 0;
  int64_t flops_executed = 0;  // the model's own ops, causal convention
  int64_t flops_overhead = 0;  // key projection, lookup, KV propagation
  int64_t t_full_ns = 0;
  int64_t t_skip_ns = 0;
  int64_t t_lookup_ns = 0;
  int64_t t_comm_ns = 0;       // in collectives during the policy's run of the step
  int64_t comm_sent_bytes = 0;
  int64_t comm_recv_bytes = 0;
  int64_t t_full_comm_ns = 0;  // in collectives during the full model's run of the step
  // This rank's cache lookups of the step (prefill and decode): how the sync rule decided.
  int64_t cache_lookups = 0, cache_hits = 0, cache_vetoed = 0;
  int64_t cache_size = 0;  // entries this rank holds after the step: the cache's size over time
};

struct PolicyResult {
  std::string policy;   // descriptor
  std::string index;    // index descriptor ("" without a cache)
  FlopCounter flops_full;
  FlopCounter flops_skip;
  LayerCounts layers;
  CacheStats cache;
  std::vector<RequestRecord> requests;
  std::vector<StepRecord> steps;
  int64_t t_full_ns = 0, t_skip_ns = 0, t_lookup_ns = 0, t_calib_ns = 0;
  int rank = 0;
  CommTotals comm;       // collectives of the policy's runs
  CommTotals comm_full;  // collectives of the full model's runs (the same for every policy)
  EpStats ep;            // expert-parallel work of the policy's runs
};

// What a policy needs of the run, checked in one place (the run's decision on rank 0 and
// Evaluator::run): calibration requests for needs_calibration(), teacher-forced evaluation
// (max_new_tokens 0) for needs_full_states() and kv=exact. semskip::Error naming the policy and the option.
void check_policy_requirements(const SkipPolicy& policy, bool has_calibration, int64_t max_new_tokens);

// How a run may stop early and where it starts (`semskip run --resume`); the defaults run every
// step from the first.
struct RunControl {
  // The run continues at this step; the results of the steps before it are `restored` (one
  // per policy, in the order of the policies, as the checkpoint at that boundary saw them), and
  // the policies' state is restored by the caller before run().
  int64_t first_step = 0;
  std::vector<PolicyResult> restored;
  // This rank's wish to stop at the boundary after `steps_done` steps; null: never.
  std::function<bool(int64_t steps_done)> stop_requested;
  // Called on every rank (collective: it may gather) at the boundary after `steps_done` steps
  // when steps_done is a multiple of checkpoint_every (0: never), and at the boundary where the
  // ranks stop. `so_far`: the results of steps 0..steps_done−1 with their cache counters.
  int64_t checkpoint_every = 0;
  std::function<void(int64_t steps_done, const std::vector<PolicyResult>& so_far)> checkpoint;
};

struct RunOutcome {
  std::vector<PolicyResult> results;
  int64_t steps_done = 0;  // steps run, restored ones included
  bool complete = true;    // false: the ranks stopped on request before the last step
};

class Evaluator {
 public:
  Evaluator(const Transformer& model, EvalOptions options, EvalDist dist = {});

  // Residual streams of the full model on `requests` (their prompts): the calibration set
  // of policies that need one. Local to this process, unless expert-parallel (dist_.ep, the
  // ranks holding only their experts): then collective over the group, every rank of it calling
  // it with the same requests (the MoE layers' all-to-alls need every rank).
  // With mlp_out, each layer's MLP output too (CalibrationSet::mlp_out).
  CalibrationSet calibrate(const std::vector<Request>& requests, bool mlp_out = false) const;

  // Runs every policy over `requests` (this rank's shard); results in the order of
  // `policies`. A thin loop over micro-batch steps: each step runs the full model once and then
  // each policy on the same inputs (a step runner in evaluator.cpp). Collective when distributed: every rank calls it with the same policies.
  std::vector<PolicyResult> run(const std::vector<Request>& requests,
                                std::vector<std::unique_ptr<SkipPolicy>>& policies,
                                const CalibrationSet& calib) const;
  // The same under `control`: stops at a boundary on request, checkpoints, resumes.
  RunOutcome run(const std::vector<Request>& requests, std::vector<std::unique_ptr<SkipPolicy>>& policies,
                 const CalibrationSet& calib, const RunControl& control) const;

 private:
  const Transformer& model_;
  EvalOptions opts_;
  EvalDist dist_;
  SkipEngine engine_;        // expert-parallel when dist_.ep is set
  SkipEngine local_engine_;  // always local: calibration without expert parallelism
};

}  // namespace semskip
