#pragma once
// SkipPolicy: decides, step by step, which tokens skip which layers and what replaces the
// skipped computation (docs/architecture.md §1). The engine runs the layer loop and calls the policy
// at fixed points; the policy writes its decisions into the StepContext.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "skip/step_context.h"
#include "skip/sync_rule.h"

namespace semskip {

class StateWriter;
class StateReader;

// What a skip replaces: the whole block, the MLP / MoE block only (attention runs), or on a
// MoE layer its routed term only (router and routed experts; attention and the shared expert
// run). A dense layer has no routed term: target=routed leaves it as it is.
enum class SkipTarget { block, mlp, routed };

// What a block-skipped token leaves in the attention of the layers it skips.
enum class KvMode {
  propagate,  // K/V computed from the token's substituted state (charged as kv_propagate)
  mask,       // later tokens do not attend to it at those layers
  exact,      // K/V the full model computes for the token there: an optimistic reference (a
              // deployed system does not have them), taken from the full model's run of the
              // same step (StepContext::full_states), teacher-forced only, charged nothing
};
const char* kv_mode_name(KvMode m);

// Residual streams of the full model on calibration text: [n_layers + 1, N, d] (index 0 the
// embeddings, index l + 1 the output of block l), N calibration tokens.
struct CalibrationSet {
  at::Tensor states;   // fp32 [L + 1, N, d]: the residual stream before layer 0 and after each layer
  at::Tensor mlp_out;  // fp32 [L, N, d]: each layer's MLP (MoE) output; only when a policy asks
};

struct CacheStats {
  int64_t lookups = 0;     // queries made
  int64_t hits = 0;        // queries whose best match reached the threshold
  int64_t insertions = 0;
  int64_t evictions = 0;
  int64_t rejected = 0;    // misses not admitted
  int64_t vetoed = 0;      // matches that reached the threshold but ran: the sync rule refused the skip
  int64_t size = 0;        // entries at the end
  int64_t capacity = 0;
  int64_t key_dim = 0;
  int64_t value_bytes = 0; // bytes of stored values at the end

  // Sums of caches taken together (a cascade's segments, a job's ranks): traffic counts
  // (lookups, hits, vetoes) and contents (insertions, evictions, rejections, entries, capacity,
  // value bytes) apart, since ranks holding one replicated cache share contents but not traffic.
  // key_dim is left as it is.
  void add_traffic(const CacheStats& o) {
    lookups += o.lookups;
    hits += o.hits;
    vetoed += o.vetoed;
  }
  void add_contents(const CacheStats& o) {
    insertions += o.insertions;
    evictions += o.evictions;
    rejected += o.rejected;
    size += o.size;
    capacity += o.capacity;
    value_bytes += o.value_bytes;
  }
};

class SkipPolicy {
 public:
  virtual ~SkipPolicy() = default;

  // The canonical descriptor the policy was built from (Descriptor::text(): documented key
  // order, one number notation); the key of its rows in reports and the printed table.
  virtual std::string describe() const = 0;
  virtual KvMode kv_mode() const { return KvMode::propagate; }
  // Whether the step needs StepContext::full_states (oracle's decisions; kv=exact's K/V).
  virtual bool needs_full_states() const { return kv_mode() == KvMode::exact; }
  // Whether every token skips `layer` in every step (static): then no later token can attend
  // to that layer's keys, and skipped tokens need none computed.
  virtual bool skips_layer_everywhere(int64_t layer) const { (void)layer; return false; }
  // Whether begin_step makes every decision of the step (none changed in after_layer /
  // after_mlp): the engine then counts every layer's rows in one host read before the
  // forward, and the forward's gathering reads nothing back (LayerPlan::n_run).
  virtual bool decides_at_begin_step() const { return false; }
  // The layers skipped by every token of every step, when such whole-layer skips are all the
  // policy decides (none; static with target=block, after calibrate()): a decode step is then
  // the model's own step without those layers, which fixed-shape and CUDA-graph decoding run
  // (model/fixed_decode.h). nullopt: the policy decides per token or per step.
  virtual std::optional<std::vector<int64_t>> bypass_layers() const { return std::nullopt; }
  // Whether calibrate() must be called before the first step.
  virtual bool needs_calibration() const { return false; }
  // Whether its calibration needs CalibrationSet::mlp_out besides the states.
  virtual bool needs_calibration_mlp_out() const { return false; }
  // Whether its skip_mlp decisions skip, and its after_mlp receives, only the routed term of
  // MoE layers (target=routed): the shared expert still runs (model/layer_plan.h routed_only).
  virtual bool skips_routed_only() const { return false; }
  // The index backend a cache policy searches ("" for policies without a cache).
  virtual std::string index_descriptor() const { return {}; }

