#include "skip/baseline_policies.h"

#include <algorithm>
#include <numeric>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "skip/state_io.h"
#include "skip/block_influence.h"

namespace semskip {

KvMode parse_kv_mode(const Descriptor& d) {
  const std::string kv = d.get_choice("kv", "propagate", {"propagate", "mask", "exact"});
  if (kv == "mask") return KvMode::mask;
  return kv == "exact" ? KvMode::exact : KvMode::propagate;
}

std::vector<int64_t> parse_layers(const Descriptor& d, int64_t n_layers) {
  std::vector<int64_t> layers = d.get_int_list("layers");
  if (!d.has("layers")) {
    for (int64_t l = 1; l + 1 < n_layers; ++l) layers.push_back(l);
  }
  for (int64_t l : layers)
    SEMSKIP_THROW_IF_NOT_MSG(l >= 0 && l < n_layers,
                             "policy descriptor '{}': layer {} is outside the model's 0..{}", d.text(), l,
                             n_layers - 1);
  std::sort(layers.begin(), layers.end());
  SEMSKIP_THROW_IF_NOT_MSG(std::adjacent_find(layers.begin(), layers.end()) == layers.end(),
                           "policy descriptor '{}': a layer is listed twice", d.text());
  return layers;
}

NonePolicy::NonePolicy(const Descriptor& d) : text_(d.text()) { d.check_keys({}); }

SkipTarget parse_target(const Descriptor& d) {
  const std::string t = d.get_choice("target", "block", {"block", "mlp", "routed"});
  const SkipTarget target = t == "mlp" ? SkipTarget::mlp : t == "routed" ? SkipTarget::routed : SkipTarget::block;
  SEMSKIP_THROW_IF_NOT_MSG(target == SkipTarget::block || !d.has("kv"),
                           "policy descriptor '{}': kv applies to target=block only (with target={} attention "
                           "runs for every token, so every K/V is computed)",
                           d.text(), t);
  return target;
}

std::vector<int64_t> routed_layers(const Descriptor& d, const std::vector<int64_t>& layers,
                                   const std::vector<int64_t>& moe_layers) {
  std::vector<int64_t> kept;
  for (int64_t l : layers)
    if (std::find(moe_layers.begin(), moe_layers.end(), l) != moe_layers.end()) kept.push_back(l);
  SEMSKIP_THROW_IF_NOT_MSG(!kept.empty() || layers.empty(),
                           "policy descriptor '{}': target=routed skips the routed experts of MoE layers, and {} "
                           "({}) {}; the model's MoE layers: {}",
                           d.text(), layers.size() == 1 ? "layer" : "layers", fmt::join(layers, "+"),
                           layers.size() == 1 ? "is dense" : "are all dense",
                           moe_layers.empty() ? "none (a dense model)" : fmt::format("{}", fmt::join(moe_layers, "+")));
  return kept;
}

StaticPolicy::StaticPolicy(const Descriptor& d, int64_t n_layers, const std::vector<int64_t>& moe_layers)
    : text_(d.text()), n_layers_(n_layers), target_(parse_target(d)), moe_layers_(moe_layers) {
  d.check_keys({"layers", "k", "target"});
  SEMSKIP_THROW_IF_NOT_MSG(d.has("layers") != d.has("k"),
                           "policy descriptor '{}': give exactly one of layers=<l+l…> and k=<n>", d.text());
  if (d.has("k")) {
    k_ = d.get_int("k", 0);
    SEMSKIP_THROW_IF_NOT_MSG(k_ >= 1 && k_ < n_layers,
                             "policy descriptor '{}': k must be in 1..{}", d.text(), n_layers - 1);
    // target=routed: the k are chosen among the MoE layers.
    SEMSKIP_THROW_IF_NOT_MSG(target_ != SkipTarget::routed || k_ <= static_cast<int64_t>(moe_layers.size()),
                             "policy descriptor '{}': target=routed chooses among the MoE layers, and the model has "
                             "{} (k must be at most that)", d.text(), moe_layers.size());
  } else {
    layers_ = parse_layers(d, n_layers);
    if (target_ == SkipTarget::routed) layers_ = routed_layers(d, layers_, moe_layers);
  }
}

void StaticPolicy::calibrate(const CalibrationSet& calib) {
  at::Tensor bi = block_influence(calib.states);  // fp64 [n_layers]
  SEMSKIP_ASSERT(bi.size(0) == n_layers_);
  std::vector<int64_t> order(static_cast<size_t>(n_layers_));
  std::iota(order.begin(), order.end(), 0);
  if (target_ == SkipTarget::routed) order = moe_layers_;
  SEMSKIP_ASSERT(static_cast<int64_t>(order.size()) >= k_);
  auto acc = bi.accessor<double, 1>();
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return acc[a] < acc[b]; });
  layers_.assign(order.begin(), order.begin() + k_);
  std::sort(layers_.begin(), layers_.end());
}

