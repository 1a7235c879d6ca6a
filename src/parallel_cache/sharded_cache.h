#pragma once
// Cache mode `sharded` (docs/architecture.md §4): each rank holds a shard of the entries, its capacity
// per shard (the job holds up to n_ranks · capacity). Memory scales out; lookups cost
// communication:
//   search  a step's queries are all-gathered, each rank searches its shard for all of them
//           (and is charged the lookup FLOPs of that search), each rank's k best per query go
//           back to the query's rank (all-to-all), which keeps the k best of all shards: by
//           similarity, ties to the lower rank, then the shard's own order.
//   fetch   the requests for values (and the uses of hits) go to the entries' owners and the
//           values come back (two all-to-alls).
//   insert  entry j of the step's union of offered misses (rank order, then row order) goes to
//           rank (G + j) mod n_ranks, G the number of entries offered to the job before this
//           step: round robin over the global insertion counter, the same rule on every rank.
//           Each owner inserts what it receives in (source rank, row) order, once per step.
// While no shard evicts, the hits equal those of one process running the union of the ranks'
// micro-batches with one cache of all entries. Admission sampling (admit=sample:<p>) draws on
// each owner from its own stream (seed + rank).
//
// Handles are owner · capacity + slot. Collective over `comm` (skip/skip_cache.h).

#include <cstdint>
#include <string>

#include "comm/communicator.h"
#include "skip/semantic_cache.h"
#include "skip/skip_cache.h"

namespace semskip {

class ShardedCache final : public SkipCache {
 public:
  // Every rank must pass the same options. `comm` must outlive the cache.
  ShardedCache(Communicator& comm, int64_t key_dim, int64_t value_dim, const CacheOptions& opts);

  Match search(const at::Tensor& keys, int64_t k, FlopCounter* flops = nullptr, int layer = -1) override;
  at::Tensor fetch(const at::Tensor& handles, const at::Tensor& use, at::Device device) override;
  void insert(const at::Tensor& keys, const at::Tensor& values) override;
  void count_lookups(int64_t lookups, int64_t hits, int64_t vetoed) override;
  // Lookups and hits: of this rank's queries. Insertions, evictions, size, capacity: its shard's.
  CacheStats stats() const override;
  std::string index_descriptor() const override { return shard_.index_descriptor(); }
  // This rank's shard and the global insertion counter G.
  void save_state(StateWriter& w) const override;
  void load_state(StateReader& r) override;
  int64_t comm_ns() const override { return comm_ns_; }

 private:
  static CacheOptions shard_options(const CacheOptions& opts, int rank);

  Communicator& comm_;
  SemanticCache shard_;
  int64_t capacity_;       // per shard: the handle stride
  int64_t n_offered_ = 0;  // G: entries offered to the whole job in earlier steps
  int64_t comm_ns_ = 0;
};

}  // namespace semskip
