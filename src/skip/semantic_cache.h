#pragma once
// SemanticCache: keys in a VectorIndex, values in a tensor of slots, capacity with LRU/LFU/FIFO
// eviction and an admission rule (docs/architecture.md §1). Keys are made by the caller's
// KeyProjection; the cache never sees model types.
//
// Checkpointing (`semskip run --resume`): save_state() writes the slots, values, eviction
// bookkeeping, counters and admission stream, and the log of every add and remove made on the
// index; load_state() replays that log into a fresh index of the same descriptor. Replaying the
// same calls in the same order rebuilds any deterministic backend (flat, IVF with its training
// point, HNSW's graph) exactly, where restoring the live entries alone would not (an IVF trained
// at another point, a flat index's row order after removals). The log holds the keys of every
// entry ever admitted (fp32 [insertions, key_dim] in all), kept on the host.

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "core/dtype.h"
#include "skip/skip_policy.h"

namespace semskip {

class FlopCounter;
class VectorIndex;
class StateWriter;
class StateReader;

enum class Eviction { lru, lfu, fifo };
Eviction parse_eviction(const std::string& s, const std::string& what);
const char* eviction_name(Eviction e);

struct CacheOptions {
  std::string index_descriptor = kDefaultIndexDescriptor;  // skip/skip_policy.h
  int64_t capacity = kDefaultCacheCapacity;                // entries
  Eviction eviction = Eviction::lru;
  double admit_prob = 1.0;    // "all-misses" = 1; "sample:<p>" admits each miss with probability p
  DType value_dtype = DType::fp32;
  at::Device device = at::kCPU;  // where values live (the model's device)
  uint64_t seed = 0;
};

// Parses an admission rule: "all-misses" or "sample:<p>".
double parse_admission(const std::string& s, const std::string& what);

class SemanticCache {
 public:
  SemanticCache(int64_t key_dim, int64_t value_dim, const CacheOptions& opts);
  ~SemanticCache();

  struct Match {
    at::Tensor similarity;  // fp32 [N, k], −inf where fewer than k entries exist
    at::Tensor slot;        // int64 [N, k], −1 where fewer than k entries exist
  };
  // keys: fp32 [N, key_dim] unit vectors (any device). Charges the index's lookup FLOPs to
  // `flops` (group lookup, under `layer`).
  Match search(const at::Tensor& keys, int64_t k, FlopCounter* flops = nullptr, int layer = -1);
  // Records that these slots served hits (LRU recency, LFU counts). slots: int64 [n].
  void touch(const at::Tensor& slots);
  // Values of these slots: [n, value_dim] in the value dtype, on `device`.
  at::Tensor values(const at::Tensor& slots, at::Device device) const;
  // Inserts misses (each admitted with the admission probability), evicting when full.
  // keys: fp32 [M, key_dim]; values: [M, value_dim]. A non-finite key or value is an Error
  // (a NaN entry would be served as a hit to every later request), nothing inserted.
  void insert(const at::Tensor& keys, const at::Tensor& values);

  // The state at a step boundary, and its restoration into a cache built with the same
  // dimensions and options (semskip::Error naming the reader's file on any mismatch).
  void save_state(StateWriter& w) const;
  void load_state(StateReader& r);

  int64_t size() const { return n_used_; }
  int64_t capacity() const { return opts_.capacity; }
  int64_t key_dim() const { return key_dim_; }
  int64_t value_dim() const { return value_dim_; }
  std::string index_descriptor() const;
  const CacheStats& stats() const { return stats_; }
  // Counts a lookup outcome (the policy decides what is a hit).
  // `vetoed`: matches that reached the threshold but ran, because the sync rule refused the skip.
  void count_lookups(int64_t lookups, int64_t hits, int64_t vetoed) {
    stats_.lookups += lookups, stats_.hits += hits, stats_.vetoed += vetoed;
  }

 private:
  int64_t pick_victim() const;

  int64_t key_dim_;
  int64_t value_dim_;
  CacheOptions opts_;
  std::unique_ptr<VectorIndex> index_;
  at::Tensor values_;                 // value dtype [capacity, value_dim], on opts_.device
  std::vector<int64_t> free_slots_;   // slots never used or freed
  int64_t n_used_ = 0;
  // Per-slot bookkeeping for eviction; `clock_` ticks once per insert/touch call.
  std::vector<int64_t> inserted_at_, used_at_, uses_;
  std::vector<bool> live_;
  int64_t clock_ = 0;
  std::mt19937_64 rng_;
  CacheStats stats_;
  // Every add (keys fp32 [n, key_dim] on the host, ids) and remove (ids, no keys) made on
  // index_, in order: what load_state() replays.
  struct IndexOp {
    std::vector<int64_t> ids;
    at::Tensor keys;  // undefined for a remove
  };
  std::vector<IndexOp> index_log_;
};

}  // namespace semskip