void StaticPolicy::begin_step(StepContext& ctx) {
  SEMSKIP_ASSERT(k_ == 0 || !layers_.empty());  // calibrate() ran
  for (int64_t l : layers_) {
    if (target_ == SkipTarget::block) {
      ctx.skip_block(l).copy_(ctx.valid());
    } else {
      // Attention runs, the MLP / MoE block (target=routed: its routed term) does not: a zero
      // update in its place. Every rank's static policy is the same, so every rank knows that
      // no token runs these layers' routed experts.
      ctx.skip_mlp(l).copy_(ctx.valid());
      ctx.set_skipped_by_all(l);
    }
  }
}

std::optional<std::vector<int64_t>> StaticPolicy::bypass_layers() const {
  SEMSKIP_ASSERT(k_ == 0 || !layers_.empty());  // calibrate() ran
  if (target_ != SkipTarget::block) return std::nullopt;
  return layers_;
}

bool StaticPolicy::skips_layer_everywhere(int64_t layer) const {
  return target_ == SkipTarget::block && std::find(layers_.begin(), layers_.end(), layer) != layers_.end();
}

RandomPolicy::RandomPolicy(const Descriptor& d, int64_t n_layers, uint64_t seed, const std::vector<int64_t>& moe_layers)
    : text_(d.text()),
      rate_(d.require_double("rate")),
      kv_(parse_kv_mode(d)),
      target_(parse_target(d)),
      layers_(parse_layers(d, n_layers)),
      gen_(at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(d.get_int("seed", static_cast<int64_t>(seed))))) {
  d.check_keys({"rate", "layers", "seed", "kv", "target"});
  if (target_ == SkipTarget::routed) layers_ = routed_layers(d, layers_, moe_layers);
  SEMSKIP_THROW_IF_NOT_MSG(rate_ >= 0.0 && rate_ <= 1.0, "policy descriptor '{}': rate must be in [0, 1]",
                           d.text());
}

void RandomPolicy::begin_step(StepContext& ctx) {
  // Drawn on the CPU so a seed gives the same decisions on every device: one draw for every
  // layer of the step (the generator fills it in order, as one draw per layer would), one copy.
  if (layers_.empty()) return;
  const int64_t n = static_cast<int64_t>(layers_.size());
  const at::Tensor u = at::rand({n, ctx.batch(), ctx.n_step_tokens()}, gen_, at::TensorOptions().dtype(at::kFloat));
  const at::Tensor drawn = u.lt(rate_).to(ctx.valid().device()).logical_and(ctx.valid());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t l = layers_[static_cast<size_t>(i)];
    at::Tensor& decision = target_ == SkipTarget::block ? ctx.skip_block(l) : ctx.skip_mlp(l);
    decision.copy_(drawn[i]);
  }
}

OraclePolicy::OraclePolicy(const Descriptor& d, int64_t n_layers)
    : text_(d.text()), eps_(d.require_double("eps")), kv_(parse_kv_mode(d)), layers_(parse_layers(d, n_layers)) {
  d.check_keys({"eps", "layers", "kv"});
  SEMSKIP_THROW_IF_NOT_MSG(eps_ >= 0.0, "policy descriptor '{}': eps must be ≥ 0", d.text());
}

void OraclePolicy::begin_step(StepContext& ctx) {
  SEMSKIP_THROW_IF_NOT_MSG(ctx.full_states.defined(),
                           "policy '{}' needs the full model's states of the same step; it runs in "
                           "teacher-forced evaluation only", text_);
  at::Tensor rel = relative_update(ctx.full_states);  // fp32 [n_layers, B, S]
  for (int64_t l : layers_) ctx.skip_block(l).copy_(rel[l].lt(eps_).logical_and(ctx.valid()));
}


void StaticPolicy::save_state(StateWriter& w) const {
  w.tag(text_);
  w.i64s(layers_);
}

void StaticPolicy::load_state(StateReader& r) {
  r.expect_tag(text_);
  std::vector<int64_t> layers = r.i64s();
  for (int64_t l : layers)
    SEMSKIP_THROW_IF_NOT_MSG(l >= 0 && l < n_layers_, "{}: policy '{}': saved layer {} out of range", r.what(), text_,
                             l);
  layers_ = std::move(layers);
}

void RandomPolicy::save_state(StateWriter& w) const {
  w.tag(text_);
  w.tensor(gen_.get_state());
}

void RandomPolicy::load_state(StateReader& r) {
  r.expect_tag(text_);
  const at::Tensor state = r.tensor();
  SEMSKIP_THROW_IF_NOT_MSG(state.defined() && state.scalar_type() == at::kByte,
                           "{}: policy '{}': the saved generator state is damaged", r.what(), text_);
  gen_.set_state(state);
}

}  // namespace semskip
