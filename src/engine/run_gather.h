#pragma once
// Per-rank results of a distributed `semskip run`, brought together (docs/architecture.md §4, §6): each
// rank's PolicyResults are gathered so that the report has one row per (policy, rank) in
// /per_rank, every request in /requests (so bootstrap intervals run over all requests), every
// (step, rank) in /steps, and per-layer counts and FLOPs summed over the ranks. In one process
// the same path runs without communication. Records travel packed field by field, as their
// field tables (engine/record_fields.h) list them.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/comm_totals.h"
#include "engine/evaluator.h"

namespace semskip {

class Communicator;

// One rank's figures for one policy (its fields: rank_fields(), engine/record_fields.h).
struct RankRecord {
  int rank = 0;
  std::string host;            // filled by per_rank_table (does not travel in the gather)
  int64_t n_requests = 0, n_tokens = 0, n_steps = 0;
  int64_t flops_full = 0, flops_executed = 0, flops_overhead = 0;  // what this rank computed
  // Parts of flops_overhead: index insertion, one-off training, value correction.
  int64_t flops_insert = 0, flops_train = 0, flops_correction = 0;
  int64_t t_full_ns = 0, t_skip_ns = 0, t_lookup_ns = 0, t_calib_ns = 0;
  int64_t t_comm_ns = 0;       // in collectives during the policy's runs (part of t_skip_ns)
  int64_t t_full_comm_ns = 0;  // in collectives during the full model's runs (part of t_full_ns)
  CacheStats cache;            // this rank's view (skip/skip_cache.h)
  CommTotals comm;             // the policy's runs, by collective kind
  EpStats ep;                  // the policy's runs
  // The rank's memory (RankMemory): the same in every policy's row of the rank.
  int64_t weight_bytes = 0, peak_rss_bytes = 0;
  // The policy's wall time that is neither lookup nor communication.
  int64_t t_compute_ns() const { return t_skip_ns - t_lookup_ns - t_comm_ns; }
};

// One decoder layer's figures for one policy: a row of /per_layer (layer_fields()).
struct LayerRecord {
  int64_t layer = 0;
  int64_t n_block_run = 0, n_block_skip = 0, n_mlp_skip = 0, n_kv_propagated = 0;
  int64_t flops_full = 0, flops_executed = 0;  // causal, the model's own operations of the layer
  int64_t flops_overhead = 0;                   // the policy's overheads charged under the layer
};

struct GatheredResult {
  std::string policy, index;
  std::vector<RankRecord> ranks;          // [world size], by rank
  std::vector<RequestRecord> requests;    // every rank's, by (step, rank, row): the union order
  std::vector<StepRecord> steps;          // by (step, rank)
  LayerCounts layers;                     // summed over ranks
  std::vector<int64_t> layer_flops_full;      // [n_layers], causal, summed over ranks
  std::vector<int64_t> layer_flops_executed;  // [n_layers]
  std::vector<int64_t> layer_flops_overhead;  // [n_layers]
};

// What a rank holds in memory, the same for every policy: the bytes of the model weights it
// holds (with --ep only its own routed experts), and its peak resident set so far.
struct RankMemory {
  int64_t weight_bytes = 0;    // Σ numel × element size over the parameters the model holds
  int64_t peak_rss_bytes = 0;  // VmHWM of /proc/self/status (Linux); 0 where it cannot be read
};

// This process's peak resident set size in bytes: VmHWM of /proc/self/status (Linux), the high
// water mark of its resident memory since it started; 0 where that file or line is missing.
int64_t peak_resident_bytes();

// The per-layer rows of one gathered result, layer by layer.
std::vector<LayerRecord> layer_records(const GatheredResult& r);

// Collective over `world` when it has more than one rank (every rank calls it with the same
// policies, and every rank receives everything); `world` null: this process alone. Results in
// the order of `mine`. `memory`: this rank's, in each of its /per_rank rows.
std::vector<GatheredResult> gather_results(const std::vector<PolicyResult>& mine, Communicator* world,
                                           const RankMemory& memory = {});

}  // namespace semskip
