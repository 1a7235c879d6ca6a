#pragma once
// Evaluator: runs a workload through the full model and through each skip policy on the same
// inputs, and gathers what a report needs: FLOPs (full-equivalent, executed, overhead),
// per-layer skip counts, cache statistics, accuracy per request, time per phase.
//
// Teacher-forced requests (prompt only) are scored position by position; with
// max_new_tokens > 0 each request's prompt is also continued greedily by both runs and the
// continuations compared. Requests run in micro-batches of `batch` sequences (left-padded);
// a policy's cache sees the steps in order, so lookups of a step see every earlier step.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "engine/skip_engine.h"
#include "metrics/accuracy.h"
#include "metrics/flop_counter.h"
#include "skip/skip_policy.h"
#include "workloads/request.h"

namespace semskip {

class Transformer;

struct EvalOptions {
  int64_t batch = 1;
  int64_t max_new_tokens = 0;
  int64_t eos_token = -1;  // generation stops at it (−1: never)
};

// One request's outcome under one policy.
struct RequestRecord {
  int64_t request_id = 0;
  int64_t step = 0;             // the micro-batch step it ran in
  int64_t n_tokens = 0;         // prompt tokens
  int64_t n_block_skips = 0;    // (token, layer) block skips, prompt and generated
  int64_t n_mlp_skips = 0;
  RequestAccuracy accuracy;
};

// One micro-batch step (prefill and its decode steps) under one policy.
struct StepRecord {
  int64_t step = 0;
  int64_t n_requests = 0;
  int64_t n_tokens = 0;  // prompt + generated tokens processed
  int64_t flops_full = 0;
  int64_t flops_executed = 0;  // the model's own ops, causal convention
  int64_t flops_overhead = 0;  // key projection, lookup, KV propagation
  int64_t t_full_ns = 0;
  int64_t t_skip_ns = 0;
  int64_t t_lookup_ns = 0;
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
};

class Evaluator {
 public:
  Evaluator(const Transformer& model, EvalOptions options);

  // Residual streams of the full model on `requests` (their prompts): the calibration set
  // of policies that need one.
  CalibrationSet calibrate(const std::vector<Request>& requests) const;

  // Runs every policy over `requests`; results in the order of `policies`.
  std::vector<PolicyResult> run(const std::vector<Request>& requests,
                                std::vector<std::unique_ptr<SkipPolicy>>& policies,
                                const CalibrationSet& calib) const;

 private:
  const Transformer& model_;
  EvalOptions opts_;
  SkipEngine engine_;
};

}  // namespace semskip
