#pragma once
// The figures of `semskip serve-bench`, computed from the server's RequestRecords as vLLM's
// serving benchmark computes them (benchmarks/serve.py, calculate_metrics), so that the
// numbers of the two mean the same:
//   TTFT  first_token − arrival                       (one per completed request)
//   TPOT  (E2EL − TTFT) / (output tokens − 1)         (requests of one output token left out;
//                                                      for goodput they count as TPOT 0)
//   ITL   every gap between consecutive output tokens (all requests pooled)
//   E2EL  finish − arrival
// Each has mean, median, population standard deviation and the asked percentiles (linear
// interpolation between order statistics, numpy's default), in milliseconds; an empty sample
// gives 0, as numpy on vLLM's `or 0`. Goodput counts the requests that meet every given SLO
// (value >= the request's figure), per second of the benchmark. Throughputs divide by the
// benchmark's duration. Also here: the agreement of a policy's outputs with policy none's for
// the same requests, the printed result block and the result JSON with vLLM's field names.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/records.h"

namespace semskip::serve {

enum class LatencyMetric { ttft, tpot, itl, e2el };
const char* latency_metric_name(LatencyMetric m);  // "ttft" ...

// vLLM's defaults.
inline constexpr const char* kDefaultPercentileMetrics = "ttft,tpot,itl";
inline constexpr const char* kDefaultMetricPercentiles = "99";

// "ttft,tpot,itl,e2el" (any subset, any order, no repeats); semskip::Error naming
// --percentile-metrics and the unknown or repeated name.
std::vector<LatencyMetric> parse_percentile_metrics(std::string_view csv);
// "50,90,99": each a number in [0, 100]; semskip::Error naming --metric-percentiles.
std::vector<double> parse_metric_percentiles(std::string_view csv);

// Service-level objectives in milliseconds; a negative value: not given.
struct GoodputSlo {
  double ttft_ms = -1.0, tpot_ms = -1.0, e2el_ms = -1.0;
  bool any() const { return ttft_ms >= 0.0 || tpot_ms >= 0.0 || e2el_ms >= 0.0; }
  std::string describe() const;  // "ttft:200 tpot:50", "" without any
};
// {"ttft:200", "tpot:50"}: keys ttft | tpot | e2el, each once, values non-negative numbers;
// semskip::Error naming --goodput and the pair.
GoodputSlo parse_goodput(const std::vector<std::string>& pairs);

// numpy.percentile(values, p) with the default linear method; 0 for an empty sample.
double percentile_linear(std::vector<double> values, double p);

struct LatencyStats {
  double mean_ms = 0.0, median_ms = 0.0, std_ms = 0.0;
  std::vector<std::pair<double, double>> percentiles_ms;  // (p, value)
};
// Of a sample in seconds.
LatencyStats latency_stats(const std::vector<double>& values_s, const std::vector<double>& percentiles);

// One completed request's figures in seconds.
struct RequestLatency {
  double ttft_s = 0.0;
  double tpot_s = 0.0;     // 0 when it has one output token
  double e2el_s = 0.0;
  std::vector<double> itl_s;  // [output tokens − 1]
};
// semskip::Error naming the request when its times are missing or out of order.
RequestLatency request_latency(const RequestRecord& r);

struct BenchMetrics {
  int64_t completed = 0, failed = 0;
  int64_t total_input = 0, total_output = 0;  // of the completed requests
  double duration_s = 0.0;
  double request_throughput = 0.0;      // completed / duration, req/s
  double request_goodput = 0.0;         // good / duration, req/s (0 without an SLO)
  bool has_goodput = false;
  double output_throughput = 0.0;       // tok/s
  double total_token_throughput = 0.0;  // (input + output) / duration, tok/s
  LatencyStats ttft, tpot, itl, e2el;
  const LatencyStats& stats(LatencyMetric m) const;
};

// duration_s > 0: the benchmark's duration (first step's start to last token).
BenchMetrics compute_bench_metrics(const std::vector<RequestRecord>& records, double duration_s,
                                   const std::vector<double>& percentiles, const GoodputSlo& slo);

// A policy's outputs against policy none's, by request id, over the requests completed in both.
struct OutputAgreement {
  int64_t n_compared = 0;
  int64_t n_exact = 0;             // identical output token sequences
  int64_t matched_prefix_sum = 0;  // Σ tokens of the shared leading prefix
  double exact_match() const { return n_compared ? double(n_exact) / double(n_compared) : 0.0; }
  double matched_prefix_mean() const { return n_compared ? double(matched_prefix_sum) / double(n_compared) : 0.0; }
};
// semskip::Error when an id appears twice in either list.
OutputAgreement compare_outputs(const std::vector<RequestRecord>& reference, const std::vector<RequestRecord>& records);

// vLLM's printed block: "============ Serving Benchmark Result ============", the counts and
// throughputs (goodput when an SLO was given, rate and concurrency when set), then a section per
// selected metric with its mean, median and percentiles, and a closing rule. request_rate:
// +inf for all at once; max_concurrency 0: unlimited.
std::string format_result_block(const BenchMetrics& m, const std::vector<LatencyMetric>& selected,
                                double request_rate, int64_t max_concurrency);

// semskip's fields of one policy's result beside vLLM's.
struct ResultExtras {
  std::string policy;       // descriptor
  std::string skip_exec;    // gather | bucket | mask
  double hit_rate = 0.0;    // applied hits / lookups
  double flops_saved_net = 0.0;  // fraction of the full model's FLOPs, overheads charged
  OutputAgreement agreement;  // against policy none
  nlohmann::json run;       // request_rate, burstiness, seed, ...: the settings of the run
};

// One policy's result object: vLLM's fields (duration, completed, failed, total_input_tokens,
// total_output_tokens, request_throughput, request_goodput (null without an SLO),
// output_throughput, total_token_throughput, and mean/median/std/p<N>_<metric>_ms for all four
// metrics), semskip's (policy, skip_exec, hit_rate, flops_saved_net, exact_match,
// matched_prefix_mean, n_compared, and `run`'s keys); with `detailed`, per request in record
// order: request_ids, input_lens, output_lens, ttfts (s), itls (lists, s), generated_texts
// (by `decode`, "" for failed requests), errors.
nlohmann::ordered_json result_json(const BenchMetrics& m, const ResultExtras& extras,
                                    const std::vector<RequestRecord>& records, bool detailed,
                                   const std::function<std::string(const std::vector<int64_t>&)>& decode);

// Writes `doc` to `path` through `<path>.tmp` and a rename: never a partial file under `path`.
// semskip::Error naming the path when it cannot be written.
void write_json_file(const std::string& path, const nlohmann::ordered_json& doc);

}  // namespace semskip::serve
