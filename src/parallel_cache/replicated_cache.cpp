#include "parallel_cache/replicated_cache.h"

#include "comm/collective_timer.h"
#include "skip/local_cache.h"

namespace semskip {

ReplicatedCache::ReplicatedCache(Communicator& comm, int64_t key_dim, int64_t value_dim, const CacheOptions& opts)
    : comm_(comm), cache_(key_dim, value_dim, opts) {}

SkipCache::Match ReplicatedCache::search(const at::Tensor& keys, int64_t k, FlopCounter* flops, int layer) {
  SemanticCache::Match m = cache_.search(keys, k, flops, layer);
  return {m.similarity, m.slot};
}

at::Tensor ReplicatedCache::fetch(const at::Tensor& handles, const at::Tensor& use, at::Device device) {
  // The uses of every rank, applied on every replica: (slot, tick) pairs in rank order.
  const at::Tensor h = handles.to(at::kCPU, at::kLong).reshape({-1});
  const at::Tensor u = use.to(at::kCPU, at::kLong).reshape({-1});
  const at::Tensor used = u.ge(0).logical_and(h.ge(0));
  const at::Tensor pairs = at::stack({h.masked_select(used), u.masked_select(used)}, 1);  // int64 [n_used, 2]
  at::Tensor all;
  {
    CollectiveTimer t(comm_ns_);
    all = comm_.allgatherv(pairs);  // int64 [Σ n_used, 2]
  }
  touch_in_ticks(cache_, all.select(1, 0), all.select(1, 1));
  return values_or_zero(cache_, h, device);
}

void ReplicatedCache::insert(const at::Tensor& keys, const at::Tensor& values) {
  at::Tensor all_keys, all_values;
  {
    CollectiveTimer t(comm_ns_);
    all_keys = comm_.allgatherv(keys.to(at::kCPU, at::kFloat).contiguous());  // fp32 [Σ M, key_dim], rank order
    all_values = comm_.allgatherv(values.contiguous());                      // [Σ M, value_dim]
  }
  cache_.insert(all_keys, all_values);
}

void ReplicatedCache::count_lookups(int64_t lookups, int64_t hits, int64_t vetoed) {
  cache_.count_lookups(lookups, hits, vetoed);
}

CacheStats ReplicatedCache::stats() const { return cache_.stats(); }

}  // namespace semskip
