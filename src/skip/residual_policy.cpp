#include "skip/residual_policy.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "core/error.h"
#include "core/timing.h"
#include "metrics/flop_counter.h"
#include "skip/baseline_policies.h"
#include "skip/cache_charges.h"
#include "skip/state_io.h"

namespace semskip {

ResidualPolicy::ResidualPolicy(const Descriptor& d, const PolicyEnv& env, int64_t n_layers, int64_t hidden)
    : text_(d.text()),
      p_(d.require_int("p")),
      r_(d.require_int("r")),
      k_(d.get_int("k", 1)),
      tau_(d.require_double("tau")),
      spread_(d.get_double("spread", -1.0)),
      margin_(d.has("margin") ? d.require_double("margin") : -std::numeric_limits<double>::infinity()),
      target_(parse_target(d)),
      kv_(parse_kv_mode(d)),
      n_layers_(n_layers),
      hidden_(hidden),
      proj_(KeyProjectionKind::none, hidden, hidden, 0),
      corr_(0, 0.01, hidden, hidden),
      sync_(env.sync),
      sum_over_ranks_(env.sync_sum()) {
  d.check_keys(descriptor_keys());
  SEMSKIP_THROW_IF_NOT_MSG(p_ >= 0 && p_ < r_ && r_ < n_layers,
                           "policy descriptor '{}': need 0 ≤ p < r ≤ {} (the last layer)", text_, n_layers - 1);
  SEMSKIP_THROW_IF_NOT_MSG(k_ >= 1, "policy descriptor '{}': k must be ≥ 1", text_);
  SEMSKIP_THROW_IF_NOT_MSG(tau_ >= -1.0 && tau_ <= 1.0, "policy descriptor '{}': tau must be in [-1, 1]", text_);
  SEMSKIP_THROW_IF_NOT_MSG(!d.has("margin") || margin_ >= 0.0,
                           "policy descriptor '{}': margin (the least top-1 logit margin of a hit's neighbour) "
                           "must be ≥ 0", text_);
  SEMSKIP_THROW_IF_NOT_MSG(!d.has("spread") || (spread_ >= 0.0 && k_ >= 2),
                           "policy descriptor '{}': spread (the neighbours' value agreement) must be ≥ 0 and "
                           "needs k ≥ 2 neighbours", text_);
  if (target_ != SkipTarget::block) {
    std::vector<int64_t> span;
    for (int64_t l = p_ + 1; l <= r_; ++l) span.push_back(l);
    // target=routed: a value holds the routed terms of the MoE layers among p+1..r only.
    value_layers_ = target_ == SkipTarget::routed ? routed_layers(d, span, env.moe_layers) : span;
  }
  const int64_t value_dim = this->value_dim();
  const int64_t corr = d.get_int("corr", 0);
  SEMSKIP_THROW_IF_NOT_MSG(corr == 0 || target_ != SkipTarget::routed,
                           "policy descriptor '{}': corr applies to target=block and target=mlp (the calibration "
                           "run records whole MLP outputs, not routed terms)", text_);
  const double ridge = d.get_double("ridge", 0.01);
  SEMSKIP_THROW_IF_NOT_MSG(corr >= 0 && corr <= std::min(hidden, value_dim),
                           "policy descriptor '{}': corr (the correction's rank) must be in 0..{}", text_,
                           std::min(hidden, value_dim));
  SEMSKIP_THROW_IF_NOT_MSG(corr > 0 || !d.has("ridge"),
                           "policy descriptor '{}': ridge applies to the value correction only (corr=<rank> > 0)", text_);
  SEMSKIP_THROW_IF_NOT_MSG(ridge > 0.0, "policy descriptor '{}': ridge must be > 0", text_);
  corr_ = ValueCorrection(corr, ridge, hidden, value_dim);
  SEMSKIP_THROW_IF_NOT_MSG(target_ == SkipTarget::block || !d.has("kv"),
                           "policy descriptor '{}': kv applies to target=block only (with target=mlp "
                           "attention runs for every token, so every K/V is computed)", text_);
  CachePolicyOptions o = parse_cache_policy_options(d, env, hidden);
  proj_ = KeyProjection(o.projection, hidden, o.key_dim, env.seed);
  cache_ = make_skip_cache(env, proj_.key_dim(), stored_dim(), o.cache);
}

ResidualPolicy::~ResidualPolicy() = default;

const std::set<std::string>& ResidualPolicy::descriptor_keys() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> k = {"p", "r", "tau", "target", "kv", "k", "corr", "ridge", "spread", "margin"};
    k.insert(kCacheDescriptorKeys.begin(), kCacheDescriptorKeys.end());
    return k;
  }();
  return keys;
}

