#pragma once
// SkipEngine: a skipping run's step, as an adapter from a SkipPolicy to the model's own
// forward. It turns the decisions the policy writes into a StepContext into a per-layer
// execution plan (model/layer_plan.h) that Transformer::forward reads before each block, and
// calls the policy back after each MLP and block. Attention, MLP / MoE and the KV cache are
// the model's; with no skips a step is Transformer::forward (a test holds it to that), and
// executed FLOPs, counted from executed shapes, fall as skips rise.
//
// Per step the host waits on the device only where the shapes need it: once to learn whether
// the step has padding, once per layer that gathers rows (the number of rows that run; under
// bucket one read of a layer's counts; under mask only once per step for the valid rows), once
// for the attention pairs when FLOPs are counted, and once for the layer counts, which are
// accumulated on the device.
//
// Expert parallelism (docs/architecture.md §4): with an ExpertParallel, every MoE layer of
// every step runs through it (as the forward's MoeExecutor) on the tokens that run its MLP —
// tokens that skip the block or the MLP never enter the all-to-all — and this rank joins the
// layer's collectives also with zero tokens (a step of no requests, a layer all its tokens
// skip). Only when no token of any rank runs the layer and every rank knows it
// (SkipPolicy::skips_layer_everywhere, StepContext::skipped_by_all) do all ranks leave the
// layer's all-to-alls out together. A step may have zero sequences (ids [0, S]): it computes
// nothing and joins every collective.
//
// K/V of block-skipped rows (SkipPolicy::kv_mode): propagate computes them from the rows'
// state and charges it; mask hides the rows at that layer; exact takes them from the full
// model's input of the layer, StepContext::full_states (which the step must carry, else it is
// refused), uncharged: an optimistic reference.
//
// Row execution (model/layer_plan.h): how the rows of a layer that run are executed — gather
// (compacted, the default), bucket (compacted and padded to row_bucket's sizes, for captured
// graphs) or mask (every row runs, the skipping ones are dropped: a baseline that saves
// nothing). The same decisions give the same tokens in every mode; the FLOPs counted are the
// executed ones. Set once (constructor or set_row_exec) and kept for every step; a serving
// loop sets it from its --skip-exec like `semskip run` does.

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "engine/skip_kv_cache.h"
#include "model/layer_plan.h"
#include "skip/skip_policy.h"

namespace semskip {

class Transformer;
class FlopCounter;
class ExpertParallel;

// Tokens per layer of one or more steps: what ran, what was skipped.
struct LayerCounts {
  std::vector<int64_t> n_block_run;    // per layer: tokens that ran the block
  std::vector<int64_t> n_block_skip;   // tokens that skipped the whole block
  std::vector<int64_t> n_mlp_skip;     // tokens that ran attention but not the MLP
  std::vector<int64_t> n_kv_propagated;  // skipped tokens whose K/V were computed and charged (kv=propagate)
  explicit LayerCounts(int64_t n_layers = 0);
  void merge(const LayerCounts& o);
};

class SkipEngine {
 public:
  // `ep`: MoE layers expert-parallel over its group (it must outlive the engine); null: local.
  explicit SkipEngine(const Transformer& model, ExpertParallel* ep = nullptr, RowExec row_exec = RowExec::gather);

  // How the rows of a planned layer are executed in the following steps.
  void set_row_exec(RowExec m) { row_exec_ = m; }
  RowExec row_exec() const { return row_exec_; }
  // Whether step() computes the head on each row's last position only (logits [B, 1, V]): a
  // server needs no more, and at a prefill chunk the head over every token is most of the
  // step's work for a large vocabulary. Off by default (the evaluator scores every token).
  void set_last_token_logits(bool on) { last_token_logits_ = on; }

  // The model's KV cache for `batch` sequences of up to `capacity` slots, preallocated.
  SkipKvCache make_cache(int64_t batch, int64_t capacity) const;

  // One step: ids int64 [B, S] (left-padded), valid bool [B, S] in ctx. The cache holds earlier
  // steps and receives this one's keys. Returns logits [B, S, V], or [B, 1, V] with
  // set_last_token_logits (compute dtype; zero at padding). `states`, when given, receives the
  // residual stream [n_layers + 1, B, S, d].
  at::Tensor step(const at::Tensor& ids, StepContext& ctx, SkipKvCache& kv, SkipPolicy& policy,
                  FlopCounter* flops, LayerCounts* counts, at::Tensor* states = nullptr) const;

 private:
  const Transformer& model_;
  ExpertParallel* ep_;
  RowExec row_exec_ = RowExec::gather;
  bool last_token_logits_ = false;
};

}  // namespace semskip
