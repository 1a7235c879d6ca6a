#include "index/lookup_cost.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace semskip {

namespace {

// Per-query cost in double (N/nlist is fractional), rounded once at the end.
int64_t times_queries(double per_query, int64_t n_queries) {
  SEMSKIP_THROW_IF_NOT_MSG(n_queries >= 0, "lookup_flops: n_queries must be ≥ 0, got {}",
                           n_queries);
  return std::llround(per_query * static_cast<double>(n_queries));
}

}  // namespace

int64_t flat_lookup_flops(int64_t dim, int64_t n_keys, int64_t n_queries) {
  return times_queries(2.0 * dim * n_keys, n_queries);
}

int64_t ivf_lookup_flops(int64_t dim, int64_t n_keys, int64_t nlist, int64_t nprobe,
                         int64_t n_queries) {
  SEMSKIP_ASSERT(nlist > 0 && nprobe > 0);
  const double probed = std::min(nprobe, nlist) * static_cast<double>(n_keys) / nlist;
  return times_queries(2.0 * dim * (nlist + probed), n_queries);
}

int64_t ivfpq_lookup_flops(int64_t dim, int64_t n_keys, int64_t nlist, int64_t nprobe,
                           int64_t pq_m, int64_t pq_nbits, int64_t n_queries) {
  SEMSKIP_ASSERT(nlist > 0 && nprobe > 0 && pq_m > 0 && pq_nbits > 0);
  const double ksub = std::ldexp(1.0, static_cast<int>(pq_nbits));
  const double probed = std::min(nprobe, nlist) * static_cast<double>(n_keys) / nlist;
  return times_queries(2.0 * dim * nlist + 2.0 * dim * ksub + pq_m * probed, n_queries);
}

int64_t pq_lookup_flops(int64_t dim, int64_t n_keys, int64_t pq_m, int64_t pq_nbits,
                        int64_t n_queries) {
  SEMSKIP_ASSERT(pq_m > 0 && pq_nbits > 0);
  const double ksub = std::ldexp(1.0, static_cast<int>(pq_nbits));
  return times_queries(2.0 * dim * ksub + static_cast<double>(pq_m) * n_keys, n_queries);
}

int64_t hnsw_lookup_flops(int64_t dim, int64_t n_keys, int64_t hnsw_m, int64_t ef_search,
                          int64_t n_queries) {
  SEMSKIP_ASSERT(hnsw_m > 1 && ef_search > 0);
  if (n_keys == 0) return 0;
  const double levels = std::max(
      1.0, std::ceil(std::log(static_cast<double>(n_keys)) / std::log(static_cast<double>(hnsw_m))));
  const double scored = std::min(static_cast<double>(n_keys),
                                 2.0 * hnsw_m * ef_search + hnsw_m * levels);
  return times_queries(2.0 * dim * scored, n_queries);
}

}  // namespace semskip
