// The cluster bootstrap (metrics/bootstrap.h) against independent references: with one item per
// unit it is the ordinary bootstrap over items (a second implementation of the same draws, the
// loop the run used before units existed); when every unit has the same ratio no resample can
// move it (hand-computed); with perfectly correlated items per unit it is wider than the item
// bootstrap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "metrics/bootstrap.h"

using namespace semskip;

namespace {

// The item bootstrap written out: n draws of one item per resample from mt19937_64(seed).
Interval reference_item_bootstrap(const std::vector<double>& num, const std::vector<double>& den, int n_boot,
                                  uint64_t seed) {
  const size_t n = num.size();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  std::vector<double> samples;
  double sn = 0, sd = 0;
  for (size_t i = 0; i < n; ++i) sn += num[i], sd += den[i];
  for (int b = 0; b < n_boot; ++b) {
    double a = 0, c = 0;
    for (size_t i = 0; i < n; ++i) {
      const size_t j = pick(rng);
      a += num[j];
      c += den[j];
    }
    samples.push_back(a / c);
  }
  std::sort(samples.begin(), samples.end());
  auto q = [&](double p) {
    const double pos = p * static_cast<double>(samples.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, samples.size() - 1);
    return samples[lo] + (pos - static_cast<double>(lo)) * (samples[hi] - samples[lo]);
  };
  return {sn / sd, q(0.025), q(0.975)};
}

}  // namespace

TEST(ClusterBootstrap, OneItemPerUnitIsTheItemBootstrapWithTheSameDraws) {
  const std::vector<double> num = {3, 1, 4, 1, 5, 9, 2, 6}, den = {5, 3, 5, 8, 9, 9, 7, 9};
  const Interval ref = reference_item_bootstrap(num, den, 400, 11);
  // Units given explicitly (each item its own, in a shuffled numbering) and implicitly.
  const Interval per_item = ClusterBootstrap::per_item(8, 400, 11).ratio(num, den);
  EXPECT_DOUBLE_EQ(per_item.value, ref.value);
  EXPECT_DOUBLE_EQ(per_item.lo, ref.lo);
  EXPECT_DOUBLE_EQ(per_item.hi, ref.hi);
  const Interval old = bootstrap_ratio(num, den, 400, 11);
  EXPECT_DOUBLE_EQ(old.lo, ref.lo);
  EXPECT_DOUBLE_EQ(old.hi, ref.hi);
}

TEST(ClusterBootstrap, UnitsWithEqualRatiosGiveAPointInterval) {
  // Document A: chunks 1/2 and 3/4 (4/6 together); document B: one chunk 2/3. Every
  // resample of documents has the ratio 2/3; resampling chunks does not.
  const std::vector<double> num = {1, 3, 2}, den = {2, 4, 3};
  const ClusterBootstrap docs({0, 0, 1}, 3, 500, 2);
  EXPECT_EQ(docs.n_units(), 2);
  const Interval d = docs.ratio(num, den);
  EXPECT_NEAR(d.value, 6.0 / 9.0, 1e-15);
  EXPECT_NEAR(d.lo, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(d.hi, 2.0 / 3.0, 1e-12);
  const Interval c = ClusterBootstrap::per_item(3, 500, 2).ratio(num, den);
  EXPECT_GT(c.hi - c.lo, 0.1);  // 1/2 and 3/4 chunks drawn unevenly
}

TEST(ClusterBootstrap, CorrelatedChunksWidenTheInterval) {
  // 30 documents of 8 chunks; every chunk of a document has the document's agreement.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.6, 1.0);
  std::vector<double> num, den;
  std::vector<int64_t> unit;
  for (int64_t d = 0; d < 30; ++d) {
    const double a = u(rng);
    for (int k = 0; k < 8; ++k) {
      num.push_back(100 * a);
      den.push_back(100);
      unit.push_back(d);
    }
  }
  const Interval docs = ClusterBootstrap(unit, 240, 1000, 3).ratio(num, den);
  const Interval chunks = ClusterBootstrap::per_item(240, 1000, 3).ratio(num, den);
  EXPECT_DOUBLE_EQ(docs.value, chunks.value);
  // The chunk bootstrap treats 240 copies as independent: about √8 too narrow.
  EXPECT_GT(docs.hi - docs.lo, 2.0 * (chunks.hi - chunks.lo));
  EXPECT_LT(docs.hi - docs.lo, 4.0 * (chunks.hi - chunks.lo));
}

TEST(ClusterBootstrap, SeededAndDeterministic) {
  const std::vector<double> num = {1, 0, 1, 1, 0, 1}, den(6, 1.0);
  const std::vector<int64_t> unit = {0, 0, 1, 2, 2, 3};
  const Interval a = ClusterBootstrap(unit, 6, 300, 5).ratio(num, den), b = ClusterBootstrap(unit, 6, 300, 5).ratio(num, den);
  EXPECT_EQ(a.lo, b.lo);
  EXPECT_EQ(a.hi, b.hi);
}

TEST(ClusterBootstrap, UnitIndicesAndBadUnits) {
  EXPECT_EQ(unit_indices({"document:0", "document:0", "", "document:1", "", "document:0"}),
            (std::vector<int64_t>{0, 0, 1, 2, 3, 0}));
  EXPECT_THROW(ClusterBootstrap({0, 2}, 2, 10, 0), Error);   // unit 1 has no item
  EXPECT_THROW(ClusterBootstrap({0}, 2, 10, 0), Error);      // one id for two items
  EXPECT_THROW(ClusterBootstrap({0, 0}, 2, 0, 0), Error);    // no resamples
}
