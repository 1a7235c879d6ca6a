// Arrival times, length filters, summary statistics and the redundancy estimate.
#include <gtest/gtest.h>

#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "workload_test_util.h"
#include "workloads/redundancy.h"
#include "workloads/workload_stats.h"

using namespace semskip;
using namespace semskip::test;

TEST(Arrivals, PoissonMeanRateAndIndependence) {
  const int64_t n = 20000;
  std::vector<Request> r = load(fmt::format("synthetic:num={},arrivals=poisson:5", n), WorkloadContext{});
  std::vector<Request> plain = load(fmt::format("synthetic:num={}", n), WorkloadContext{});
  ASSERT_EQ(r.size(), static_cast<size_t>(n));
  EXPECT_EQ(r[0].arrival_s, 0.0);
  double sum_sq = 0;
  for (size_t i = 1; i < r.size(); ++i) {
    const double gap = r[i].arrival_s - r[i - 1].arrival_s;
    ASSERT_GE(gap, 0.0);
    sum_sq += gap * gap;
  }
  // The mean gap is 1/rate (relative sd 1/sqrt(n) = 0.7%), and for an exponential the mean
  // square gap is 2/rate².
  const double mean_gap = r.back().arrival_s / double(n - 1);
  EXPECT_NEAR(1.0 / mean_gap, 5.0, 5.0 * 0.03);
  EXPECT_NEAR(sum_sq / double(n - 1), 2.0 / 25.0, 2.0 / 25.0 * 0.06);
  // Arrivals draw from their own stream: the requests are those of the run without them.
  for (size_t i = 0; i < r.size(); i += 997) EXPECT_EQ(r[i].prompt_text, plain[i].prompt_text);
  for (const Request& q : plain) ASSERT_EQ(q.arrival_s, 0.0);
  // And the seed changes them.
  std::vector<Request> other = load("synthetic:num=10,arrivals=poisson:5,seed=1", WorkloadContext{});
  EXPECT_NE(other[5].arrival_s, r[5].arrival_s);
}

TEST(Filters, LengthFiltersDropAndCount) {
  const WorkloadContext ctx = tiny_context();
  std::vector<Request> all = load("sharegpt,chat=plain", ctx);
  std::vector<int64_t> lens;
  for (const Request& q : all) lens.push_back(q.n_tokens_prompt());
  const int64_t cut = lens[0];
  size_t expected = 0;
  for (int64_t l : lens) expected += l <= cut;
  auto w = Workload::open(WorkloadSpec::parse(fmt::format("sharegpt,chat=plain,max_prompt={}", cut)), ctx);
  std::vector<Request> kept = drain(*w);
  EXPECT_EQ(kept.size(), expected);
  EXPECT_EQ(w->counters().n_filtered, static_cast<int64_t>(1 + all.size() - expected));  // sg-004 too
  for (size_t i = 0; i < kept.size(); ++i) {
    EXPECT_LE(kept[i].n_tokens_prompt(), cut);
    EXPECT_EQ(kept[i].id, static_cast<int64_t>(i));  // ids count the requests that pass
  }
  std::vector<Request> big = load("sharegpt,chat=plain,output_len=5,max_total=1000000,min_output=5", ctx);
  EXPECT_EQ(big.size(), all.size());
  EXPECT_TRUE(load("sharegpt,chat=plain,output_len=4,min_output=5", ctx).empty());
}

TEST(Stats, PercentilesInterpolateLikeNumpy) {
  // numpy.percentile([1, 2, 3, 4], [0, 50, 90, 100]) = [1, 2.5, 3.7, 4]
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_NEAR(percentile(v, 90), 3.7, 1e-12);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4.0);
  LengthSummary s = summarize({10, 0, 5});
  EXPECT_EQ(s.n, 3);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_DOUBLE_EQ(s.p50, 5.0);
  EXPECT_DOUBLE_EQ(s.p90, 9.0);
  EXPECT_DOUBLE_EQ(s.max, 10.0);
}

TEST(Stats, CollectOverASample) {
  auto w = Workload::open(WorkloadSpec::parse("pairs"), tiny_context());
  WorkloadStats s = collect_workload_stats(*w);
  EXPECT_EQ(s.n_requests, 20);
  EXPECT_EQ(s.n_groups, 10);
  EXPECT_EQ(s.n_with_reference, 0);
  EXPECT_EQ(s.output_tokens.max, 0.0);
  EXPECT_GT(s.prompt_tokens.min, 0.0);
  const std::string text = format_workload_stats(s);
  EXPECT_NE(text.find("requests:          20\n"), std::string::npos) << text;
  EXPECT_NE(text.find("skipped lines:     0\n"), std::string::npos) << text;
}

TEST(Redundancy, NearestNeighbourAboveTau) {
  // a and b point the same way (cos 1), c is at 60 degrees from them (cos 0.5), d is opposite
  // to a (cos -1), zero is orthogonal to everything.
  const std::vector<std::vector<float>> e = {
      {1, 0}, {2, 0}, {0.5f, std::sqrt(3.f) / 2}, {-1, 0}, {0, 0}};
  RedundancyEstimate r = estimate_redundancy(e, 0.9);
  EXPECT_EQ(r.n_requests, 5);
  EXPECT_EQ(r.n_redundant, 2);
  EXPECT_DOUBLE_EQ(r.fraction, 0.4);
  EXPECT_NEAR(r.nearest_cosine[0], 1.0, 1e-6);
  EXPECT_NEAR(r.nearest_cosine[2], 0.5, 1e-6);
  EXPECT_NEAR(r.nearest_cosine[3], 0.0, 1e-6);  // its best is the zero vector
  EXPECT_EQ(estimate_redundancy(e, 0.4).n_redundant, 3);
  EXPECT_EQ(estimate_redundancy({{1, 2}}, 0.1).fraction, 0.0);
  EXPECT_THROW(estimate_redundancy({{1, 2}, {1}}, 0.5), Error);
}
