#pragma once
// From PolicyResults to the tables of a `semskip run` report (reports/SCHEMA.md, section
// `run`): /summary one row per policy, /per_layer, /requests, /steps.

#include <string>
#include <vector>

#include "engine/evaluator.h"
#include "reports/table.h"

namespace semskip {

struct PolicySummary {
  std::string policy, index;
  int64_t n_requests = 0, n_tokens = 0;
  double hit_rate = 0;         // cache hits / lookups (0 without a cache)
  double skip_rate = 0;        // (token, layer) blocks skipped / run + skipped
  int64_t flops_full = 0, flops_executed = 0, flops_overhead = 0;
  double flops_saved_gross = 0;  // 1 − executed / full
  double flops_saved_net = 0;    // 1 − (executed + overhead) / full
  AccuracySummary accuracy;
  CacheStats cache;
  double t_full_s = 0, t_skip_s = 0, t_lookup_s = 0;
  double speedup = 0;            // t_full / t_skip
};

PolicySummary summarize(const PolicyResult& r, int n_boot, uint64_t seed);

report::Table summary_table(const std::vector<PolicySummary>& rows);
report::Table per_layer_table(const std::vector<PolicyResult>& results);
report::Table requests_table(const std::vector<PolicyResult>& results);
report::Table steps_table(const std::vector<PolicyResult>& results);

// The table `semskip run` prints: policy, hit rate, gross and net FLOPs saved, top-1
// agreement with its interval, KL, perplexities.
std::string format_summary_text(const std::vector<PolicySummary>& rows);

}  // namespace semskip
