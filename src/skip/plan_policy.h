#pragma once
// The request-level plan cache (docs/architecture.md §1, "identifying simple queries"):
//   plan:p=<probe>,beta=<BI threshold>,tau=<threshold>[,decide=prefix|prompt]
//        + the cache keys of cache_policy_options.h
// Value: the layers after p whose block influence 1 − cos(h_in, h_out) on a request's own
// full run was below beta. Every decision is causal: a token's skips depend only on the tokens
// before it (and on itself) and on what earlier steps put in the cache, never on later tokens
// of its own request.
//   decide=prefix (default)  each token is its own lookup, keyed on the prefix seen so far: the
//                  running mean of the residual after block p over its request's tokens up
//                  to and including it (prompt and generated). A hit skips the neighbour's
//                  plan at that token. A prefill step offers a request to the cache when its
//                  last token missed: key the running mean at that token, plan measured on
//                  the tokens of that step that missed (they ran every layer).
//   decide=prompt  one lookup per request after its prompt, keyed on the prompt's mean; the
//                  prompt runs the full model and a hit's plan applies to generated tokens
//                  only (teacher-forced requests, prompt only, then skip nothing). A miss
//                  measures its plan on the prompt and offers it to the cache.
// Whether a step's hits are applied follows the run's sync rule (skip/sync_rule.h), counted
// over tokens (prefix) or requests (prompt). With a distributed cache every rank makes the
// same cache calls: a search and a fetch in every step (prefix) or every prefill step
// (prompt), an insert in every prefill step.

#include <map>
#include <memory>

#include "skip/cache_policy_options.h"

namespace semskip {

enum class PlanDecision { prefix, prompt };
const char* plan_decision_name(PlanDecision d);

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

  PlanDecision decision() const { return decide_; }

 private:
  void apply_plan(int64_t b, const std::vector<int64_t>& layers, StepContext& ctx) const;
  void lookup_prompt(const at::Tensor& h, StepContext& ctx);
  void lookup_prefix(const at::Tensor& h, StepContext& ctx);
  void charge_pending_train(StepContext& ctx);

  std::string text_;
  int64_t p_;
  double beta_, tau_;
  PlanDecision decide_;
  int64_t n_layers_, hidden_;
  KeyProjection proj_;
  std::unique_ptr<SkipCache> cache_;
  SyncRule sync_;
  SumOverRanks sum_over_ranks_;
  int64_t pending_train_flops_ = 0;  // the PCA fit's, charged in the next step (skip/cache_charges.h)

  // decide=prompt: request row -> layers its generated tokens skip.
  std::map<int64_t, std::vector<int64_t>> plans_;
  // decide=prefix: request row -> (tokens seen, fp32 [d] sum of their residuals after block p).
  std::map<int64_t, std::pair<int64_t, at::Tensor>> prefix_;
  // Prefill misses of this step: batch index -> key, and BI accumulated layer by layer.
  std::vector<int64_t> miss_b_;
  at::Tensor miss_keys_;            // fp32 [M, key_dim]
  at::Tensor measured_;             // bool [B, S]: tokens whose block influence is measured (ran every layer)
  at::Tensor prev_h_;               // [B, S, d] residual entering the current layer
  std::vector<std::vector<double>> miss_bi_;  // [M][n_layers]
};

}  // namespace semskip