std::string ResidualPolicy::index_descriptor() const { return cache_->index_descriptor(); }

void ResidualPolicy::calibrate(const CalibrationSet& calib) {
  // Keys are made after block p: states index p + 1.
  proj_.fit(calib.states[p_ + 1]);
  pending_train_flops_ += projection_fit_flops(proj_, calib.states.size(1));
  if (corr_.enabled()) {
    const at::Tensor hp = calib.states[p_ + 1];  // [N, d]
    at::Tensor value;
    if (target_ == SkipTarget::block) {
      value = calib.states[r_ + 1] - hp;
    } else {
      SEMSKIP_THROW_IF_NOT_MSG(calib.mlp_out.defined() && calib.mlp_out.size(0) == n_layers_,
                               "policy '{}': the value correction of target=mlp needs the calibration run's MLP "
                               "outputs", text_);
      value = calib.mlp_out.slice(0, p_ + 1, r_ + 1).permute({1, 0, 2}).reshape({hp.size(0), -1});  // [N, (r−p)·d]
    }
    corr_.fit(hp, value);
    pending_train_flops_ += corr_.fit_flops(hp.size(0));
  }
}

void ResidualPolicy::begin_step(StepContext& ctx) {
  (void)ctx;
  miss_flat_ = at::Tensor();
  miss_keys_ = at::Tensor();
  miss_hp_ = at::Tensor();
  miss_value_ = at::Tensor();
}

