#pragma once
// Percentile bootstrap intervals of ratio estimators (Σ num / Σ den), resampling whole units:
// the documents or conversations that requests belong to (workloads/request.h, Request::document).
// Chunks of one document are correlated (the full model's perplexity varies several-fold between
// documents), so drawing chunks as if independent understates the spread; a cluster bootstrap
// draws units with replacement and takes every item of each drawn unit. With one item per unit
// it is the ordinary bootstrap over items, with the same draws for the same seed.

#include <cstdint>
#include <string>
#include <vector>

namespace semskip {

struct Interval {
  double value = 0.0;  // the statistic on all items
  double lo = 0.0;     // 2.5th percentile of the bootstrap distribution
  double hi = 0.0;     // 97.5th percentile
};

// The draws of one bootstrap, shared by every statistic computed with it (each statistic is
// resampled over the same units).
class ClusterBootstrap {
 public:
  // unit_of[i]: the unit of item i, in 0..n_units−1 (every unit has at least one item);
  // empty: each item is its own unit (n_items items). `n_boot` resamples (≥ 1), seeded.
  ClusterBootstrap(std::vector<int64_t> unit_of, int64_t n_items, int n_boot, uint64_t seed);
  // Every item its own unit.
  static ClusterBootstrap per_item(int64_t n_items, int n_boot, uint64_t seed);

  int64_t n_units() const { return n_units_; }
  int64_t n_items() const { return static_cast<int64_t>(unit_of_.size()); }

  // Σ num / Σ den over the items (0 where Σ den is 0), with the 2.5 and 97.5 percentiles of the
  // same ratio over the resamples. num, den: [n_items].
  Interval ratio(const std::vector<double>& num, const std::vector<double>& den) const;

 private:
  std::vector<int64_t> unit_of_;            // [n_items]
  int64_t n_units_ = 0;
  std::vector<std::vector<int64_t>> draws_; // [n_boot][n_units]: the units drawn, with replacement
};

// The dense unit index of each of `keys` (first appearance order); an empty key is a unit of
// its own. Returns [keys.size()].
std::vector<int64_t> unit_indices(const std::vector<std::string>& keys);

// Ratio of sums over items, each its own unit (the ordinary bootstrap).
Interval bootstrap_ratio(const std::vector<double>& num, const std::vector<double>& den, int n_boot = 1000,
                         uint64_t seed = 0);

}  // namespace semskip
