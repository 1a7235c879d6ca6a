#include "workloads/redundancy.h"

#include <cmath>

#include "core/error.h"

namespace semskip {

RedundancyEstimate estimate_redundancy(const std::vector<std::vector<float>>& embeddings,
                                       double tau) {
  RedundancyEstimate est;
  est.tau = tau;
  const size_t n = embeddings.size();
  est.n_requests = static_cast<int64_t>(n);
  if (n == 0) return est;
  const size_t d = embeddings.front().size();
  std::vector<float> unit(n * d);  // [n, d] row-major, rows L2-normalised
  for (size_t i = 0; i < n; ++i) {
    SEMSKIP_THROW_IF_NOT_MSG(embeddings[i].size() == d,
                             "redundancy: embedding {} has dimension {}, the first has {}", i,
                             embeddings[i].size(), d);
    double norm = 0;
    for (float v : embeddings[i]) norm += double(v) * v;
    norm = std::sqrt(norm);
    for (size_t k = 0; k < d; ++k)
      unit[i * d + k] = norm > 0 ? static_cast<float>(embeddings[i][k] / norm) : 0.f;
  }
  est.nearest_cosine.assign(n, -1.f);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      double dot = 0;
      for (size_t k = 0; k < d; ++k) dot += double(unit[i * d + k]) * unit[j * d + k];
      const float c = static_cast<float>(dot);
      if (c > est.nearest_cosine[i]) est.nearest_cosine[i] = c;
      if (c > est.nearest_cosine[j]) est.nearest_cosine[j] = c;
    }
  }
  if (n < 2) {
    est.nearest_cosine.assign(n, 0.f);
    return est;
  }
  for (float c : est.nearest_cosine) est.n_redundant += c > tau ? 1 : 0;
  est.fraction = double(est.n_redundant) / double(n);
  return est;
}

}  // namespace semskip
