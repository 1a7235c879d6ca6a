#pragma once
// Baselines under the same accounting as the cache policies (docs/architecture.md §1):
//   none                              the full model
//   static:layers=<l+l…> | static:k=<n>   [,target=block|mlp|routed]
//                                     skip fixed layers; k picks the n of lowest block
//                                     influence on the calibration set (ShortGPT)
//   random:rate=<r>[,layers=<l+l…>][,seed=<s>][,kv=propagate|mask|exact][,target=block|mlp|routed]
//                                     every (token, layer) skipped with probability r
// target=mlp (the matching baseline of a cache policy's target=mlp): attention runs and only
// the MLP / MoE block (router, routed and shared experts) of the chosen (token, layer) pairs
// is skipped, so exactly its FLOPs are saved, under the same accounting.
// target=routed (the matching baseline of a cache policy's target=routed): attention and the
// shared expert with its gate run; only the router and the routed experts' weighted sum of the
// chosen pairs is skipped (a zero in its place), so exactly their FLOPs are saved. On Mixtral
// (no shared expert) it equals target=mlp. Dense layers have no routed term: the chosen layers
// that are dense are not skipped (k= chooses among the MoE layers), and a policy whose layers
// are all dense (every layer of a dense model) is refused, naming them.
// kv= applies to target=block only.
//   oracle:eps=<e>[,layers=<l+l…>][,kv=propagate|mask|exact]
//                                     skip where the full model's update is small:
//                                     ‖h_l − h_{l−1}‖ / ‖h_{l−1}‖ < e (needs the full run)
// kv= as for the residual policy (skip/residual_policy.h): propagate computes the K/V of a
// skipped block from the token's state (here its unchanged input), mask hides it, exact takes
// the full model's (an optimistic reference, teacher-forced only, charged nothing).
// A skipped block is an identity update. `layers` defaults to every layer but the first and
// the last, which carry most of the model's work on its input and output.

#include <random>

#include "skip/descriptor.h"
#include "skip/skip_policy.h"

namespace semskip {

class NonePolicy : public SkipPolicy {
 public:
  explicit NonePolicy(const Descriptor& d);
  std::string describe() const override { return text_; }
  bool decides_at_begin_step() const override { return true; }
  std::optional<std::vector<int64_t>> bypass_layers() const override { return std::vector<int64_t>{}; }

 private:
  std::string text_;
};

class StaticPolicy : public SkipPolicy {
 public:
  // moe_layers: the model's MoE layers, ascending (target=routed skips only these).
  StaticPolicy(const Descriptor& d, int64_t n_layers, const std::vector<int64_t>& moe_layers = {});
  std::string describe() const override { return text_; }
  bool needs_calibration() const override { return k_ > 0; }
  bool skips_routed_only() const override { return target_ == SkipTarget::routed; }
  bool decides_at_begin_step() const override { return true; }
  void calibrate(const CalibrationSet& calib) override;
  void begin_step(StepContext& ctx) override;
  bool skips_layer_everywhere(int64_t layer) const override;
  std::optional<std::vector<int64_t>> bypass_layers() const override;
  const std::vector<int64_t>& layers() const { return layers_; }
  void save_state(StateWriter& w) const override;  // the calibrated layers
  void load_state(StateReader& r) override;

 private:
  std::string text_;
  int64_t n_layers_;
  SkipTarget target_;
  std::vector<int64_t> moe_layers_;
  int64_t k_ = 0;
  std::vector<int64_t> layers_;
};

class RandomPolicy : public SkipPolicy {
 public:
  RandomPolicy(const Descriptor& d, int64_t n_layers, uint64_t seed, const std::vector<int64_t>& moe_layers = {});
  std::string describe() const override { return text_; }
  KvMode kv_mode() const override { return kv_; }
  bool skips_routed_only() const override { return target_ == SkipTarget::routed; }
  bool decides_at_begin_step() const override { return true; }
  void begin_step(StepContext& ctx) override;
  void save_state(StateWriter& w) const override;  // the generator's position in its stream
  void load_state(StateReader& r) override;

 private:
  std::string text_;
  double rate_;
  KvMode kv_;
  SkipTarget target_;
  std::vector<int64_t> layers_;
  at::Generator gen_;
};

class OraclePolicy : public SkipPolicy {
 public:
  OraclePolicy(const Descriptor& d, int64_t n_layers);
  std::string describe() const override { return text_; }
  KvMode kv_mode() const override { return kv_; }
  bool needs_full_states() const override { return true; }
  bool decides_at_begin_step() const override { return true; }
  void begin_step(StepContext& ctx) override;

 private:
  std::string text_;
  double eps_;
  KvMode kv_;
  std::vector<int64_t> layers_;
};

// Parses `kv=` of a descriptor: propagate (the default), mask or exact.
KvMode parse_kv_mode(const Descriptor& d);
// Parses `target=` (block by default); kv= with target=mlp or routed is refused.
SkipTarget parse_target(const Descriptor& d);
// target=routed: the MoE layers among a policy's `layers` (dense ones have no routed term);
// refused, naming the descriptor, the layers and the model's MoE layers, when none is MoE.
std::vector<int64_t> routed_layers(const Descriptor& d, const std::vector<int64_t>& layers,
                                   const std::vector<int64_t>& moe_layers);
// `layers=` of a descriptor, checked against n_layers; the default excludes the first and
// last layer.
std::vector<int64_t> parse_layers(const Descriptor& d, int64_t n_layers);

}  // namespace semskip