  virtual void calibrate(const CalibrationSet& calib) { (void)calib; }
  // A new request occupies `row` (plan policies forget the previous occupant's plan).
  virtual void begin_request(int64_t row) { (void)row; }
  // Before block 0 of a step.
  virtual void begin_step(StepContext& ctx) { (void)ctx; }
  // After block `layer` ran; h: residual stream [B, S, d] (compute dtype).
  virtual void after_layer(int64_t layer, const at::Tensor& h, StepContext& ctx) {
    (void)layer, (void)h, (void)ctx;
  }
  // After the MLP of `layer`: its output [B, S, d], zero for tokens that did not run it.
  virtual void after_mlp(int64_t layer, const at::Tensor& mlp_out, StepContext& ctx) {
    (void)layer, (void)mlp_out, (void)ctx;
  }
  // Whether after_mlp is wanted for `layer` (saves the engine the scatter otherwise).
  virtual bool wants_mlp_out(int64_t layer) const { (void)layer; return false; }
  // After the last block of a step: caches are updated here.
  virtual void end_step(StepContext& ctx) { (void)ctx; }

  virtual CacheStats cache_stats() const { return {}; }

  // The policy's state at a step boundary (`semskip run --resume`): what it has learnt or
  // drawn so far (cache contents, calibration, random streams). load_state() restores it into
  // a policy built from the same descriptor in the same run configuration, so that the steps
  // that follow decide exactly as they would have. The defaults save only the descriptor, which
  // load_state() checks: a policy without such state is a function of its descriptor.
  virtual void save_state(StateWriter& w) const;
  virtual void load_state(StateReader& r);
};

class SkipCache;
struct CacheOptions;

// Makes the cache of a cache policy: keys fp32 [*, key_dim], values [*, value_dim].
using CacheFactory =
    std::function<std::unique_ptr<SkipCache>(int64_t key_dim, int64_t value_dim, const CacheOptions& opts)>;

// The defaults of cache policies, one constant each: `semskip run --index` / `--capacity`,
// PolicyEnv and CacheOptions (skip/semantic_cache.h) all start from these.
inline constexpr const char* kDefaultIndexDescriptor = "torch:flat";  // exact cosine search, every build
inline constexpr int64_t kDefaultCacheCapacity = 4096;                // entries

// Builds a policy from its descriptor (see skip/policy_factory.cpp for the grammar).
struct PolicyEnv {
  int64_t n_layers = 0;                                        // of the model the policy runs on
  int64_t hidden = 0;                                          // residual width d
  std::vector<int64_t> moe_layers;                             // its MoE layers, ascending (target=routed skips only these)
  std::string index_descriptor = kDefaultIndexDescriptor;      // backend of cache policies
  int64_t capacity = kDefaultCacheCapacity;                    // cache capacity (entries); cap= overrides
  at::Device device = at::kCPU;                 // where cached values live
  uint64_t seed = 0;
  // Distribution (docs/architecture.md §4), all optional: the defaults are one process.
  SyncRule sync;               // when cache policies apply their hits (skip/sync_rule.h)
  SumOverRanks sum_over_ranks; // the allreduce of sync global; null: one process
  SumOverRanks sum_over_group; // the same over the expert-parallel group (global:group); null: none
  // The sum a policy's sync rule decides over: the group's for global:group, else the job's.
  const SumOverRanks& sync_sum() const { return sync.over_group ? sum_over_group : sum_over_ranks; }
  CacheFactory make_cache;     // null: a LocalCache
};
std::unique_ptr<SkipPolicy> make_policy(const std::string& descriptor, const PolicyEnv& env);

}  // namespace semskip
