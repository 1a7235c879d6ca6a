#pragma once
// The request-level plan cache (docs/architecture.md §1, "identifying simple queries"):
//   plan:p=<probe>,beta=<BI threshold>,tau=<threshold> + the cache keys of cache_policy_options.h
// Key: the prompt's mean-pooled residual after block p. Value: the layers after p whose block
// influence 1 − cos(h_in, h_out) on the request's own full run was below beta. A hit applies
// the neighbour's plan to every token of the new request, prompt and generated; a miss runs
// the full model, measures its plan and offers it to the cache. Whether a step's hits are
// applied follows the run's sync rule (skip/sync_rule.h), counted over requests; with a
// distributed cache every rank makes the same cache calls in every prefill step.

#include <map>
#include <memory>

#include "skip/cache_policy_options.h"

namespace semskip {

class PlanPolicy : public SkipPolicy {
 public:
  PlanPolicy(const Descriptor& d, const PolicyEnv& env, int64_t n_layers, int64_t hidden);
  ~PlanPolicy() override;

  std::string describe() const override { return text_; }
  std::string index_descriptor() const override;
  bool needs_calibration() const override { return !proj_.ready(); }
  void calibrate(const CalibrationSet& calib) override;
  void begin_request(int64_t row) override;
  void begin_step(StepContext& ctx) override;
  void after_layer(int64_t layer, const at::Tensor& h, StepContext& ctx) override;
  void end_step(StepContext& ctx) override;
  CacheStats cache_stats() const override { return cache_->stats(); }
  void save_state(StateWriter& w) const override;
  void load_state(StateReader& r) override;

 private:
  void apply_plan(int64_t b, const std::vector<int64_t>& layers, StepContext& ctx) const;

  std::string text_;
  int64_t p_;
  double beta_, tau_;
  int64_t n_layers_, hidden_;
  KeyProjection proj_;
  std::unique_ptr<SkipCache> cache_;
  SyncRule sync_;
  SumOverRanks sum_over_ranks_;

  std::map<int64_t, std::vector<int64_t>> plans_;  // request row -> layers it skips
  // Prefill misses of this step: batch index -> key, and BI accumulated layer by layer.
  std::vector<int64_t> miss_b_;
  at::Tensor miss_keys_;            // fp32 [M, key_dim]
  at::Tensor prev_h_;               // [B, S, d] residual entering the current layer
  std::vector<std::vector<double>> miss_bi_;  // [M][n_layers]
};

}  // namespace semskip
