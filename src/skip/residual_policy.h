#pragma once
// The token-level residual cache (docs/architecture.md §1):
//   residual:p=<probe>,r=<resume>,tau=<threshold>[,target=block|mlp][,kv=propagate|mask]
//            [,k=<neighbours>] + the cache keys of cache_policy_options.h
// After block p each token's residual h_p becomes a key. A hit (best similarity ≥ tau) skips
// blocks p+1..r: with target=block the token's state jumps to h_p + Δ, Δ the cached
// h_r − h_p; with target=mlp attention still runs and each skipped MLP is replaced by the
// cached MLP output of that layer. With k > 1 the value is the similarity-weighted mean of
// the neighbours that reach tau. Misses run normally and are offered to the cache.
// Whether a step's hits are applied follows the run's sync rule (skip/sync_rule.h); with a
// distributed cache every rank makes the same cache calls in every step (skip/skip_cache.h).

#include <memory>

#include "skip/cache_policy_options.h"

namespace semskip {

class ResidualPolicy : public SkipPolicy {
 public:
  ResidualPolicy(const Descriptor& d, const PolicyEnv& env, int64_t n_layers, int64_t hidden);
  ~ResidualPolicy() override;

  std::string describe() const override { return text_; }
  KvMode kv_mode() const override { return kv_; }
  std::string index_descriptor() const override;
  bool needs_calibration() const override { return !proj_.ready(); }
  void calibrate(const CalibrationSet& calib) override;
  void begin_step(StepContext& ctx) override;
  void after_layer(int64_t layer, const at::Tensor& h, StepContext& ctx) override;
  bool wants_mlp_out(int64_t layer) const override;
  void after_mlp(int64_t layer, const at::Tensor& mlp_out, StepContext& ctx) override;
  void end_step(StepContext& ctx) override;
  CacheStats cache_stats() const override { return cache_->stats(); }
  void save_state(StateWriter& w) const override;
  void load_state(StateReader& r) override;

  int64_t probe() const { return p_; }
  int64_t resume() const { return r_; }
  SkipTarget target() const { return target_; }

 private:
  std::string text_;
  int64_t p_, r_, k_;
  double tau_;
  SkipTarget target_;
  KvMode kv_;
  int64_t hidden_;
  KeyProjection proj_;
  std::unique_ptr<SkipCache> cache_;
  SyncRule sync_;
  SumOverRanks sum_over_ranks_;

  // This step's misses, kept from the probe layer until end_step.
  at::Tensor miss_flat_;   // int64 [M]: flat indices into [B·S]
  at::Tensor miss_keys_;   // fp32 [M, key_dim]
  at::Tensor miss_hp_;     // [M, d] residual after the probe block
  at::Tensor miss_value_;  // [M, value_dim] filled by after_layer(r) / after_mlp
};

}  // namespace semskip
