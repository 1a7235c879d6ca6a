// Arrival times as vLLM's serving benchmark makes them: all at t = 0 for an infinite rate;
// gamma gaps of shape burstiness and mean 1/rate, rescaled so the last arrival is n/rate; the
// workload's own times for a trace. The gamma sampler is checked against the moments of the
// distribution.
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "core/error.h"
#include "serve/arrivals.h"

namespace semskip::serve {
namespace {

TEST(Arrivals, InfiniteRateSendsEverythingAtZero) {
  const ArrivalOptions opt = make_arrival_options("inf", 1.0, 0, false);
  EXPECT_EQ(opt.kind, ArrivalKind::all_at_once);
  EXPECT_EQ(arrival_times(opt, 5), std::vector<double>(5, 0.0));
  EXPECT_EQ(make_arrival_options("INF", 1.0, 0, false).describe(), "inf");
}

TEST(Arrivals, GammaTimesEndAtNOverRateAndRepeatWithTheSeed) {
  const ArrivalOptions opt = make_arrival_options("4", 0.5, 7, false);
  ASSERT_EQ(opt.kind, ArrivalKind::gamma);
  const std::vector<double> t = arrival_times(opt, 64);
  ASSERT_EQ(t.size(), 64u);
  EXPECT_NEAR(t.back(), 64.0 / 4.0, 1e-9);
  EXPECT_GT(t.front(), 0.0);  // as vLLM, the first request waits one gap too
  for (size_t i = 1; i < t.size(); ++i) EXPECT_GE(t[i], t[i - 1]);
  EXPECT_EQ(arrival_times(opt, 64), t);
  EXPECT_NE(arrival_times(make_arrival_options("4", 0.5, 8, false), 64), t);
}

TEST(Arrivals, InfiniteBurstinessGivesEvenGaps) {
  const ArrivalOptions opt = make_arrival_options("2", std::numeric_limits<double>::infinity(), 0, false);
  const std::vector<double> t = arrival_times(opt, 4);
  ASSERT_EQ(t.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(t[i], 0.5 * double(i + 1), 1e-12);
}

TEST(Arrivals, BurstinessSetsTheSpreadOfGaps) {
  // Gaps of gamma(b, 1/(r b)): mean 1/r, coefficient of variation 1/sqrt(b).
  for (double b : {0.25, 1.0, 4.0}) {
    const std::vector<double> t = arrival_times(make_arrival_options("10", b, 3, false), 40000);
    double sum = 0.0, sum2 = 0.0, prev = 0.0;
    for (double x : t) {
      const double g = x - prev;
      prev = x;
      sum += g;
      sum2 += g * g;
    }
    const double n = double(t.size());
    const double mean = sum / n;
    const double cv = std::sqrt(sum2 / n - mean * mean) / mean;
    EXPECT_NEAR(mean, 0.1, 1e-9) << "b=" << b;  // rescaled to n/rate exactly
    EXPECT_NEAR(cv, 1.0 / std::sqrt(b), 0.05 / std::sqrt(b)) << "b=" << b;
  }
}

TEST(Arrivals, GammaSamplerMoments) {
  for (double shape : {0.3, 1.0, 2.5}) {
    GammaSampler g(11);
    const double scale = 2.0;
    const int n = 200000;
    double sum = 0.0, sum2 = 0.0;
    for (int i = 0; i < n; ++i) {
      const double x = g.sample(shape, scale);
      ASSERT_GT(x, 0.0);
      sum += x;
      sum2 += x * x;
    }
    const double mean = sum / n, var = sum2 / n - mean * mean;
    EXPECT_NEAR(mean, shape * scale, 0.02 * shape * scale) << "shape " << shape;
    EXPECT_NEAR(var, shape * scale * scale, 0.05 * shape * scale * scale) << "shape " << shape;
  }
}

TEST(Arrivals, TraceKeepsTheWorkloadsTimes) {
  const ArrivalOptions opt = make_arrival_options("inf", 1.0, 0, true);
  EXPECT_EQ(opt.kind, ArrivalKind::trace);
  EXPECT_EQ(arrival_times(opt, 3, {0.5, 0.0, 2.0}), (std::vector<double>{0.5, 0.0, 2.0}));
  EXPECT_THROW(arrival_times(opt, 3, {0.5, 0.0}), Error);
  EXPECT_THROW(arrival_times(opt, 2, {0.5, -1.0}), Error);
}

TEST(Arrivals, BadOptionsNameTheFlag) {
  auto message = [](auto fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { parse_request_rate("-1"); }).find("--request-rate"), std::string::npos);
  EXPECT_NE(message([] { parse_request_rate("0"); }).find("positive"), std::string::npos);
  EXPECT_NE(message([] { parse_request_rate("fast"); }).find("--request-rate"), std::string::npos);
  EXPECT_NE(message([] { make_arrival_options("2", 0.0, 0, false); }).find("--burstiness"), std::string::npos);
  EXPECT_NE(message([] { make_arrival_options("2", 1.0, 0, true); }).find("trace"), std::string::npos);
  EXPECT_EQ(parse_request_rate(" 2.5 "), 2.5);
}

}  // namespace
}  // namespace semskip::serve