void ResidualPolicy::after_layer(int64_t layer, const at::Tensor& h, StepContext& ctx) {
  const int64_t d = hidden_;
  if (layer == p_) {
    at::Tensor flat = ctx.valid().flatten().nonzero().squeeze(1).to(h.device());  // int64 [N]
    // The state entering block p + 1: an update scheduled to land there (a cascade's earlier
    // one-layer segment, skip/cascade_policy.h) is part of it.
    const at::Tensor& pending = ctx.jump_or_null(p_ + 1);
    at::Tensor hp = (pending.defined() ? h + pending : h).reshape({-1, d}).index_select(0, flat);  // [N, d]
    const Stopwatch lookup_clock;
    const int64_t comm0 = cache_->comm_ns();
    at::Tensor keys = proj_(hp, ctx.flops, static_cast<int>(p_));  // fp32 [N, key_dim]
    SkipCache::Match m = cache_->search(keys, k_, ctx.flops, static_cast<int>(p_));
    ctx.t_lookup_ns += lookup_clock.nanoseconds() - (cache_->comm_ns() - comm0);
    at::Tensor accept = m.similarity.ge(tau_);  // bool [N, k], CPU
    at::Tensor hit = accept.select(1, 0);       // the best match decides
    // The values are fetched on every rank, also without candidates: a distributed cache's
    // fetch is collective. With spread=, every candidate's k neighbours are fetched (and count
    // as used: they were consulted), else the accepted neighbours of each candidate.
    at::Tensor cand_rows = hit.nonzero().squeeze(1);                           // CPU int64 [C]
    at::Tensor sim = m.similarity.index_select(0, cand_rows);                  // [C, k]
    at::Tensor slot = m.handle.index_select(0, cand_rows);                     // [C, k]
    at::Tensor w = at::where(accept.index_select(0, cand_rows), sim, at::zeros_like(sim));
    w = w / w.sum(1, true);                                                    // [C, k]
    at::Tensor consulted = spread_ >= 0.0 ? slot.ge(0) : w.gt(0);
    // Every neighbour consulted counts as used, all in one tick of the cache's clock.
    at::Tensor use = at::where(consulted, at::zeros_like(slot), at::full_like(slot, -1));
    at::Tensor fetched = cache_->fetch(slot.flatten(), use.flatten(), h.device());  // [C·k, vdim]
    at::Tensor stored = fetched.to(h.scalar_type()).reshape({cand_rows.size(0), k_, stored_dim()});
    at::Tensor vals = stored.narrow(2, 0, value_dim());  // [C, k, vdim]
    // A hit condition's verdict ok (bool [C], CPU) on the candidates: the refused ones run as
    // misses, and the candidates' rows (and their values, weights and handles) narrow to the rest.
    const auto keep_candidates = [&](const at::Tensor& ok) {
      hit.index_put_({cand_rows}, ok);
      const at::Tensor keep = ok.nonzero().squeeze(1);
      vals = vals.index_select(0, keep.to(vals.device()));
      w = w.index_select(0, keep);
      slot = slot.index_select(0, keep);
      cand_rows = cand_rows.index_select(0, keep);
    };
    if (guards_margin() && cand_rows.size(0) > 0) {
      // The best neighbour's own prediction was confident enough (its top-1 logit margin).
      keep_candidates(stored.select(2, value_dim()).select(1, 0).to(at::kFloat).ge(margin_).to(at::kCPU));
    }
    if (spread_ >= 0.0 && cand_rows.size(0) > 0) {
      // A candidate is a hit only when all k neighbours exist and each one's value lies within
      // spread × ‖v₁‖ of the best neighbour's v₁ (relative L2): close keys whose cached values
      // disagree mark a region where the skipped layers' output is not a function of h_p.
      at::Tensor v1 = vals.select(1, 0).unsqueeze(1);                                     // [C, 1, vdim]
      at::Tensor rel = (vals - v1).norm(2, 2).div(v1.norm(2, 2).clamp_min(1e-12));         // [C, k]
      if (ctx.flops) ctx.flops->add(static_cast<int>(p_), OpGroup::lookup, 3 * k_ * vals.size(2) * cand_rows.size(0));
      keep_candidates(rel.le(spread_).all(1).logical_and(slot.ge(0).all(1)).to(at::kCPU));
    }
    const int64_t n_found = hit.sum().item<int64_t>();
    const SyncDecision sync = decide_sync(sync_, sum_over_ranks_, flat.size(0), n_found);
    if (!sync.apply) hit = at::zeros_like(hit);  // refused: the matches run as misses
    const int64_t n_hit = sync.apply ? n_found : 0;
    cache_->count_lookups(flat.size(0), n_hit, n_found - n_hit);
    at::Tensor hit_rows = cand_rows;                          // CPU int64 [H]
    at::Tensor miss_rows = hit.logical_not().nonzero().squeeze(1);
    miss_flat_ = flat.index_select(0, miss_rows.to(flat.device()));
    miss_keys_ = keys.index_select(0, miss_rows.to(keys.device()));
    miss_hp_ = hp.index_select(0, miss_rows.to(hp.device()));
    if (sync.all_skip) {
      for (int64_t l = p_ + 1; l <= r_; ++l)
        if (target_ == SkipTarget::block || value_slot(l) >= 0) ctx.set_skipped_by_all(l);
    }
    if (n_hit == 0) return;
    // Similarity-weighted mean over the accepted neighbours of each hit.
    at::Tensor delta = (vals * w.to(h.device(), h.scalar_type()).unsqueeze(2)).sum(1);  // [H, vdim]
    at::Tensor hit_flat = flat.index_select(0, hit_rows.to(flat.device()));
    // The stored values are v − A·h_c: adding A·h_p completes the corrected value.
    if (corr_.enabled()) delta = delta + corr_.apply(hp.index_select(0, hit_rows.to(hp.device())), ctx.flops,
                                                     static_cast<int>(p_));
    at::Tensor hit_flat_cpu = hit_flat.to(at::kCPU);
    for (int64_t l = p_ + 1; l <= r_; ++l) {
      if (target_ == SkipTarget::block) {
        ctx.skip_block(l).view({-1}).index_fill_(0, hit_flat_cpu.to(ctx.valid().device()), true);
      } else if (const int64_t slot = value_slot(l); slot >= 0) {
        ctx.skip_mlp(l).view({-1}).index_fill_(0, hit_flat_cpu.to(ctx.valid().device()), true);
        at::Tensor& rep = ctx.mlp_replacement(l, h.options());
        rep.view({-1, d}).index_copy_(0, hit_flat, delta.slice(1, slot * d, (slot + 1) * d));
      }
    }
    // Block p + 1 is skipped as the identity, so its K/V (kv=propagate) come from the exact
    // h_p; the update lands before block p + 2. Only when p + 1 is the last layer is there no
    // block to land before, and the jump stays at p + 1.
    // Added to what is scheduled there already (nothing, unless a cascade's earlier segment
    // lands its update before the same block).
    if (target_ == SkipTarget::block)
      ctx.jump(jump_layer(), h.options()).view({-1, d}).index_add_(0, hit_flat, delta);
  } else if (layer == r_ && target_ == SkipTarget::block && miss_flat_.defined()) {
    miss_value_ = h.reshape({-1, d}).index_select(0, miss_flat_) - miss_hp_;
  }
}

