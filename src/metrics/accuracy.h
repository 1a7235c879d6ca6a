#pragma once
// Accuracy of a skipping run against the full model on the same inputs (docs/architecture.md §5):
// top-1 agreement, KL(full‖skip), perplexity of both, greedy-generation agreement, each with
// a bootstrap interval over the requests' units (metrics/bootstrap.h).

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "metrics/bootstrap.h"

namespace semskip {

// Sums over one request's positions; ratios are formed over requests so that every token
// weighs the same.
struct RequestAccuracy {
  int64_t n_positions = 0;     // positions compared
  int64_t n_top1_match = 0;    // argmax(full) == argmax(skip)
  double kl_sum = 0.0;         // Σ_t KL(p_full,t ‖ p_skip,t), nats
  int64_t n_targets = 0;       // positions with a next-token target
  double nll_full_sum = 0.0;   // Σ −log p_full(target), nats
  double nll_skip_sum = 0.0;   // Σ −log p_skip(target), nats
  // Greedy generation (only when generated): tokens compared and the shared prefix.
  int64_t n_generated = 0;
  int64_t matched_prefix = 0;
  bool exact_match = false;
};

// logits_full, logits_skip: [T, V] (any float dtype, any device); targets: int64 [T] with the
// next token of each position, or -1 where there is none (the last position). Undefined
// targets skip the perplexity sums.
RequestAccuracy compare_logits(const at::Tensor& logits_full, const at::Tensor& logits_skip,
                               const at::Tensor& targets);

// Greedy continuations of the same prompt: exact match and matched-prefix length.
void compare_generations(const std::vector<int64_t>& full, const std::vector<int64_t>& skip,
                         RequestAccuracy& acc);

// Aggregates of a set of requests, with intervals.
struct AccuracySummary {
  int64_t n_requests = 0;
  int64_t n_positions = 0;
  Interval top1_agreement;   // fraction
  Interval kl;               // mean nats per position
  Interval ppl_full;         // exp(mean NLL) of the full model
  Interval ppl_skip;         // exp(mean NLL) with skipping
  Interval gen_exact_match;  // fraction of requests (generation only)
  Interval gen_matched_prefix;  // mean tokens (generation only)
  bool has_generation = false;
};

AccuracySummary summarize_accuracy(const std::vector<RequestAccuracy>& requests, int n_boot = 1000,
                                   uint64_t seed = 0);
// The same with intervals over `boot`'s units (its items are `requests`, in order).
AccuracySummary summarize_accuracy(const std::vector<RequestAccuracy>& requests, const ClusterBootstrap& boot);

}  // namespace semskip
