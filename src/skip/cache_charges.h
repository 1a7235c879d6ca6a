#pragma once
// The costs of keeping a semantic cache besides its lookups, charged by the cache policies to
// their step's FlopCounter under the probe layer, each in its own overhead group (so they
// enter the net figure and /per_layer's flops_overhead at that layer):
//   insert  per admitted entry, the index's insertion cost (index/lookup_cost.h), on the rank
//           that stores it; an index with train_size charges its training (group train) in
//           the step whose insertions bring it to train_size keys, when its staged keys are
//           assigned / encoded.
//   train   the PCA fit of the key projection: the covariance 2·N·d² of N calibration states
//           plus 9·d³ for the symmetric eigendecomposition (the usual count of a tridiagonal
//           reduction with eigenvectors; it is no matmul, so an estimate), charged in the
//           policy's first step after calibrate(). A random projection's map (drawn once,
//           not fitted) and the calibration forward itself are not charged.

#include <cstdint>

#include "skip/key_projection.h"
#include "skip/skip_cache.h"

namespace semskip {

class FlopCounter;

// The cache's entries and insertions before an insert() call.
struct CacheSizes {
  int64_t size = 0;
  int64_t insertions = 0;
};
CacheSizes cache_sizes(const SkipCache& cache);

// Charges what the insert() since `before` cost this rank (group insert, and train when the
// index crossed its train_size), under `layer`. Null `flops`: nothing.
void charge_insertions(const SkipCache& cache, const CacheSizes& before, FlopCounter* flops, int layer);

// FLOPs of fitting `proj` on n_samples states (0 unless PCA).
int64_t projection_fit_flops(const KeyProjection& proj, int64_t n_samples);

}  // namespace semskip
