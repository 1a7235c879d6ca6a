#pragma once
// From gathered results to the tables of a `semskip run` report (reports/SCHEMA.md, section
// `run`): /summary one row per policy, /per_layer, /per_rank, /requests, /steps. Figures are
// reduced over ranks: FLOPs and counts summed, accuracy over every request, times the slowest
// rank's (the headline) and the mean over ranks. The columns of each table are its records'
// field tables (engine/record_fields.h).
//
// Intervals resample the requests' units (documents, conversations; metrics/bootstrap.h): the
// accuracy ratios, and the hit rate, skip rate and net FLOPs saved as ratio estimators over the
// same draws. A request's FLOPs and lookups are its step's (/steps); a step of several requests
// is shared among them in proportion to their prompt tokens (exact with --batch 1).

#include <map>
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
  int64_t flops_insert = 0, flops_train = 0, flops_correction = 0;  // parts of flops_overhead
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
  // What the intervals resample: "document", "conversation" or "request", and how many.
  std::string bootstrap_unit = "request";
  int64_t n_units = 0;
  Interval hit_rate_ci, skip_rate_ci, flops_saved_net_ci;  // values equal hit_rate, skip_rate, flops_saved_net
};

// The unit of each evaluated request (engine/run_requests.h): Request::id → unit key.
struct BootstrapUnits {
  std::string unit = "request";
  std::map<int64_t, std::string> unit_of_id;  // missing ids: each its own unit
};

// `replicated_cache`: every rank holds the same entries, so the job's cache is rank 0's
// (insertions, evictions, size) with everyone's lookups and hits; otherwise (local, sharded)
// the ranks' caches add up.
PolicySummary summarize(const GatheredResult& r, int n_boot, uint64_t seed, bool replicated_cache = false,
                        const BootstrapUnits& units = {});

report::Table summary_table(const std::vector<PolicySummary>& rows);
report::Table per_layer_table(const std::vector<GatheredResult>& results);
report::Table per_rank_table(const std::vector<GatheredResult>& results, const std::vector<std::string>& hosts);
report::Table requests_table(const std::vector<GatheredResult>& results);
report::Table steps_table(const std::vector<GatheredResult>& results);

// The table `semskip run` prints: policy, hit rate, gross and net FLOPs saved (net with its
// interval), top-1 agreement with its interval, KL, perplexities, the cache's capacity; a last
// line names the bootstrap unit and how many there are.
std::string format_summary_text(const std::vector<PolicySummary>& rows);

}  // namespace semskip
