// Accuracy against the full model (metrics/accuracy.h): hand-computed per-request sums, and
// the percentile bootstrap checked on simulated data whose true value is known.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "metrics/accuracy.h"

using namespace semskip;

namespace {

double width(const Interval& i) { return i.hi - i.lo; }

}  // namespace

TEST(Accuracy, HandComputedAgreementKlAndPerplexity) {
  // Position 0: identical distributions; position 1: argmax differs.
  at::Tensor full = at::log(at::tensor({0.5f, 0.25f, 0.25f, 0.2f, 0.6f, 0.2f}).view({2, 3}));
  at::Tensor skip = at::log(at::tensor({0.5f, 0.25f, 0.25f, 0.6f, 0.2f, 0.2f}).view({2, 3}));
  RequestAccuracy a = compare_logits(full, skip, at::tensor({1, -1}, at::kLong));
  EXPECT_EQ(a.n_positions, 2);
  EXPECT_EQ(a.n_top1_match, 1);
  const double kl1 = 0.2 * std::log(0.2 / 0.6) + 0.6 * std::log(0.6 / 0.2);
  EXPECT_NEAR(a.kl_sum, kl1, 1e-6);
  EXPECT_EQ(a.n_targets, 1);
  EXPECT_NEAR(a.nll_full_sum, -std::log(0.25), 1e-6);
  std::vector<RequestAccuracy> reqs = {a, a};
  AccuracySummary s = summarize_accuracy(reqs, 200, 1);
  EXPECT_NEAR(s.top1_agreement.value, 0.5, 1e-12);
  EXPECT_NEAR(s.top1_agreement.lo, 0.5, 1e-12);  // identical requests: no spread
  EXPECT_NEAR(s.ppl_full.value, 4.0, 1e-5);
  compare_generations({1, 2, 3, 4}, {1, 2, 9, 4}, a);
  EXPECT_EQ(a.matched_prefix, 2);
  EXPECT_FALSE(a.exact_match);
}

TEST(Bootstrap, ValueIsTheRatioOfSums) {
  // 6 / 8, not the mean of the per-request ratios (0.5 + 1 + 0.75) / 3.
  Interval i = bootstrap_ratio({1, 2, 3}, {2, 2, 4}, 500, 3);
  EXPECT_DOUBLE_EQ(i.value, 0.75);
  EXPECT_LE(i.lo, i.value);
  EXPECT_GE(i.hi, i.value);
  // Every resample's ratio lies between the smallest and largest per-request ratio.
  EXPECT_GE(i.lo, 0.5);
  EXPECT_LE(i.hi, 1.0);
}

TEST(Bootstrap, AllRequestsEqualGiveZeroWidth) {
  // Equal requests: every resample is the same multiset up to order, so lo = hi = value.
  Interval a = bootstrap_ratio(std::vector<double>(20, 0.6), std::vector<double>(20, 1.0), 1000, 9);
  EXPECT_DOUBLE_EQ(a.value, 0.6);
  EXPECT_NEAR(a.lo, 0.6, 1e-12);
  EXPECT_NEAR(a.hi, 0.6, 1e-12);
  // Different sizes but the same per-request ratio 1/4: any resample's Σnum / Σden is 1/4.
  std::vector<double> num, den;
  for (int i = 1; i <= 30; ++i) num.push_back(0.25 * 4 * i), den.push_back(4.0 * i);
  Interval b = bootstrap_ratio(num, den, 1000, 9);
  EXPECT_NEAR(b.value, 0.25, 1e-12);
  EXPECT_NEAR(width(b), 0.0, 1e-12);
  EXPECT_NEAR(b.lo, 0.25, 1e-12);
}

TEST(Bootstrap, IsSeeded) {
  // Continuous values, so that another seed's resamples give other quantiles.
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> num(30), den(30, 1.0);
  for (double& x : num) x = normal(rng);
  Interval a = bootstrap_ratio(num, den, 500, 5), b = bootstrap_ratio(num, den, 500, 5);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
  Interval c = bootstrap_ratio(num, den, 500, 6);
  EXPECT_TRUE(a.lo != c.lo || a.hi != c.hi);
}

