#pragma once
// StepContext: one micro-batch step as the skip engine runs it, and the decisions a
// SkipPolicy writes into it. Rows are sequences, columns the tokens of this step (a whole
// chunk in prefill, one token per sequence in decode).

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace semskip {

class FlopCounter;
class StepFiniteGuard;

class StepContext {
 public:
  StepContext(int64_t n_layers, int64_t hidden, at::Tensor valid, std::vector<int64_t> rows,
              bool prefill);

  int64_t n_layers() const { return n_layers_; }
  int64_t hidden() const { return hidden_; }
  int64_t batch() const { return valid_.size(0); }
  int64_t n_step_tokens() const { return valid_.size(1); }
  bool prefill() const { return prefill_; }
  // bool [B, S]: real tokens (false: padding); decisions on padding are ignored.
  const at::Tensor& valid() const { return valid_; }
  // Per row: a slot that identifies the request across the steps of its generation.
  const std::vector<int64_t>& rows() const { return rows_; }

  // Decisions, allocated on first use (all false / zero).
  // bool [B, S]: the token does not run block `layer` at all (identity update, unless a
  // jump is scheduled).
  at::Tensor& skip_block(int64_t layer);
  // bool [B, S]: the token runs attention of `layer` but not its MLP / MoE.
  at::Tensor& skip_mlp(int64_t layer);
  // [B, S, d]: added to the residual of skip_mlp tokens in place of the MLP output.
  at::Tensor& mlp_replacement(int64_t layer, const at::TensorOptions& opts);
  // [B, S, d]: added to the residual stream before block `layer` runs (a cached update Δ).
  at::Tensor& jump(int64_t layer, const at::TensorOptions& opts);

  // Read-only views for the engine; undefined tensors mean "no decision".
  const at::Tensor& skip_block_or_null(int64_t layer) const { return skip_block_[layer]; }
  const at::Tensor& skip_mlp_or_null(int64_t layer) const { return skip_mlp_[layer]; }
  const at::Tensor& mlp_replacement_or_null(int64_t layer) const { return mlp_replacement_[layer]; }
  const at::Tensor& jump_or_null(int64_t layer) const { return jump_[layer]; }

  // Residual stream of the full model on the same step, when the policy asked for it
  // (SkipPolicy::needs_full_states): [n_layers + 1, B, S, d], index 0 the embeddings and
  // index l + 1 the output of block l.
  at::Tensor full_states;

  // The step's logits, set by the engine before the policy's end_step: [B, S, V], or [B, 1, V]
  // when the engine computes the last position's only (a generation's prefill).
  at::Tensor logits;

  // Whether no token of any rank runs the MLP / MoE of `layer` in this step, and every rank
  // knows it (a globally agreed skip, sync global): the expert-parallel all-to-all of that
  // layer is then left out by all ranks together. Set by policies; false unless set.
  void set_skipped_by_all(int64_t layer);
  bool skipped_by_all(int64_t layer) const { return skipped_by_all_[static_cast<size_t>(layer)]; }

  // Index of this rank's row 0 in the step's union micro-batch (the rows of every rank in rank
  // order): 0 in one process. Distributed caches order per-request events by it.
  int64_t union_row_offset = 0;

  // Where the policy charges its overheads (key projection, lookup); may be null.
  FlopCounter* flops = nullptr;
  // Wall-clock nanoseconds the policy spent in cache lookups this step.
  int64_t t_lookup_ns = 0;
  // Set: the engine folds every layer's output and the logits into it and checks it once
  // before the policy's end of step (metrics/finite_check.h); may be null.
  StepFiniteGuard* finite = nullptr;

 private:
  int64_t n_layers_;
  int64_t hidden_;
  at::Tensor valid_;
  std::vector<int64_t> rows_;
  bool prefill_;
  std::vector<at::Tensor> skip_block_, skip_mlp_, mlp_replacement_, jump_;
  std::vector<bool> skipped_by_all_;
};

}  // namespace semskip
