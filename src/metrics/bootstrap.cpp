#include "metrics/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "core/timing.h"

namespace semskip {

ClusterBootstrap::ClusterBootstrap(std::vector<int64_t> unit_of, int64_t n_items, int n_boot, uint64_t seed)
    : unit_of_(std::move(unit_of)) {
  SEMSKIP_THROW_IF_NOT_MSG(n_boot >= 1, "bootstrap: resamples must be ≥ 1, got {}", n_boot);
  if (unit_of_.empty()) {
    unit_of_.resize(static_cast<size_t>(n_items));
    for (int64_t i = 0; i < n_items; ++i) unit_of_[static_cast<size_t>(i)] = i;
  }
  SEMSKIP_THROW_IF_NOT_MSG(static_cast<int64_t>(unit_of_.size()) == n_items,
                           "bootstrap: {} unit ids for {} items", unit_of_.size(), n_items);
  for (int64_t u : unit_of_) {
    SEMSKIP_THROW_IF_NOT_MSG(u >= 0, "bootstrap: unit id {} must be ≥ 0", u);
    n_units_ = std::max(n_units_, u + 1);
  }
  std::vector<bool> seen(static_cast<size_t>(n_units_), false);
  for (int64_t u : unit_of_) seen[static_cast<size_t>(u)] = true;
  SEMSKIP_THROW_IF_NOT_MSG(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }),
                           "bootstrap: unit ids must be dense (every unit 0..{} has an item)", n_units_ - 1);
  if (n_units_ == 0) return;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, n_units_ - 1);
  draws_.assign(static_cast<size_t>(n_boot), std::vector<int64_t>(static_cast<size_t>(n_units_)));
  for (auto& d : draws_)
    for (int64_t& u : d) u = pick(rng);
}

ClusterBootstrap ClusterBootstrap::per_item(int64_t n_items, int n_boot, uint64_t seed) {
  return ClusterBootstrap({}, n_items, n_boot, seed);
}

Interval ClusterBootstrap::ratio(const std::vector<double>& num, const std::vector<double>& den) const {
  SEMSKIP_ASSERT(num.size() == unit_of_.size() && den.size() == unit_of_.size());
  Interval out;
  if (n_units_ == 0) return out;
  auto ratio_of = [](double a, double b) { return b != 0.0 ? a / b : 0.0; };
  // Per-unit sums: a resample's sums are the drawn units' sums.
  std::vector<double> un(static_cast<size_t>(n_units_), 0.0), ud(static_cast<size_t>(n_units_), 0.0);
  double sn = 0, sd = 0;
  for (size_t i = 0; i < unit_of_.size(); ++i) {
    un[static_cast<size_t>(unit_of_[i])] += num[i];
    ud[static_cast<size_t>(unit_of_[i])] += den[i];
    sn += num[i];
    sd += den[i];
  }
  out.value = ratio_of(sn, sd);
  std::vector<double> samples;
  samples.reserve(draws_.size());
  for (const auto& d : draws_) {
    double a = 0, b = 0;
    for (int64_t u : d) {
      a += un[static_cast<size_t>(u)];
      b += ud[static_cast<size_t>(u)];
    }
    samples.push_back(ratio_of(a, b));
  }
  std::sort(samples.begin(), samples.end());
  out.lo = percentile(samples, 2.5);
  out.hi = percentile(samples, 97.5);
  return out;
}

std::vector<int64_t> unit_indices(const std::vector<std::string>& keys) {
  std::unordered_map<std::string, int64_t> index;
  std::vector<int64_t> out;
  out.reserve(keys.size());
  int64_t next = 0;
  for (const std::string& k : keys) {
    if (k.empty()) {
      out.push_back(next++);
      continue;
    }
    auto [it, inserted] = index.emplace(k, next);
    if (inserted) ++next;
    out.push_back(it->second);
  }
  return out;
}

Interval bootstrap_ratio(const std::vector<double>& num, const std::vector<double>& den, int n_boot,
                         uint64_t seed) {
  SEMSKIP_ASSERT(num.size() == den.size());
  return ClusterBootstrap::per_item(static_cast<int64_t>(num.size()), std::max(n_boot, 1), seed).ratio(num, den);
}

}  // namespace semskip
