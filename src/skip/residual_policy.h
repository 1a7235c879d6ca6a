#pragma once
// The token-level residual cache (docs/architecture.md §1):
//   residual:p=<probe>,r=<resume>,tau=<threshold>[,target=block|mlp|routed][,kv=propagate|mask|exact]
//            [,k=<neighbours>][,corr=<rank>[,ridge=<λ>]][,spread=<s>][,margin=<m>]
//            + the cache keys of cache_policy_options.h
// After block p each token's residual h_p becomes a key. A hit (best similarity ≥ tau) skips
// blocks p+1..r: with target=block the token's state becomes h_p + Δ, Δ the cached h_r − h_p;
// with target=mlp attention still runs and each skipped MLP is replaced by the
// cached MLP output of that layer; with target=routed attention and the shared expert (with
// its gate) still run and only the routed term of each MoE layer in p+1..r (router and routed
// experts: MoeBlock::routed_term) is replaced by the cached routed term of that layer — the
// value holds those layers' routed terms only, and dense layers in p+1..r run as they are (a
// span with no MoE layer, e.g. on a dense model, is refused naming its layers; corr= is refused
// with it, the calibration recording whole MLP outputs). On Mixtral (no shared expert) it
// equals target=mlp. With k > 1 the value is the similarity-weighted mean of
// the neighbours that reach tau. Misses run normally and are offered to the cache.
// The key is the state entering block p + 1: h_p, plus an update that another policy has
// scheduled to land before block p + 1 (StepContext::jump; only a cascade's earlier one-layer
// segment does, skip/cascade_policy.h), and a hit's update is added to what is scheduled at its
// jump layer. Alone, the policy never finds either scheduled.
// Two extra conditions a hit can be held to (both off by default; bench/results/stage1.md has
// what they did on the embedded models):
//   spread=s  (needs k ≥ 2) all k neighbours exist and each one's cached value lies within
//       s·‖v₁‖ of the best neighbour's v₁ (relative L2); the candidates' k values are fetched
//       (and count as used) and the comparison is charged as lookup (3·k·value_dim each).
//   margin=m  the best neighbour's own token had a top-1 logit margin ≥ m in the step that
//       inserted it: each entry keeps that margin beside its value (the step's logits,
//       StepContext::logits; the top-2 over the vocabulary charged as insert, 2·V per miss);
//       a token inserted without logits (a generation's prefill, scored at its last position
//       only) keeps −1 and never passes.
// corr=q (default 0: none) corrects the value by a rank-q linear term in h_p − h_c fitted on
// the calibration tokens (skip/value_correction.h; ridge=, default 0.01, its regularisation):
// with target=block on the calibration updates h_r − h_p, with target=mlp on the MLP outputs of
// layers p+1..r of the full model's calibration run.
// What a block-skipped token leaves in the attention of layers p+1..r (kv=, target=block):
//   propagate (default)  K/V computed from the token's state at each skipped layer. The only
//       exact state there is the input of layer p+1, h_p (the probe's output): layer p+1's K/V
//       come from h_p (the update Δ lands before block p+2), layers p+2..r's from h_p + Δ, the
//       cached estimate of h_r (their true inputs h_{p+1}..h_{r−1} are never computed). When
//       p+1 is the last layer, Δ lands before it and its K/V come from h_p + Δ. Charged as
//       kv_propagate (2 projections of d × kv_dim per token and layer).
//   mask  later tokens do not attend to the token at layers p+1..r.
//   exact  an optimistic reference, not a deployable rule: the K/V the full model computes for
//       the token at layers p+1..r (from the full run's inputs of those layers, kept by the
//       evaluator's full-model pass over the same step). Charged nothing. Teacher-forced
//       evaluation only: after a skipped run's tokens diverge from the full run's there are no
//       full-model K/V of them, so a run with generation refuses it (check_policy_requirements).
//       Here to reproduce published protocols that assume it.
// Whether a step's hits are applied follows the run's sync rule (skip/sync_rule.h); with a
// distributed cache every rank makes the same cache calls in every step (skip/skip_cache.h).

#include <limits>
#include <memory>
#include <set>
#include <string>

#include "skip/cache_policy_options.h"
#include "skip/value_correction.h"

namespace semskip {

class ResidualPolicy : public SkipPolicy {
 public:
  ResidualPolicy(const Descriptor& d, const PolicyEnv& env, int64_t n_layers, int64_t hidden);
  ~ResidualPolicy() override;

  std::string describe() const override { return text_; }
  KvMode kv_mode() const override { return kv_; }
  std::string index_descriptor() const override;
  bool needs_calibration() const override { return !proj_.ready() || !corr_.ready(); }
  bool needs_calibration_mlp_out() const override { return corr_.enabled() && target_ == SkipTarget::mlp; }
  bool skips_routed_only() const override { return target_ == SkipTarget::routed; }
  void calibrate(const CalibrationSet& calib) override;
  void begin_step(StepContext& ctx) override;
  void after_layer(int64_t layer, const at::Tensor& h, StepContext& ctx) override;
  bool wants_mlp_out(int64_t layer) const override;
  void after_mlp(int64_t layer, const at::Tensor& mlp_out, StepContext& ctx) override;
  void end_step(StepContext& ctx) override;
  CacheStats cache_stats() const override { return cache_->stats(); }
  void save_state(StateWriter& w) const override;
  void load_state(StateReader& r) override;

  // The descriptor keys it accepts (its own and the cache keys of cache_policy_options.h).
  static const std::set<std::string>& descriptor_keys();

  int64_t probe() const { return p_; }
  int64_t resume() const { return r_; }
  SkipTarget target() const { return target_; }
  // The layer whose input receives a hit's update Δ (target=block): p + 2, or p + 1 when
  // p + 1 is the last layer.
  int64_t jump_layer() const;

 private:
  // Width of a cached value: the update Δ (target=block), or one MLP output per layer of
  // value_layers_ (target=mlp: p+1..r; target=routed: the routed terms of its MoE layers).
  int64_t value_dim() const;
  // A layer's place among value_layers_, −1 when the value holds nothing of it.
  int64_t value_slot(int64_t layer) const;

  std::string text_;
  int64_t p_, r_, k_;
  double tau_;
  double spread_;  // < 0: no value-agreement check
  double margin_;  // −inf: no margin guard
  bool guards_margin() const { return margin_ > -std::numeric_limits<double>::infinity(); }
  // Width of a cache entry: the value, and the inserted token's own logit margin with margin=.
  int64_t stored_dim() const;
  SkipTarget target_;
  std::vector<int64_t> value_layers_;  // the layers whose MLP outputs a value holds, ascending; empty for target=block
  KvMode kv_;
  int64_t n_layers_;
  int64_t hidden_;
  KeyProjection proj_;
  ValueCorrection corr_;
  std::unique_ptr<SkipCache> cache_;
  SyncRule sync_;
  SumOverRanks sum_over_ranks_;
  int64_t pending_train_flops_ = 0;  // the PCA and correction fits', charged in the next step (skip/cache_charges.h)

  // This step's misses, kept from the probe layer until end_step.
  at::Tensor miss_flat_;   // int64 [M]: flat indices into [B·S]
  at::Tensor miss_keys_;   // fp32 [M, key_dim]
  at::Tensor miss_hp_;     // [M, d] residual after the probe block
  at::Tensor miss_value_;  // [M, value_dim] filled by after_layer(r) / after_mlp
};

}  // namespace semskip
