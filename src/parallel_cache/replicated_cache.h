#pragma once
// Cache mode `replicated` (docs/architecture.md §4): every rank holds every entry. Searches are local
// (each rank its own queries, against the whole cache); each step's new entries are
// all-gathered and inserted on every rank in (rank, row) order, and the uses of hits are
// all-gathered and applied alike, so every replica stays identical — the cache of one process
// that ran the union of the ranks' micro-batches, step by step.
//
// Collective over `comm` (skip/skip_cache.h): fetch and insert exchange data; search does not
// communicate but is called alike on every rank all the same.

#include <cstdint>
#include <string>

#include "comm/communicator.h"
#include "skip/semantic_cache.h"
#include "skip/skip_cache.h"

namespace semskip {

class ReplicatedCache final : public SkipCache {
 public:
  // Every rank must pass the same options (admission draws from the same seeded stream on
  // every replica, so admission decisions agree). `comm` must outlive the cache.
  ReplicatedCache(Communicator& comm, int64_t key_dim, int64_t value_dim, const CacheOptions& opts);

  Match search(const at::Tensor& keys, int64_t k, FlopCounter* flops = nullptr, int layer = -1) override;
  at::Tensor fetch(const at::Tensor& handles, const at::Tensor& use, at::Device device) override;
  void insert(const at::Tensor& keys, const at::Tensor& values) override;
  void count_lookups(int64_t lookups, int64_t hits, int64_t vetoed) override;
  // Lookups and hits: this rank's. Insertions, evictions, size: the replica's (the same on
  // every rank; they describe the one logical cache).
  CacheStats stats() const override;
  std::string index_descriptor() const override { return cache_.index_descriptor(); }
  // The replica (identical on every rank; each rank saves and restores its own).
  void save_state(StateWriter& w) const override { cache_.save_state(w); }
  void load_state(StateReader& r) override { cache_.load_state(r); }
  int64_t comm_ns() const override { return comm_ns_; }

 private:
  Communicator& comm_;
  SemanticCache cache_;
  int64_t comm_ns_ = 0;
};

}  // namespace semskip
