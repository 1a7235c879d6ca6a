#pragma once
// SkipCache: the semantic cache as the cache policies use it (docs/architecture.md §1, §4). LocalCache
// (skip/local_cache.h) keeps every entry in this process; the distributed caches of src/parallel_cache
// (replicated, sharded) implement the same calls over the ranks of a job and are injected
// through PolicyEnv::make_cache, so src/skip never depends on src/parallel_cache.
//
// Collective contract: search, fetch and insert are collective in the distributed caches.
// A policy calls each of them exactly once per lookup point of a step, in the same order on
// every rank, also with zero rows (a rank out of work, a step without misses).

#include <cstdint>
#include <string>

#include <ATen/ATen.h>

#include "skip/skip_policy.h"

namespace semskip {

class FlopCounter;
class StateWriter;
class StateReader;

class SkipCache {
 public:
  virtual ~SkipCache() = default;

  struct Match {
    at::Tensor similarity;  // fp32 [N, k] CPU, best first; −inf where fewer than k entries exist
    at::Tensor handle;      // int64 [N, k] CPU: an entry for fetch(), −1 where none
  };
  // keys: fp32 [N, key_dim] unit vectors (N may be 0). Charges the lookup FLOPs of what this
  // rank searched to `flops` (group lookup, under `layer`).
  virtual Match search(const at::Tensor& keys, int64_t k, FlopCounter* flops = nullptr, int layer = -1) = 0;

  // Values of entries found by this step's search: handles int64 [n] (−1: no entry, a zero
  // row) -> [n, value_dim] in the value dtype, on `device`.
  // use int64 [n]: −1 the entry only lends its value; g ≥ 0 the entry served a hit and counts
  // as used (LRU recency, LFU count). Uses with the same g form one tick of the cache's clock,
  // ticks in ascending g. g is global over the ranks: the same g on several ranks is one tick,
  // as one process running the union of their micro-batches would have it.
  virtual at::Tensor fetch(const at::Tensor& handles, const at::Tensor& use, at::Device device) = 0;

  // Offers a step's misses: keys fp32 [M, key_dim], values [M, value_dim] (M may be 0). Each is
  // admitted by the admission rule and stored, evicting at capacity.
  virtual void insert(const at::Tensor& keys, const at::Tensor& values) = 0;

  // Counts this rank's lookup outcomes (the policy decides what is a hit); `vetoed`: lookups
  // whose match reached the threshold but were run because the sync rule refused the skip.
  virtual void count_lookups(int64_t lookups, int64_t hits, int64_t vetoed) = 0;

  // This rank's view: its own lookups and hits; insertions, evictions, size and capacity of
  // the entries this rank stores (its shard, its replica, or its whole local cache).
  virtual CacheStats stats() const = 0;
  virtual std::string index_descriptor() const = 0;
  // This rank's part of the cache at a step boundary (`semskip run --resume`), and its
  // restoration into a cache built with the same options on the same rank of the same world.
  // Not collective. The defaults refuse: a cache that cannot be checkpointed says so.
  virtual void save_state(StateWriter& w) const;
  virtual void load_state(StateReader& r);
  // Nanoseconds spent in collectives so far (0 for a local cache): lookup timings exclude them.
  virtual int64_t comm_ns() const { return 0; }
};

}  // namespace semskip
