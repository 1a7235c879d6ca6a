// The serving benchmark's figures against values computed by hand from vLLM's definitions
// (benchmarks/serve.py, calculate_metrics; numpy's mean, population std and linear
// percentiles), the output agreement, the printed block and the result JSON read back.
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "serve/bench_metrics.h"

namespace semskip::serve {
namespace {

RequestRecord done(int64_t id, int64_t n_prompt, double arrival, std::vector<double> token_times,
                   std::vector<int64_t> tokens) {
  RequestRecord r;
  r.id = id;
  r.n_prompt_tokens = n_prompt;
  r.arrival_s = arrival;
  r.scheduled_s = arrival;
  r.token_times_s = std::move(token_times);
  r.output_tokens = std::move(tokens);
  r.first_token_s = r.token_times_s.front();
  r.finish_s = r.token_times_s.back();
  r.finish_reason = "length";
  return r;
}

// Three completed requests and one refused:
//   0: arrives 0.0, tokens at 0.1 0.3 0.6  -> TTFT 0.1, E2EL 0.6, TPOT 0.25, ITL 0.2 0.3
//   1: arrives 0.5, one token at 0.7       -> TTFT 0.2, E2EL 0.2, no TPOT, no ITL
//   2: arrives 1.0, tokens at 1.4 1.5      -> TTFT 0.4, E2EL 0.5, TPOT 0.1, ITL 0.1
std::vector<RequestRecord> sample_records() {
  std::vector<RequestRecord> v;
  v.push_back(done(0, 10, 0.0, {0.1, 0.3, 0.6}, {1, 2, 3}));
  v.push_back(done(1, 20, 0.5, {0.7}, {4}));
  v.push_back(done(2, 5, 1.0, {1.4, 1.5}, {5, 6}));
  RequestRecord bad;
  bad.id = 3;
  bad.n_prompt_tokens = 99;
  bad.arrival_s = 1.2;
  bad.finish_reason = "error";
  bad.error = "prompt + max_new_tokens over max_model_len";
  v.push_back(bad);
  return v;
}

constexpr double kTol = 1e-9;

TEST(BenchMetrics, PercentileIsNumpysLinearInterpolation) {
  EXPECT_NEAR(percentile_linear({4, 1, 3, 2}, 25), 1.75, kTol);  // numpy.percentile([1,2,3,4], 25)
  EXPECT_NEAR(percentile_linear({4, 1, 3, 2}, 50), 2.5, kTol);
  EXPECT_NEAR(percentile_linear({4, 1, 3, 2}, 100), 4.0, kTol);
  EXPECT_NEAR(percentile_linear({4, 1, 3, 2}, 0), 1.0, kTol);
  EXPECT_NEAR(percentile_linear({7}, 99), 7.0, kTol);
  EXPECT_EQ(percentile_linear({}, 99), 0.0);
}

TEST(BenchMetrics, HandComputedFigures) {
  const BenchMetrics m = compute_bench_metrics(sample_records(), 2.0, {50, 99}, GoodputSlo{});
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input, 35);
  EXPECT_EQ(m.total_output, 6);
  EXPECT_NEAR(m.request_throughput, 1.5, kTol);
  EXPECT_NEAR(m.output_throughput, 3.0, kTol);
  EXPECT_NEAR(m.total_token_throughput, 20.5, kTol);
  EXPECT_FALSE(m.has_goodput);
  // TTFT [0.1 0.2 0.4]
  EXPECT_NEAR(m.ttft.mean_ms, 700.0 / 3.0, 1e-6);
  EXPECT_NEAR(m.ttft.median_ms, 200.0, 1e-6);
  EXPECT_NEAR(m.ttft.std_ms, std::sqrt(0.14 / 9.0) * 1000.0, 1e-6);  // Σ(x−mean)² = 0.42/9
  ASSERT_EQ(m.ttft.percentiles_ms.size(), 2u);
  EXPECT_EQ(m.ttft.percentiles_ms[1].first, 99.0);
  EXPECT_NEAR(m.ttft.percentiles_ms[1].second, 396.0, 1e-6);  // 0.2 + 0.98·0.2
  // TPOT [0.25 0.1]: the one-token request is left out
  EXPECT_NEAR(m.tpot.mean_ms, 175.0, 1e-6);
  EXPECT_NEAR(m.tpot.median_ms, 175.0, 1e-6);
  EXPECT_NEAR(m.tpot.std_ms, 75.0, 1e-6);
  EXPECT_NEAR(m.tpot.percentiles_ms[1].second, 248.5, 1e-6);  // 0.1 + 0.99·0.15
  // ITL [0.2 0.3 0.1] pooled over requests
  EXPECT_NEAR(m.itl.mean_ms, 200.0, 1e-6);
  EXPECT_NEAR(m.itl.median_ms, 200.0, 1e-6);
  EXPECT_NEAR(m.itl.std_ms, std::sqrt(0.02 / 3.0) * 1000.0, 1e-6);
  EXPECT_NEAR(m.itl.percentiles_ms[1].second, 298.0, 1e-6);
  // E2EL [0.6 0.2 0.5]
  EXPECT_NEAR(m.e2el.mean_ms, 1300.0 / 3.0, 1e-6);
  EXPECT_NEAR(m.e2el.median_ms, 500.0, 1e-6);
  EXPECT_NEAR(m.e2el.percentiles_ms[0].second, 500.0, 1e-6);
  EXPECT_NEAR(m.e2el.percentiles_ms[1].second, 598.0, 1e-6);
}

TEST(BenchMetrics, GoodputCountsRequestsMeetingEverySlo) {
  // ttft 250 ms, tpot 200 ms: request 0 fails TPOT (250), 1 passes (one token: TPOT 0), 2 fails TTFT.
  BenchMetrics m = compute_bench_metrics(sample_records(), 2.0, {99}, parse_goodput({"ttft:250", "tpot:200"}));
  EXPECT_TRUE(m.has_goodput);
  EXPECT_NEAR(m.request_goodput, 0.5, kTol);
  // e2el 550 ms alone: 1 and 2 pass.
  m = compute_bench_metrics(sample_records(), 2.0, {99}, parse_goodput({"e2el:550"}));
  EXPECT_NEAR(m.request_goodput, 1.0, kTol);
  // An SLO is met when it equals the figure (vLLM: slo >= value).
  m = compute_bench_metrics(sample_records(), 2.0, {99}, parse_goodput({"ttft:400"}));
  EXPECT_NEAR(m.request_goodput, 1.5, kTol);
}

TEST(BenchMetrics, EmptySamplesGiveZero) {
  std::vector<RequestRecord> one = {done(0, 3, 0.0, {0.5}, {7})};
  const BenchMetrics m = compute_bench_metrics(one, 1.0, {99}, GoodputSlo{});
  EXPECT_EQ(m.tpot.mean_ms, 0.0);
  EXPECT_EQ(m.itl.percentiles_ms[0].second, 0.0);
  EXPECT_NEAR(m.ttft.mean_ms, 500.0, 1e-6);
  EXPECT_EQ(m.ttft.std_ms, 0.0);
}

TEST(BenchMetrics, RefusesRecordsOutOfOrder) {
  std::vector<RequestRecord> v = {done(5, 3, 1.0, {0.5}, {7})};  // first token before arrival
  try {
    compute_bench_metrics(v, 1.0, {99}, GoodputSlo{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("request 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(compute_bench_metrics(sample_records(), 0.0, {99}, GoodputSlo{}), Error);
}

TEST(BenchMetrics, ParsesOptionsAndNamesThemInErrors) {
  auto metrics = parse_percentile_metrics("e2el,ttft");
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[0], LatencyMetric::e2el);
  EXPECT_EQ(parse_percentile_metrics(kDefaultPercentileMetrics).size(), 3u);
  auto expect_error = [](auto fn, const std::string& needle) {
    try {
      fn();
      FAIL() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([] { parse_percentile_metrics("ttft,latency"); }, "unknown metric 'latency'");
  expect_error([] { parse_percentile_metrics("ttft,ttft"); }, "given twice");
  expect_error([] { parse_metric_percentiles("50,101"); }, "--metric-percentiles");
  expect_error([] { parse_metric_percentiles("50,x"); }, "--metric-percentiles");
  expect_error([] { parse_goodput({"foo:1"}); }, "unknown metric 'foo'");
  expect_error([] { parse_goodput({"ttft"}); }, "KEY:VALUE");
  expect_error([] { parse_goodput({"ttft:-3"}); }, "non-negative");
  expect_error([] { parse_goodput({"ttft:1", "ttft:2"}); }, "given twice");
  const std::vector<double> p = parse_metric_percentiles("50,90,99.9");
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[2], 99.9);
  EXPECT_EQ(parse_goodput({"ttft:200", "e2el:1000"}).describe(), "ttft:200 e2el:1000");
}

TEST(BenchMetrics, OutputAgreementByRequestId) {
  std::vector<RequestRecord> ref = sample_records();
  std::vector<RequestRecord> other = sample_records();
  std::swap(other[0], other[2]);               // order does not matter, ids do
  other[2].output_tokens = {1, 2, 9};          // request 0: a shared prefix of 2
  other[2].token_times_s = {0.1, 0.3, 0.6};
  const OutputAgreement a = compare_outputs(ref, other);
  EXPECT_EQ(a.n_compared, 3);  // the failed request is left out
  EXPECT_EQ(a.n_exact, 2);
  EXPECT_NEAR(a.exact_match(), 2.0 / 3.0, kTol);
  EXPECT_NEAR(a.matched_prefix_mean(), 5.0 / 3.0, kTol);  // (2 + 1 + 2) / 3
  const OutputAgreement self = compare_outputs(ref, ref);
  EXPECT_EQ(self.exact_match(), 1.0);
  other.push_back(other[0]);
  EXPECT_THROW(compare_outputs(ref, other), Error);
}

TEST(BenchMetrics, ResultBlockAsVllmPrintsIt) {
  const BenchMetrics m = compute_bench_metrics(sample_records(), 2.0, {99}, parse_goodput({"ttft:250"}));
  const std::string s = format_result_block(m, parse_percentile_metrics("ttft,tpot,itl"), 4.0, 0);
  EXPECT_EQ(s.substr(0, 51), "============ Serving Benchmark Result ============\n");
  EXPECT_NE(s.find("Successful requests:                     3         \n"), std::string::npos) << s;
  EXPECT_NE(s.find("Request rate configured (RPS):           4.00      \n"), std::string::npos) << s;
  EXPECT_NE(s.find("Benchmark duration (s):                  2.00      \n"), std::string::npos) << s;
  EXPECT_NE(s.find("Request goodput (req/s):                 1.00      \n"), std::string::npos) << s;
  EXPECT_NE(s.find("---------------Time to First Token----------------\n"), std::string::npos) << s;
  EXPECT_NE(s.find("-----Time per Output Token (excl. 1st token)------\n"), std::string::npos) << s;
  EXPECT_NE(s.find("Mean TTFT (ms):                          233.33"), std::string::npos) << s;
  EXPECT_NE(s.find("P99 ITL (ms):                            298.00"), std::string::npos) << s;
  EXPECT_EQ(s.find("E2EL"), std::string::npos) << "e2el was not selected";
  EXPECT_EQ(s.find("Request rate configured"),
            format_result_block(m, {}, 4.0, 0).find("Request rate configured"));
  EXPECT_EQ(format_result_block(m, {}, INFINITY, 0).find("Request rate configured"), std::string::npos);
}

TEST(BenchMetrics, ResultJsonReadBack) {
  const std::vector<RequestRecord> recs = sample_records();
  const BenchMetrics m = compute_bench_metrics(recs, 2.0, {50, 99.9}, GoodputSlo{});
  ResultExtras extras;
  extras.policy = "none";
  extras.skip_exec = "gather";
  extras.agreement = compare_outputs(recs, recs);
  extras.run = {{"request_rate", "inf"}, {"device", "cpu"}};
  auto decode = [](const std::vector<int64_t>& t) { return std::to_string(t.size()) + " tokens"; };
  const auto j = result_json(m, extras, recs, true, decode);
  const std::string path = std::string(SEMSKIP_BINARY_DIR) + "/bench_metrics_result.json";
  std::filesystem::remove(path);
  write_json_file(path, j);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::ifstream f(path);
  const nlohmann::json back = nlohmann::json::parse(f);
  EXPECT_EQ(back["completed"], 3);
  EXPECT_EQ(back["failed"], 1);
  EXPECT_EQ(back["total_input_tokens"], 35);
  EXPECT_EQ(back["total_output_tokens"], 6);
  EXPECT_DOUBLE_EQ(back["duration"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(back["request_throughput"].get<double>(), 1.5);
  EXPECT_TRUE(back["request_goodput"].is_null());
  EXPECT_DOUBLE_EQ(back["output_throughput"].get<double>(), 3.0);
  EXPECT_DOUBLE_EQ(back["total_token_throughput"].get<double>(), 20.5);
  for (const char* metric : {"ttft", "tpot", "itl", "e2el"}) {
    for (const char* stat : {"mean", "median", "std", "p50", "p99.9"}) {
      EXPECT_TRUE(back.contains(std::string(stat) + "_" + metric + "_ms")) << stat << "_" << metric << "_ms";
    }
  }
  EXPECT_NEAR(back["mean_ttft_ms"].get<double>(), 700.0 / 3.0, 1e-6);
  EXPECT_NEAR(back["median_e2el_ms"].get<double>(), 500.0, 1e-6);
  EXPECT_NEAR(back["std_tpot_ms"].get<double>(), 75.0, 1e-6);
  EXPECT_EQ(back["policy"], "none");
  EXPECT_EQ(back["skip_exec"], "gather");
  EXPECT_EQ(back["exact_match"], 1.0);
  EXPECT_EQ(back["matched_prefix_mean"].get<double>(), 2.0);  // (3 + 1 + 2) / 3
  EXPECT_EQ(back["device"], "cpu");
  EXPECT_EQ(back["input_lens"], nlohmann::json({10, 20, 5, 99}));
  EXPECT_EQ(back["output_lens"], nlohmann::json({3, 1, 2, 0}));
  ASSERT_EQ(back["ttfts"].size(), 4u);
  EXPECT_NEAR(back["ttfts"][2].get<double>(), 0.4, 1e-12);
  ASSERT_EQ(back["itls"][0].size(), 2u);
  EXPECT_NEAR(back["itls"][0][1].get<double>(), 0.3, 1e-12);
  EXPECT_TRUE(back["itls"][1].empty());
  EXPECT_EQ(back["generated_texts"][0], "3 tokens");
  EXPECT_EQ(back["generated_texts"][3], "");
  EXPECT_EQ(back["errors"][0], "");
  EXPECT_EQ(back["errors"][3], "prompt + max_new_tokens over max_model_len");
  // Without --save-detailed: no per-request lists.
  EXPECT_FALSE(result_json(m, extras, recs, false, decode).contains("ttfts"));
  std::filesystem::remove(path);
}

TEST(BenchMetrics, JsonWriteFailureLeavesNothing) {
  const std::string dir = std::string(SEMSKIP_BINARY_DIR) + "/no-such-folder-for-bench";
  std::filesystem::remove_all(dir);
  EXPECT_THROW(write_json_file(dir + "/r.json", nlohmann::ordered_json::object()), Error);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

}  // namespace
}  // namespace semskip::serve
