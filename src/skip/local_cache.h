#pragma once
// LocalCache: a SkipCache over one SemanticCache in this process (cache mode `local`, and
// every single-process run). Handles are the SemanticCache's slots; nothing is communicated.

#include <memory>

#include "skip/semantic_cache.h"
#include "skip/skip_cache.h"

namespace semskip {

class LocalCache final : public SkipCache {
 public:
  LocalCache(int64_t key_dim, int64_t value_dim, const CacheOptions& opts);

  Match search(const at::Tensor& keys, int64_t k, FlopCounter* flops = nullptr, int layer = -1) override;
  at::Tensor fetch(const at::Tensor& handles, const at::Tensor& use, at::Device device) override;
  void insert(const at::Tensor& keys, const at::Tensor& values) override;
  void count_lookups(int64_t lookups, int64_t hits, int64_t vetoed) override;
  CacheStats stats() const override;
  std::string index_descriptor() const override { return cache_.index_descriptor(); }
  void save_state(StateWriter& w) const override { cache_.save_state(w); }
  void load_state(StateReader& r) override { cache_.load_state(r); }

 private:
  SemanticCache cache_;
};

// Applies uses to `cache` as SkipCache::fetch defines them: slots int64 [n], use int64 [n];
// one SemanticCache::touch per distinct g ≥ 0, in ascending g (none for an empty set).
void touch_in_ticks(SemanticCache& cache, const at::Tensor& slots, const at::Tensor& use);

// Values of `slots` int64 [n] (−1: a zero row) from `cache`, on `device`.
at::Tensor values_or_zero(const SemanticCache& cache, const at::Tensor& slots, at::Device device);

}  // namespace semskip