// 200 repetitions of n = 100 Bernoulli(0.7) requests: the 95% interval must contain 0.7 in
// about 95% of them. With 200 repetitions the count of covering intervals has sd ≈ 3 around
// 190 at 95% coverage; [176, 198] (88–99%) is more than 4 sd wide on each side, yet a 90% or
// 99.9% interval falls outside it. The mean width must match the normal approximation
// 2·1.96·√(p(1−p)/n) = 0.1796 within ±10%.
TEST(Bootstrap, CoversTheTrueMeanAtTheNominalRate) {
  const int reps = 200, n = 100;
  const double p = 0.7;
  std::mt19937_64 rng(2024);
  std::bernoulli_distribution draw(p);
  int covered = 0;
  double width_sum = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<double> num(n), den(n, 1.0);
    for (double& x : num) x = draw(rng) ? 1.0 : 0.0;
    Interval i = bootstrap_ratio(num, den, 1000, static_cast<uint64_t>(r));
    EXPECT_LE(i.lo, i.value);
    EXPECT_GE(i.hi, i.value);
    if (i.lo <= p && p <= i.hi) ++covered;
    width_sum += width(i);
  }
  EXPECT_GE(covered, 176) << covered << " of " << reps;
  EXPECT_LE(covered, 198) << covered << " of " << reps;
  const double expected_width = 2 * 1.96 * std::sqrt(p * (1 - p) / n);
  EXPECT_NEAR(width_sum / reps, expected_width, 0.1 * expected_width);
}

// The same on a ratio of sums: requests of 1..20 positions, each position matching with
// probability 0.3, so Σmatch / Σpositions estimates 0.3.
TEST(Bootstrap, CoversTheTrueRatioOfSumsAtTheNominalRate) {
  const int reps = 200, n = 60;
  const double p = 0.3;
  std::mt19937_64 rng(77);
  std::uniform_int_distribution<int> length(1, 20);
  int covered = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<double> num(n), den(n);
    for (int i = 0; i < n; ++i) {
      const int len = length(rng);
      std::binomial_distribution<int> matches(len, p);
      den[i] = len;
      num[i] = matches(rng);
    }
    Interval i = bootstrap_ratio(num, den, 1000, static_cast<uint64_t>(1000 + r));
    if (i.lo <= p && p <= i.hi) ++covered;
  }
  EXPECT_GE(covered, 176) << covered << " of " << reps;
  EXPECT_LE(covered, 198) << covered << " of " << reps;
}

TEST(Bootstrap, WidensWithSpreadAndNarrowsWithSampleSize) {
  // Same mean 5, spread ×3: x = 5 + s·z with the same z and the same bootstrap seed. Each
  // resample's mean is 5 + s·mean(z*), so the interval scales exactly: width ratio 3.
  const int n = 100;
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> z(n);
  for (double& v : z) v = normal(rng);
  auto with_spread = [&](double s) {
    std::vector<double> x(n);
    for (int i = 0; i < n; ++i) x[i] = 5.0 + s * z[i];
    return bootstrap_ratio(x, std::vector<double>(n, 1.0), 2000, 4);
  };
  const Interval narrow = with_spread(1.0), wide = with_spread(3.0);
  EXPECT_NEAR(wide.value - 5.0, 3.0 * (narrow.value - 5.0), 1e-9);
  EXPECT_GT(width(wide), width(narrow));
  EXPECT_NEAR(width(wide) / width(narrow), 3.0, 1e-9);
  EXPECT_NEAR(wide.lo - 5.0, 3.0 * (narrow.lo - 5.0), 1e-9);

  // Four times the requests: the standard error halves. Averaged over 20 independent data
  // sets, the width ratio is 0.5 within ±0.05 (the sd of one ratio is about 0.04).
  double ratio_sum = 0;
  const int sets = 20;
  for (int s = 0; s < sets; ++s) {
    std::vector<double> small(n), large(4 * n);
    for (double& v : small) v = 5.0 + normal(rng);
    for (double& v : large) v = 5.0 + normal(rng);
    const Interval a = bootstrap_ratio(small, std::vector<double>(n, 1.0), 1000, s);
    const Interval b = bootstrap_ratio(large, std::vector<double>(4 * n, 1.0), 1000, s);
    // The normal approximation: 2·1.96·σ/√n.
    EXPECT_NEAR(width(a), 2 * 1.96 / std::sqrt(n), 0.25 * 2 * 1.96 / std::sqrt(n));
    ratio_sum += width(b) / width(a);
  }
  EXPECT_NEAR(ratio_sum / sets, 0.5, 0.05);
}
