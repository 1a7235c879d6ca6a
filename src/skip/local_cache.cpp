#include "skip/local_cache.h"

#include <map>
#include <vector>

#include "core/error.h"
#include "skip/state_io.h"

namespace semskip {

void touch_in_ticks(SemanticCache& cache, const at::Tensor& slots, const at::Tensor& use) {
  SEMSKIP_ASSERT(slots.numel() == use.numel());
  const at::Tensor s = slots.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor u = use.to(at::kCPU, at::kLong).contiguous();
  const int64_t* ps = s.data_ptr<int64_t>();
  const int64_t* pu = u.data_ptr<int64_t>();
  std::map<int64_t, std::vector<int64_t>> ticks;  // g -> slots used in that tick, ascending g
  for (int64_t i = 0; i < s.numel(); ++i)
    if (pu[i] >= 0 && ps[i] >= 0) ticks[pu[i]].push_back(ps[i]);
  for (const auto& [g, tick_slots] : ticks) cache.touch(at::tensor(tick_slots, at::kLong));
}

at::Tensor values_or_zero(const SemanticCache& cache, const at::Tensor& slots, at::Device device) {
  const at::Tensor s = slots.to(at::kCPU, at::kLong);
  at::Tensor v = cache.values(s.clamp_min(0), device);  // [n, value_dim]
  const at::Tensor none = s.lt(0);
  if (none.any().item<bool>()) v.masked_fill_(none.to(v.device()).unsqueeze(1), 0);
  return v;
}

void SkipCache::save_state(StateWriter& w) const {
  (void)w;
  SEMSKIP_THROW_MSG("cache over index '{}' cannot be checkpointed for --resume", index_descriptor());
}

void SkipCache::load_state(StateReader& r) {
  SEMSKIP_THROW_MSG("{}: cache over index '{}' cannot be restored", r.what(), index_descriptor());
}

LocalCache::LocalCache(int64_t key_dim, int64_t value_dim, const CacheOptions& opts)
    : cache_(key_dim, value_dim, opts) {}

SkipCache::Match LocalCache::search(const at::Tensor& keys, int64_t k, FlopCounter* flops, int layer) {
  SemanticCache::Match m = cache_.search(keys, k, flops, layer);
  return {m.similarity, m.slot};
}

at::Tensor LocalCache::fetch(const at::Tensor& handles, const at::Tensor& use, at::Device device) {
  touch_in_ticks(cache_, handles, use);
  return values_or_zero(cache_, handles, device);
}

void LocalCache::insert(const at::Tensor& keys, const at::Tensor& values) { cache_.insert(keys, values); }

void LocalCache::count_lookups(int64_t lookups, int64_t hits, int64_t vetoed) {
  cache_.count_lookups(lookups, hits, vetoed);
}

CacheStats LocalCache::stats() const { return cache_.stats(); }

}  // namespace semskip
