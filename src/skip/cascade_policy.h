#pragma once
// A cascade of residual caches (docs/architecture.md §1): several non-overlapping segments,
// each a residual cache (skip/residual_policy.h) with its own probe layer, resume layer,
// threshold, key projection and cache:
//   cascade:p=<p1>+<p2>[+…],r=<r1>+<r2>[+…],tau=<t1>[+<t2>…][,target=block|mlp|routed][,kv=…]
//           [,<any other key of residual:>=<one value>|<one value per segment, joined by '+'>]
// p and r give one value per segment (the lists' length is the number of segments); tau and
// every other key of `residual:` (k, corr, ridge, spread, margin and the cache keys of
// cache_policy_options.h) take either one value, which every segment gets, or one value per
// segment, joined by '+' (`tau=0.985+0.95`, `cap=8192+4096`). target and kv take one value: the engine applies
// them to the whole policy (SkipPolicy::kv_mode, skips_routed_only). A key cannot be left out
// for some segments only (spread=, margin= apply to every segment or none).
//
// Segment i is exactly the policy `residual:p=<p_i>,r=<r_i>,tau=<tau_i>,…` with its values, built
// in the run's environment (the same index backend, capacity and seed): the cascade forwards every
// call to its segments in order and adds nothing of its own. The segments must be ordered and
// must not overlap: 0 ≤ p_1 < r_1 ≤ p_2 < r_2 ≤ … ≤ L − 1, so the layers one segment skips are
// never another's, and a later segment's probe (p_{i+1} ≥ r_i) is at or after the layer where
// the earlier one's span ends. Each segment's key is the token's state at its own probe layer as
// this run computed it: after an earlier segment's substitution where that one hit (its cached
// update Δ, or its cached MLP outputs), else the model's own. A deeper segment therefore caches,
// and looks up, states that earlier hits have perturbed; its value is what the layers p_i+1..r_i
// made of that state. (With target=block the update Δ of a one-layer span, r = p + 1, lands
// before block r + 1; a segment probing at that r takes it into its key: ResidualPolicy adds the
// jump scheduled at its p + 1 to the state it keys on.) Calibration (PCA keys, corr=) fits each
// segment on the full model's calibration states at its own layers.
//
// FLOPs: every segment charges exactly what the residual policy of its options charges (key
// projection, lookup, hit conditions, value correction, insertion, PCA and index training, K/V of
// block-skipped tokens), at its own probe layer; the cascade's charges are their sum. A token that
// hits in several segments saves each segment's layers. Cache statistics are summed over the
// segments: every token makes one lookup per segment, so the hit rate is hits over all segments'
// lookups (the report's `hit_rate`; a token is counted once per segment it hits in), and size,
// capacity and value bytes are the segments' totals (key_dim is the first segment's).

#include <memory>
#include <vector>

#include "skip/descriptor.h"
#include "skip/residual_policy.h"
#include "skip/skip_policy.h"

namespace semskip {

class CascadePolicy : public SkipPolicy {
 public:
  CascadePolicy(const Descriptor& d, const PolicyEnv& env, int64_t n_layers, int64_t hidden);
  ~CascadePolicy() override;

  // The descriptors of the segments a cascade descriptor names, in order (`residual:…` each, in
  // canonical form): the checks of the list lengths and of the segments' order, before any is
  // built. semskip::Error naming the cascade descriptor and the problem.
  static std::vector<Descriptor> segment_descriptors(const Descriptor& d, int64_t n_layers);

  std::string describe() const override { return text_; }
  KvMode kv_mode() const override { return segments_.front()->kv_mode(); }
  std::string index_descriptor() const override { return segments_.front()->index_descriptor(); }
  bool needs_calibration() const override;
  bool needs_calibration_mlp_out() const override;
  bool skips_routed_only() const override { return segments_.front()->skips_routed_only(); }
  void calibrate(const CalibrationSet& calib) override;
  void begin_request(int64_t row) override;
  void begin_step(StepContext& ctx) override;
  void after_layer(int64_t layer, const at::Tensor& h, StepContext& ctx) override;
  bool wants_mlp_out(int64_t layer) const override;
  void after_mlp(int64_t layer, const at::Tensor& mlp_out, StepContext& ctx) override;
  void end_step(StepContext& ctx) override;
  CacheStats cache_stats() const override;
  void save_state(StateWriter& w) const override;
  void load_state(StateReader& r) override;

  int64_t n_segments() const { return static_cast<int64_t>(segments_.size()); }
  const ResidualPolicy& segment(int64_t i) const { return *segments_.at(static_cast<size_t>(i)); }

 private:
  std::string text_;
  std::vector<std::unique_ptr<ResidualPolicy>> segments_;  // ordered by probe layer
};

}  // namespace semskip
