#include "index/synthetic_vectors.h"

#include <cmath>
#include <random>

#include "core/error.h"

namespace semskip {

namespace {

// Distinct, well-mixed engine seeds for (seed, stream) pairs (splitmix64 finaliser).
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void check_shape(int64_t n, int64_t dim) {
  SEMSKIP_THROW_IF_NOT_MSG(n >= 0 && dim > 0, "synthetic vectors: need n ≥ 0 and dim > 0, got n={} dim={}",
                           n, dim);
}

}  // namespace

std::vector<float> uniform_vectors(int64_t n, int64_t dim, uint64_t seed, uint64_t stream) {
  check_shape(n, dim);
  std::mt19937_64 rng(mix(mix(seed) ^ (stream + 1)));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * dim));  // float32 [n, dim]
  for (float& v : x) v = normal(rng);
  return x;
}

std::vector<float> clustered_vectors(int64_t n, int64_t dim, uint64_t seed, uint64_t stream,
                                     const ClusterSpec& spec) {
  check_shape(n, dim);
  SEMSKIP_THROW_IF_NOT_MSG(spec.n_centres > 0 && spec.spread >= 0,
                           "synthetic vectors: need n_centres > 0 and spread ≥ 0");
  std::mt19937_64 centre_rng(mix(seed));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centres(static_cast<size_t>(spec.n_centres * dim));  // float32 [n_centres, dim], unit rows
  for (int64_t c = 0; c < spec.n_centres; ++c) {
    float* row = centres.data() + c * dim;
    double sum_sq = 0;
    for (int64_t j = 0; j < dim; ++j) {
      row[j] = normal(centre_rng);
      sum_sq += static_cast<double>(row[j]) * row[j];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(sum_sq));
    for (int64_t j = 0; j < dim; ++j) row[j] *= inv;
  }
  std::mt19937_64 rng(mix(mix(seed) ^ (stream + 1)));
  std::uniform_int_distribution<int64_t> pick(0, spec.n_centres - 1);
  const float sigma = static_cast<float>(spec.spread / std::sqrt(static_cast<double>(dim)));
  std::vector<float> x(static_cast<size_t>(n * dim));  // float32 [n, dim]
  for (int64_t i = 0; i < n; ++i) {
    const float* centre = centres.data() + pick(rng) * dim;
    for (int64_t j = 0; j < dim; ++j) x[i * dim + j] = centre[j] + sigma * normal(rng);
  }
  return x;
}

}  // namespace semskip