bool ResidualPolicy::wants_mlp_out(int64_t layer) const {
  return target_ != SkipTarget::block && value_slot(layer) >= 0;
}

int64_t ResidualPolicy::value_slot(int64_t layer) const {
  const auto it = std::find(value_layers_.begin(), value_layers_.end(), layer);
  return it == value_layers_.end() ? -1 : static_cast<int64_t>(it - value_layers_.begin());
}

void ResidualPolicy::after_mlp(int64_t layer, const at::Tensor& mlp_out, StepContext& ctx) {
  (void)ctx;
  if (!wants_mlp_out(layer) || !miss_flat_.defined()) return;
  const int64_t d = hidden_;
  if (!miss_value_.defined()) miss_value_ = at::empty({miss_flat_.size(0), value_dim()}, mlp_out.options());
  const int64_t slot = value_slot(layer);
  miss_value_.slice(1, slot * d, (slot + 1) * d).copy_(mlp_out.reshape({-1, d}).index_select(0, miss_flat_));
}

int64_t ResidualPolicy::stored_dim() const { return value_dim() + (guards_margin() ? 1 : 0); }

int64_t ResidualPolicy::value_dim() const {
  return target_ == SkipTarget::block ? hidden_ : static_cast<int64_t>(value_layers_.size()) * hidden_;
}

int64_t ResidualPolicy::jump_layer() const { return p_ + 2 < n_layers_ ? p_ + 2 : p_ + 1; }

void ResidualPolicy::end_step(StepContext& ctx) {
  if (pending_train_flops_ > 0 && ctx.flops) {
    ctx.flops->add(static_cast<int>(p_), OpGroup::train, pending_train_flops_);
    pending_train_flops_ = 0;
  }
  if (!miss_flat_.defined()) return;  // no lookup this step
  // Also with no misses: a distributed cache's insert is collective.
  if (!miss_value_.defined()) {
    // Nothing ran to layer r for a value (no misses, or the caller stopped early).
    SEMSKIP_ASSERT(miss_flat_.size(0) == 0);
    miss_value_ = at::empty({0, value_dim()}, miss_hp_.options());
  }
  // With the value correction the cache keeps v − A·h_c (skip/value_correction.h).
  if (corr_.enabled() && miss_value_.size(0) > 0)
    miss_value_ = miss_value_ - corr_.apply(miss_hp_, ctx.flops, static_cast<int>(p_));
  if (guards_margin()) {
    // Each miss's own top-1 logit margin (≥ 0), kept beside its value; −1, below every guard,
    // where the engine computed no logits for the token (a prefill scored at its last position
    // only). The cache stores finite values only.
    const int64_t vocab = ctx.logits.defined() ? ctx.logits.size(-1) : 0;
    at::Tensor margin = at::full({miss_flat_.size(0), 1}, -1.0f, miss_value_.options().dtype(at::kFloat));
    if (vocab > 0 && ctx.logits.numel() == ctx.valid().numel() * vocab && miss_flat_.size(0) > 0) {
      const at::Tensor top2 = std::get<0>(ctx.logits.reshape({-1, vocab}).index_select(0, miss_flat_.to(ctx.logits.device()))
                                              .to(at::kFloat).topk(2, 1));
      margin = (top2.select(1, 0) - top2.select(1, 1)).unsqueeze(1).to(miss_value_.device());
      if (ctx.flops) ctx.flops->add(static_cast<int>(p_), OpGroup::insert, 2 * vocab * miss_flat_.size(0));
    }
    miss_value_ = at::cat({miss_value_, margin.to(miss_value_.scalar_type())}, 1);
  }
  const CacheSizes before = cache_sizes(*cache_);
  cache_->insert(miss_keys_, miss_value_);
  charge_insertions(*cache_, before, ctx.flops, static_cast<int>(p_));
}


// Between steps the miss buffers are empty: the projection and the cache are the whole state.
void ResidualPolicy::save_state(StateWriter& w) const {
  w.tag(text_);
  proj_.save_state(w);
  corr_.save_state(w);
  cache_->save_state(w);
  w.i64(pending_train_flops_);
}

void ResidualPolicy::load_state(StateReader& r) {
  r.expect_tag(text_);
  proj_.load_state(r);
  corr_.load_state(r);
  cache_->load_state(r);
  pending_train_flops_ = r.i64();
}

}  // namespace semskip
