// Serving benchmark figures as vLLM computes them (see bench_metrics.h).
#include "serve/bench_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/strings.h"
#include "core/timing.h"

namespace semskip::serve {

namespace {

constexpr LatencyMetric kAllMetrics[] = {LatencyMetric::ttft, LatencyMetric::tpot, LatencyMetric::itl,
                                         LatencyMetric::e2el};

// vLLM's key of percentile p: "99" for 99.0, "99.9" for 99.9.
std::string percentile_word(double p) {
  if (std::floor(p) == p) return fmt::format("{}", static_cast<int64_t>(p));
  return fmt::format("{}", p);
}

const char* metric_label(LatencyMetric m) {
  switch (m) {
    case LatencyMetric::ttft: return "TTFT";
    case LatencyMetric::tpot: return "TPOT";
    case LatencyMetric::itl: return "ITL";
    case LatencyMetric::e2el: return "E2EL";
  }
  return "";
}

const char* metric_header(LatencyMetric m) {
  switch (m) {
    case LatencyMetric::ttft: return "Time to First Token";
    case LatencyMetric::tpot: return "Time per Output Token (excl. 1st token)";
    case LatencyMetric::itl: return "Inter-token Latency";
    case LatencyMetric::e2el: return "End-to-end Latency";
  }
  return "";
}

}  // namespace

const char* latency_metric_name(LatencyMetric m) {
  switch (m) {
    case LatencyMetric::ttft: return "ttft";
    case LatencyMetric::tpot: return "tpot";
    case LatencyMetric::itl: return "itl";
    case LatencyMetric::e2el: return "e2el";
  }
  return "";
}

std::vector<LatencyMetric> parse_percentile_metrics(std::string_view csv) {
  std::vector<LatencyMetric> out;
  for (const std::string& raw : split(csv, ',')) {
    const std::string name = trim(raw);
    bool found = false;
    for (LatencyMetric m : kAllMetrics) {
      if (name != latency_metric_name(m)) continue;
      SEMSKIP_THROW_IF_NOT_MSG(std::find(out.begin(), out.end(), m) == out.end(),
                               "--percentile-metrics '{}': '{}' is given twice", csv, name);
      out.push_back(m);
      found = true;
    }
    SEMSKIP_THROW_IF_NOT_MSG(found, "--percentile-metrics '{}': unknown metric '{}' (allowed: ttft, tpot, itl, e2el)",
                             csv, name);
  }
  return out;
}

std::vector<double> parse_metric_percentiles(std::string_view csv) {
  std::vector<double> out;
  for (const std::string& raw : split(csv, ',')) {
    const double p = parse_double(raw, fmt::format("--metric-percentiles '{}'", csv));
    SEMSKIP_THROW_IF_NOT_MSG(p >= 0.0 && p <= 100.0, "--metric-percentiles '{}': {} is not in [0, 100]", csv, p);
    out.push_back(p);
  }
  return out;
}

std::string GoodputSlo::describe() const {
  std::vector<std::string> parts;
  if (ttft_ms >= 0.0) parts.push_back(fmt::format("ttft:{}", ttft_ms));
  if (tpot_ms >= 0.0) parts.push_back(fmt::format("tpot:{}", tpot_ms));
  if (e2el_ms >= 0.0) parts.push_back(fmt::format("e2el:{}", e2el_ms));
  return join(parts, " ");
}

GoodputSlo parse_goodput(const std::vector<std::string>& pairs) {
  GoodputSlo slo;
  for (const std::string& pair : pairs) {
    const std::vector<std::string> kv = split(pair, ':');
    SEMSKIP_THROW_IF_NOT_MSG(kv.size() == 2, "--goodput '{}': expected KEY:VALUE with KEY ttft, tpot or e2el and "
                             "VALUE in milliseconds", pair);
    const std::string key = trim(kv[0]);
    double* slot = key == "ttft" ? &slo.ttft_ms : key == "tpot" ? &slo.tpot_ms : key == "e2el" ? &slo.e2el_ms : nullptr;
    SEMSKIP_THROW_IF_NOT_MSG(slot != nullptr, "--goodput '{}': unknown metric '{}' (allowed: ttft, tpot, e2el)", pair,
                             key);
    SEMSKIP_THROW_IF_NOT_MSG(*slot < 0.0, "--goodput '{}': '{}' is given twice", pair, key);
    const double v = parse_double(kv[1], fmt::format("--goodput '{}'", pair));
    SEMSKIP_THROW_IF_NOT_MSG(std::isfinite(v) && v >= 0.0, "--goodput '{}': {} ms must be a non-negative number",
                             pair, v);
    *slot = v;
  }
  return slo;
}

double percentile_linear(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  return percentile(values, p);  // numpy's linear interpolation (core/timing.h)
}

LatencyStats latency_stats(const std::vector<double>& values_s, const std::vector<double>& percentiles) {
  LatencyStats s;
  if (!values_s.empty()) {
    const double n = static_cast<double>(values_s.size());
    const double mean = std::accumulate(values_s.begin(), values_s.end(), 0.0) / n;
    double ss = 0.0;
    for (double v : values_s) ss += (v - mean) * (v - mean);
    s.mean_ms = mean * 1000.0;
    s.std_ms = std::sqrt(ss / n) * 1000.0;
    s.median_ms = percentile_linear(values_s, 50.0) * 1000.0;
  }
  for (double p : percentiles) s.percentiles_ms.emplace_back(p, percentile_linear(values_s, p) * 1000.0);
  return s;
}

RequestLatency request_latency(const RequestRecord& r) {
  const size_t n_out = r.output_tokens.size();
  SEMSKIP_THROW_IF_NOT_MSG(n_out >= 1 && r.token_times_s.size() == n_out,
                           "request {}: {} output tokens with {} token times", r.id, n_out, r.token_times_s.size());
  SEMSKIP_THROW_IF_NOT_MSG(r.first_token_s >= r.arrival_s && r.finish_s >= r.first_token_s,
                           "request {}: arrival {} s, first token {} s, finish {} s are out of order", r.id,
                           r.arrival_s, r.first_token_s, r.finish_s);
  RequestLatency l;
  l.ttft_s = r.first_token_s - r.arrival_s;
  l.e2el_s = r.finish_s - r.arrival_s;
  if (n_out > 1) l.tpot_s = (l.e2el_s - l.ttft_s) / static_cast<double>(n_out - 1);
  for (size_t i = 1; i < n_out; ++i) {
    const double gap = r.token_times_s[i] - r.token_times_s[i - 1];
    SEMSKIP_THROW_IF_NOT_MSG(gap >= 0.0, "request {}: output token {} at {} s precedes token {} at {} s", r.id, i,
                             r.token_times_s[i], i - 1, r.token_times_s[i - 1]);
    l.itl_s.push_back(gap);
  }
  return l;
}

const LatencyStats& BenchMetrics::stats(LatencyMetric m) const {
  switch (m) {
    case LatencyMetric::ttft: return ttft;
    case LatencyMetric::tpot: return tpot;
    case LatencyMetric::itl: return itl;
    case LatencyMetric::e2el: return e2el;
  }
  return ttft;
}

BenchMetrics compute_bench_metrics(const std::vector<RequestRecord>& records, double duration_s,
                                   const std::vector<double>& percentiles, const GoodputSlo& slo) {
  SEMSKIP_THROW_IF_NOT_MSG(duration_s > 0.0 && std::isfinite(duration_s), "benchmark duration {} s must be > 0",
                           duration_s);
  BenchMetrics m;
  m.duration_s = duration_s;
  std::vector<double> ttfts, tpots, itls, e2els;
  int64_t good = 0;
  for (const RequestRecord& r : records) {
    if (!r.ok()) {
      ++m.failed;
      continue;
    }
    const RequestLatency l = request_latency(r);
    ++m.completed;
    m.total_input += r.n_prompt_tokens;
    m.total_output += static_cast<int64_t>(r.output_tokens.size());
    ttfts.push_back(l.ttft_s);
    if (r.output_tokens.size() > 1) tpots.push_back(l.tpot_s);
    itls.insert(itls.end(), l.itl_s.begin(), l.itl_s.end());
    e2els.push_back(l.e2el_s);
    // As vLLM: the SLO holds when it is >= the figure; a one-token request has TPOT 0.
    const bool ok = (slo.ttft_ms < 0.0 || slo.ttft_ms / 1000.0 >= l.ttft_s) &&
                    (slo.tpot_ms < 0.0 || slo.tpot_ms / 1000.0 >= l.tpot_s) &&
                    (slo.e2el_ms < 0.0 || slo.e2el_ms / 1000.0 >= l.e2el_s);
    if (ok) ++good;
  }
  m.has_goodput = slo.any();
  m.request_throughput = static_cast<double>(m.completed) / duration_s;
  m.request_goodput = m.has_goodput ? static_cast<double>(good) / duration_s : 0.0;
  m.output_throughput = static_cast<double>(m.total_output) / duration_s;
  m.total_token_throughput = static_cast<double>(m.total_input + m.total_output) / duration_s;
  m.ttft = latency_stats(ttfts, percentiles);
  m.tpot = latency_stats(tpots, percentiles);
  m.itl = latency_stats(itls, percentiles);
  m.e2el = latency_stats(e2els, percentiles);
  return m;
}

OutputAgreement compare_outputs(const std::vector<RequestRecord>& reference, const std::vector<RequestRecord>& records) {
  std::map<int64_t, const RequestRecord*> by_id;
  for (const RequestRecord& r : reference) {
    SEMSKIP_THROW_IF_NOT_MSG(by_id.emplace(r.id, &r).second, "output agreement: request id {} twice in the reference",
                             r.id);
  }
  std::set<int64_t> seen;
  OutputAgreement a;
  for (const RequestRecord& r : records) {
    SEMSKIP_THROW_IF_NOT_MSG(seen.insert(r.id).second, "output agreement: request id {} twice", r.id);
    auto it = by_id.find(r.id);
    if (it == by_id.end() || !r.ok() || !it->second->ok()) continue;
    const std::vector<int64_t>& ref = it->second->output_tokens;
    const std::vector<int64_t>& out = r.output_tokens;
    size_t k = 0;
    while (k < ref.size() && k < out.size() && ref[k] == out[k]) ++k;
    ++a.n_compared;
    a.matched_prefix_sum += static_cast<int64_t>(k);
    if (ref == out) ++a.n_exact;
  }
  return a;
}

std::string format_result_block(const BenchMetrics& m, const std::vector<LatencyMetric>& selected,
                                double request_rate, int64_t max_concurrency) {
  std::string s;
  auto line_i = [&](const char* label, int64_t v) { s += fmt::format("{:<40} {:<10}\n", label, v); };
  auto line_f = [&](const std::string& label, double v) { s += fmt::format("{:<40} {:<10.2f}\n", label, v); };
  s += fmt::format("{:=^50}\n", " Serving Benchmark Result ");
  line_i("Successful requests:", m.completed);
  line_i("Failed requests:", m.failed);
  if (max_concurrency > 0) line_i("Maximum request concurrency:", max_concurrency);
  if (!std::isinf(request_rate)) line_f("Request rate configured (RPS):", request_rate);
  line_f("Benchmark duration (s):", m.duration_s);
  line_i("Total input tokens:", m.total_input);
  line_i("Total generated tokens:", m.total_output);
  line_f("Request throughput (req/s):", m.request_throughput);
  if (m.has_goodput) line_f("Request goodput (req/s):", m.request_goodput);
  line_f("Output token throughput (tok/s):", m.output_throughput);
  line_f("Total Token throughput (tok/s):", m.total_token_throughput);
  for (LatencyMetric metric : selected) {
    const LatencyStats& st = m.stats(metric);
    s += fmt::format("{:-^50}\n", metric_header(metric));
    line_f(fmt::format("Mean {} (ms):", metric_label(metric)), st.mean_ms);
    line_f(fmt::format("Median {} (ms):", metric_label(metric)), st.median_ms);
    for (const auto& [p, v] : st.percentiles_ms) line_f(fmt::format("P{} {} (ms):", percentile_word(p), metric_label(metric)), v);
  }
  s += std::string(50, '=') + "\n";
  return s;
}

nlohmann::ordered_json result_json(const BenchMetrics& m, const ResultExtras& extras,
                                    const std::vector<RequestRecord>& records, bool detailed,
                                   const std::function<std::string(const std::vector<int64_t>&)>& decode) {
  nlohmann::ordered_json j;
  j["duration"] = m.duration_s;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input;
  j["total_output_tokens"] = m.total_output;
  j["request_throughput"] = m.request_throughput;
  j["request_goodput"] = m.has_goodput ? nlohmann::ordered_json(m.request_goodput) : nlohmann::ordered_json(nullptr);
  j["output_throughput"] = m.output_throughput;
  j["total_token_throughput"] = m.total_token_throughput;
  for (LatencyMetric metric : kAllMetrics) {
    const std::string name = latency_metric_name(metric);
    const LatencyStats& st = m.stats(metric);
    j["mean_" + name + "_ms"] = st.mean_ms;
    j["median_" + name + "_ms"] = st.median_ms;
    j["std_" + name + "_ms"] = st.std_ms;
    for (const auto& [p, v] : st.percentiles_ms) j["p" + percentile_word(p) + "_" + name + "_ms"] = v;
  }
  j["policy"] = extras.policy;
  j["skip_exec"] = extras.skip_exec;
  j["hit_rate"] = extras.hit_rate;
  j["flops_saved_net"] = extras.flops_saved_net;
  j["exact_match"] = extras.agreement.exact_match();
  j["matched_prefix_mean"] = extras.agreement.matched_prefix_mean();
  j["n_compared"] = extras.agreement.n_compared;
  if (extras.run.is_object()) {
    for (const auto& [k, v] : extras.run.items()) j[k] = v;
  }
  if (detailed) {
    nlohmann::ordered_json ids = nlohmann::ordered_json::array(), in = nlohmann::ordered_json::array(),
                           out = nlohmann::ordered_json::array(), ttfts = nlohmann::ordered_json::array(),
                           itls = nlohmann::ordered_json::array(), texts = nlohmann::ordered_json::array(),
                           errors = nlohmann::ordered_json::array();
    for (const RequestRecord& r : records) {
      ids.push_back(r.id);
      in.push_back(r.n_prompt_tokens);
      if (r.ok()) {
        const RequestLatency l = request_latency(r);
        out.push_back(static_cast<int64_t>(r.output_tokens.size()));
        ttfts.push_back(l.ttft_s);
        itls.push_back(l.itl_s);
        texts.push_back(decode ? decode(r.output_tokens) : std::string());
        errors.push_back("");
      } else {
        // As vLLM: a failed request has output length 0, TTFT 0, no gaps and its error.
        out.push_back(0);
        ttfts.push_back(0.0);
        itls.push_back(nlohmann::ordered_json::array());
        texts.push_back("");
        errors.push_back(r.error.empty() ? std::string("not finished") : r.error);
      }
    }
    j["request_ids"] = ids;
    j["input_lens"] = in;
    j["output_lens"] = out;
    j["ttfts"] = ttfts;
    j["itls"] = itls;
    j["generated_texts"] = texts;
    j["errors"] = errors;
  }
  return j;
}

void write_json_file(const std::string& path, const nlohmann::ordered_json& doc) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    SEMSKIP_THROW_IF_NOT_MSG(f.good(), "{}: cannot create the file", tmp);
    f << doc.dump(2) << "\n";
    f.flush();
    if (!f.good()) {
      f.close();
      std::remove(tmp.c_str());
      SEMSKIP_THROW_MSG("{}: writing failed", tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    SEMSKIP_THROW_MSG("{}: cannot rename {} to it: {}", path, tmp, ec.message());
  }
}

}  // namespace semskip::serve
