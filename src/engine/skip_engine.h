#pragma once
// SkipEngine: the layer loop of a skipping run. It runs a Transformer's own blocks (norms,
// attention, MLP / MoE) on the tokens that still run each layer — gathered, computed,
// scattered back — so executed FLOPs, counted from executed shapes, fall as skips rise.
// Decisions come from a SkipPolicy through a StepContext. With no skips it computes what
// Transformer::forward computes (a test holds it to that).

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "engine/skip_kv_cache.h"
#include "skip/skip_policy.h"

namespace semskip {

class Transformer;
class FlopCounter;

// Tokens per layer of one or more steps: what ran, what was skipped.
struct LayerCounts {
  std::vector<int64_t> n_block_run;    // per layer: tokens that ran the block
  std::vector<int64_t> n_block_skip;   // tokens that skipped the whole block
  std::vector<int64_t> n_mlp_skip;     // tokens that ran attention but not the MLP
  std::vector<int64_t> n_kv_propagated;  // skipped tokens whose K/V were computed
  explicit LayerCounts(int64_t n_layers = 0);
  void merge(const LayerCounts& o);
};

class SkipEngine {
 public:
  explicit SkipEngine(const Transformer& model);

  // A KV cache sized for `batch` sequences of up to `capacity` slots.
  SkipKvCache make_cache(int64_t batch, int64_t capacity) const;

  // One step: ids int64 [B, S] (left-padded), valid bool [B, S]. The cache holds earlier
  // steps and receives this one's keys. Returns logits [B, S, V] (compute dtype).
  // `states`, when given, receives the residual stream [n_layers + 1, B, S, d].
  at::Tensor step(const at::Tensor& ids, StepContext& ctx, SkipKvCache& kv, SkipPolicy& policy,
                  FlopCounter* flops, LayerCounts* counts, at::Tensor* states = nullptr) const;

 private:
  // Attention of layer l for the step's tokens; adds its output to h (flat [B·S, d]).
  void attention(int64_t l, at::Tensor& h, const at::Tensor& run, const at::Tensor& propagate,
                 const at::Tensor& positions, SkipKvCache& kv, FlopCounter* flops) const;

  const Transformer& model_;
};

}  // namespace semskip
