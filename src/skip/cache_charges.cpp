#include "skip/cache_charges.h"

#include <algorithm>

#include "index/lookup_cost.h"
#include "metrics/flop_counter.h"

namespace semskip {

CacheSizes cache_sizes(const SkipCache& cache) {
  const CacheStats s = cache.stats();
  return {s.size, s.insertions};
}

void charge_insertions(const SkipCache& cache, const CacheSizes& before, FlopCounter* flops, int layer) {
  if (!flops) return;
  const CacheStats after = cache.stats();
  const int64_t n_new = after.insertions - before.insertions;
  if (n_new <= 0) return;
  const IndexCostModel m = index_cost_model(cache.index_descriptor());
  const int64_t dim = after.key_dim;
  if (m.needs_training() && m.train_size > 0) {
    if (after.size < m.train_size) return;  // still staged: copies
    if (before.size < m.train_size) {
      // Trained in this call: k-means once, then every key now held is assigned / encoded.
      flops->add(layer, OpGroup::train, index_train_flops(m, dim, m.train_size));
      flops->add(layer, OpGroup::insert, after.size * index_insert_flops(m, dim, after.size));
      return;
    }
  }
  // Evicted entries leave before the new ones arrive: the i-th new key joins
  // after.size − n_new + i others.
  int64_t total = 0;
  if (m.kind == IndexCostModel::Kind::hnsw) {
    for (int64_t i = 0; i < n_new; ++i) total += index_insert_flops(m, dim, std::max<int64_t>(0, after.size - n_new + i));
  } else {
    total = n_new * index_insert_flops(m, dim, after.size);
  }
  flops->add(layer, OpGroup::insert, total);
}

int64_t projection_fit_flops(const KeyProjection& proj, int64_t n_samples) {
  if (proj.kind() != KeyProjectionKind::pca) return 0;
  const int64_t d = proj.input_dim();
  return 2 * n_samples * d * d + 9 * d * d * d;
}

}  // namespace semskip
