#pragma once
// Summary statistics of a workload: what `semskip workload stats` prints.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/timing.h"  // percentile, used with these summaries
#include "workloads/load_counters.h"
#include "workloads/workload.h"

namespace semskip {

struct LengthSummary {
  int64_t n = 0;
  double mean = 0, min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// Mean, extremes and percentiles (core/timing.h's percentile) of `values`.
LengthSummary summarize(std::vector<double> values);

struct WorkloadStats {
  int64_t n_requests = 0;
  LengthSummary prompt_tokens, output_tokens, reference_tokens;
  int64_t n_with_reference = 0;
  int64_t n_with_choices = 0;
  int64_t n_groups = 0;  // distinct groups (pairs, templates)
  double last_arrival_s = 0;
  LoadCounters counters;
  double load_seconds = 0;  // wall-clock time of reading and tokenizing, `each` excluded
};

// Reads the workload to its end. `each` (optional) sees every request, e.g. to embed it.
WorkloadStats collect_workload_stats(Workload& w,
                                     const std::function<void(const Request&)>& each = nullptr);
// Human-readable table, one "key: value" a line.
std::string format_workload_stats(const WorkloadStats& s);

}  // namespace semskip
