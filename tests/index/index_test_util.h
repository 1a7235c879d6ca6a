#pragma once
// Shared helpers of the index tests: an independent brute-force reference (plain loops in
// float64) and a comparison that accepts only exact-tie swaps.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"

namespace semskip::test {

// Cosine similarity in float64 of two float32 rows of length dim.
inline double cosine(const float* a, const float* b, int64_t dim) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t j = 0; j < dim; ++j) {
    ab += static_cast<double>(a[j]) * b[j];
    aa += static_cast<double>(a[j]) * a[j];
    bb += static_cast<double>(b[j]) * b[j];
  }
  return (aa > 0 && bb > 0) ? ab / std::sqrt(aa * bb) : 0.0;
}

// A set of stored vectors with their ids, as the test believes the index holds them.
struct Stored {
  int64_t dim = 0;
  std::vector<float> keys;   // float32 [n, dim]
  std::vector<int64_t> ids;  // int64 [n]

  int64_t size() const { return static_cast<int64_t>(ids.size()); }
  const float* key_of(int64_t id) const {
    auto it = std::find(ids.begin(), ids.end(), id);
    return it == ids.end() ? nullptr : keys.data() + (it - ids.begin()) * dim;
  }
  void add(int64_t n, const float* x, const int64_t* new_ids) {
    keys.insert(keys.end(), x, x + n * dim);
    ids.insert(ids.end(), new_ids, new_ids + n);
  }
  void remove(int64_t id) {
    auto it = std::find(ids.begin(), ids.end(), id);
    if (it == ids.end()) return;
    const int64_t row = it - ids.begin();
    keys.erase(keys.begin() + row * dim, keys.begin() + (row + 1) * dim);
    ids.erase(it);
  }
};

struct Neighbours {
  std::vector<int64_t> ids;  // int64 [n, k]
  std::vector<double> sims;  // float64 [n, k]
};

// Exact k-NN of each query over `stored`, by plain loops: −1 / −inf past the stored count.
inline Neighbours brute_force(const Stored& stored, int64_t n_queries, const float* queries,
                              int64_t k) {
  Neighbours out;
  out.ids.assign(static_cast<size_t>(n_queries * k), -1);
  out.sims.assign(static_cast<size_t>(n_queries * k), -INFINITY);
  std::vector<std::pair<double, int64_t>> scored(static_cast<size_t>(stored.size()));
  for (int64_t q = 0; q < n_queries; ++q) {
    for (int64_t i = 0; i < stored.size(); ++i)
      scored[i] = {cosine(queries + q * stored.dim, stored.keys.data() + i * stored.dim, stored.dim),
                   stored.ids[i]};
    const int64_t m = std::min<int64_t>(k, stored.size());
    std::partial_sort(scored.begin(), scored.begin() + m, scored.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    for (int64_t j = 0; j < m; ++j) {
      out.ids[q * k + j] = scored[j].second;
      out.sims[q * k + j] = scored[j].first;
    }
  }
  return out;
}

// Same ids rank by rank (a swap of keys whose true similarities tie within tol is
// accepted), similarities within tol of the reference, and −1 / −inf exactly where the
// reference has no neighbour.
inline void expect_same_neighbours(const Stored& stored, int64_t n_queries, const float* queries,
                                   int64_t k, const Neighbours& ref, const int64_t* ids,
                                   const float* sims, double tol, const std::string& what) {
  int64_t mismatches = 0;
  for (int64_t q = 0; q < n_queries; ++q) {
    for (int64_t j = 0; j < k; ++j) {
      const size_t at = static_cast<size_t>(q * k + j);
      if (ref.ids[at] < 0) {
        EXPECT_EQ(ids[at], -1) << what << " query " << q << " rank " << j;
        EXPECT_TRUE(std::isinf(sims[at]) && sims[at] < 0) << what << " query " << q << " rank " << j;
        continue;
      }
      EXPECT_NEAR(sims[at], ref.sims[at], tol) << what << " query " << q << " rank " << j;
      if (ids[at] == ref.ids[at]) continue;
      const float* key = stored.key_of(ids[at]);
      const bool tie = key && std::abs(cosine(queries + q * stored.dim, key, stored.dim) -
                                       ref.sims[at]) <= tol;
      if (!tie && ++mismatches <= 5)
        ADD_FAILURE() << what << " query " << q << " rank " << j << ": id " << ids[at]
                      << ", reference " << ref.ids[at] << " (sim " << ref.sims[at] << ")";
    }
  }
  EXPECT_EQ(mismatches, 0) << what;
}

// Mean fraction of the reference's first k ids found among the first k results.
inline double recall(const Neighbours& ref, int64_t ref_k, const std::vector<int64_t>& ids,
                     int64_t ids_k, int64_t n_queries, int64_t k) {
  double sum = 0;
  for (int64_t q = 0; q < n_queries; ++q) {
    int64_t hits = 0;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t id = ids[q * ids_k + j];
      const auto* r = ref.ids.data() + q * ref_k;
      if (id >= 0 && std::find(r, r + k, id) != r + k) ++hits;
    }
    sum += static_cast<double>(hits) / k;
  }
  return sum / n_queries;
}

inline std::vector<int64_t> iota_ids(int64_t n, int64_t first = 0) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), first);
  return v;
}

// Message of the semskip::Error thrown by f ("" when nothing is thrown; any other
// exception escapes and fails the test).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const semskip::Error& e) {
    return e.what();
  }
  return "";
}

// gtest matcher-free substring check with a readable failure.
#define EXPECT_CONTAINS(haystack, needle)                                              \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)                     \
      << "expected to find '" << (needle) << "' in '" << (haystack) << "'"

}  // namespace semskip::test
