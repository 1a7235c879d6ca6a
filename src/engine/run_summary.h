#pragma once
// From gathered results to the tables of a `semskip run` report (reports/SCHEMA.md, section
// `run`): /summary one row per policy, /per_layer, /per_rank, /requests, /steps. Figures are
// reduced over ranks: FLOPs and counts summed, accuracy over every request, times the slowest
// rank's (the headline) and the mean over ranks. The columns of each table are its records'
// field tables (engine/record_fields.h).

#include <string>
#include <vector>

#include "engine/run_gather.h"
#include "reports/table.h"

namespace semskip {

struct PolicySummary {
  std::string policy, index;
  int64_t n_ranks = 1;
  int64_t n_requests = 0, n_tokens = 0;
  double hit_rate = 0;         // cache hits / lookups (0 without a cache)
  double skip_rate = 0;        // (token, layer) blocks skipped / run + skipped
  int64_t flops_full = 0, flops_executed = 0, flops_overhead = 0;
  double flops_saved_gross = 0;  // 1 − executed / full
  double flops_saved_net = 0;    // 1 − (executed + overhead) / full
  AccuracySummary accuracy;
  CacheStats cache;              // the job's cache (see summarize)
  // Seconds: the slowest rank's, and the mean over ranks.
  double t_full_s = 0, t_skip_s = 0, t_lookup_s = 0, t_comm_s = 0;
  double t_full_s_mean = 0, t_skip_s_mean = 0, t_lookup_s_mean = 0, t_comm_s_mean = 0;
  double speedup = 0;            // t_full / t_skip
  double tokens_per_s = 0;       // n_tokens / t_skip: the job's throughput with skipping
  int64_t comm_sent_bytes = 0;   // Σ over ranks, the policy's runs
};

// `replicated_cache`: every rank holds the same entries, so the job's cache is rank 0's
// (insertions, evictions, size) with everyone's lookups and hits; otherwise (local, sharded)
// the ranks' caches add up.
PolicySummary summarize(const GatheredResult& r, int n_boot, uint64_t seed, bool replicated_cache = false);

report::Table summary_table(const std::vector<PolicySummary>& rows);
report::Table per_layer_table(const std::vector<GatheredResult>& results);
report::Table per_rank_table(const std::vector<GatheredResult>& results, const std::vector<std::string>& hosts);
report::Table requests_table(const std::vector<GatheredResult>& results);
report::Table steps_table(const std::vector<GatheredResult>& results);

// The table `semskip run` prints: policy, hit rate, gross and net FLOPs saved, top-1
// agreement with its interval, KL, perplexities.
std::string format_summary_text(const std::vector<PolicySummary>& rows);

}  // namespace semskip
