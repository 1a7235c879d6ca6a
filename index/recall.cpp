#include "index/recall.h"

#include <algorithm>

#include "core/error.h"

namespace semskip {

double recall_at_k(int64_t n, int64_t k, const int64_t* found, int64_t found_stride,
                   const int64_t* truth, int64_t truth_stride) {
  SEMSKIP_THROW_IF_NOT_MSG(k >= 1 && found_stride >= k && truth_stride >= k,
                           "recall_at_k: k={} needs at least k columns (found {}, truth {})", k,
                           found_stride, truth_stride);
  double sum = 0;
  int64_t scored = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t* t = truth + i * truth_stride;
    const int64_t* f = found + i * found_stride;
    const int64_t n_true = std::count_if(t, t + k, [](int64_t id) { return id >= 0; });
    if (n_true == 0) continue;
    int64_t hits = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (f[j] >= 0 && std::find(t, t + k, f[j]) != t + k) ++hits;
    }
    sum += static_cast<double>(hits) / static_cast<double>(n_true);
    ++scored;
  }
  return scored ? sum / static_cast<double>(scored) : 0.0;
}

}  // namespace semskip
