#include "skip/plan_policy.h"

#include <chrono>

#include "core/error.h"
#include "skip/state_io.h"
#include "core/timing.h"

namespace semskip {

PlanPolicy::PlanPolicy(const Descriptor& d, const PolicyEnv& env, int64_t n_layers, int64_t hidden)
    : text_(d.text()),
      p_(d.require_int("p")),
      beta_(d.require_double("beta")),
      tau_(d.require_double("tau")),
      n_layers_(n_layers),
      hidden_(hidden),
      proj_(KeyProjectionKind::none, hidden, hidden, 0),
      sync_(env.sync),
      sum_over_ranks_(env.sync_sum()) {
  std::set<std::string> keys = {"p", "beta", "tau"};
  keys.insert(kCacheDescriptorKeys.begin(), kCacheDescriptorKeys.end());
  d.check_keys(keys);
  SEMSKIP_THROW_IF_NOT_MSG(p_ >= 0 && p_ + 1 < n_layers,
                           "policy descriptor '{}': need 0 ≤ p < {} so some layer follows the probe", text_,
                           n_layers - 1);
  SEMSKIP_THROW_IF_NOT_MSG(beta_ >= 0.0, "policy descriptor '{}': beta must be ≥ 0", text_);
  CachePolicyOptions o = parse_cache_policy_options(d, env, hidden);
  proj_ = KeyProjection(o.projection, hidden, o.key_dim, env.seed);
  // A plan is a 0/1 mask over layers; fp32 keeps it exact whatever vdtype says.
  o.cache.value_dtype = DType::fp32;
  cache_ = make_skip_cache(env, proj_.key_dim(), n_layers, o.cache);
}

PlanPolicy::~PlanPolicy() = default;

std::string PlanPolicy::index_descriptor() const { return cache_->index_descriptor(); }

void PlanPolicy::calibrate(const CalibrationSet& calib) { proj_.fit(calib.states[p_ + 1]); }

void PlanPolicy::begin_request(int64_t row) { plans_.erase(row); }

void PlanPolicy::begin_step(StepContext& ctx) {
  miss_b_.clear();
  miss_bi_.clear();
  miss_keys_ = at::Tensor();
  prev_h_ = at::Tensor();
  // Generated tokens follow the plan their request got at prefill.
  if (ctx.prefill()) return;
  for (int64_t b = 0; b < ctx.batch(); ++b) {
    auto it = plans_.find(ctx.rows()[static_cast<size_t>(b)]);
    if (it != plans_.end()) apply_plan(b, it->second, ctx);
  }
}

void PlanPolicy::apply_plan(int64_t b, const std::vector<int64_t>& layers, StepContext& ctx) const {
  for (int64_t l : layers) ctx.skip_block(l)[b].copy_(ctx.valid()[b]);
}

void PlanPolicy::after_layer(int64_t layer, const at::Tensor& h, StepContext& ctx) {
  if (!ctx.prefill() || layer < p_) return;
  const int64_t B = ctx.batch();
  if (layer == p_) {
    at::Tensor valid = ctx.valid().to(h.device()).unsqueeze(2).to(h.scalar_type());  // [B, S, 1]
    at::Tensor n = valid.sum(1).clamp_min(1.0);                                        // [B, 1]
    at::Tensor pooled = (h * valid).sum(1) / n;                                        // [B, d]
    const Stopwatch lookup_clock;
    const int64_t comm0 = cache_->comm_ns();
    at::Tensor keys = proj_(pooled, ctx.flops, static_cast<int>(p_));
    SkipCache::Match m = cache_->search(keys, 1, ctx.flops, static_cast<int>(p_));
    ctx.t_lookup_ns += lookup_clock.nanoseconds() - (cache_->comm_ns() - comm0);
    at::Tensor has_tokens = ctx.valid().any(1).to(at::kCPU);
    int64_t lookups = 0, found = 0;
    std::vector<bool> matched(static_cast<size_t>(B), false);
    for (int64_t b = 0; b < B; ++b) {
      if (!has_tokens[b].item<bool>()) continue;
      ++lookups;
      matched[static_cast<size_t>(b)] = m.similarity[b][0].item<float>() >= tau_;
      found += matched[static_cast<size_t>(b)] ? 1 : 0;
    }
    const SyncDecision sync = decide_sync(sync_, sum_over_ranks_, lookups, found);
    std::vector<int64_t> hit_b, hit_handle, hit_use, miss_rows;
    for (int64_t b = 0; b < B; ++b) {
      if (!has_tokens[b].item<bool>()) continue;
      const int64_t row = ctx.rows()[static_cast<size_t>(b)];
      if (matched[static_cast<size_t>(b)] && sync.apply) {
        hit_b.push_back(b);
        hit_handle.push_back(m.handle[b][0].item<int64_t>());
        // Each request's use is its own tick, in the order of the union micro-batch.
        hit_use.push_back(ctx.union_row_offset + b);
      } else {
        plans_[row] = {};
        miss_b_.push_back(b);
        miss_rows.push_back(b);
      }
    }
    const int64_t hits = static_cast<int64_t>(hit_b.size());
    cache_->count_lookups(lookups, hits, found - hits);
    // Collective in a distributed cache: fetched on every rank, also without hits.
    const at::Tensor masks = cache_->fetch(at::tensor(hit_handle, at::kLong), at::tensor(hit_use, at::kLong),
                                           at::kCPU);  // fp32 [H, n_layers]
    for (size_t i = 0; i < hit_b.size(); ++i) {
      const int64_t b = hit_b[i];
      const at::Tensor mask = masks[static_cast<int64_t>(i)];
      std::vector<int64_t> layers;
      for (int64_t l = p_ + 1; l < n_layers_; ++l)
        if (mask[l].item<float>() > 0.5f) layers.push_back(l);
      plans_[ctx.rows()[static_cast<size_t>(b)]] = layers;
      apply_plan(b, layers, ctx);
    }
    if (!miss_rows.empty()) {
      miss_keys_ = keys.index_select(0, at::tensor(miss_rows, at::kLong).to(keys.device()));
      miss_bi_.assign(miss_rows.size(), std::vector<double>(static_cast<size_t>(n_layers_), 0.0));
    }
  } else if (!miss_b_.empty()) {
    // Block influence of `layer` on each missed request, over its valid tokens.
    at::Tensor cos = at::cosine_similarity(prev_h_.to(at::kFloat), h.to(at::kFloat), -1, 1e-12);  // [B, S]
    at::Tensor valid = ctx.valid().to(cos.device()).to(at::kFloat);
    at::Tensor bi = ((1.0 - cos) * valid).sum(1) / valid.sum(1).clamp_min(1.0);  // [B]
    at::Tensor bi_cpu = bi.to(at::kCPU, at::kDouble);
    for (size_t i = 0; i < miss_b_.size(); ++i)
      miss_bi_[i][static_cast<size_t>(layer)] = bi_cpu[miss_b_[i]].item<double>();
  }
  prev_h_ = h;
}

void PlanPolicy::end_step(StepContext& ctx) {
  if (!ctx.prefill()) return;
  if (miss_b_.empty()) {
    // Nothing to offer, but a distributed cache's insert is collective.
    cache_->insert(at::empty({0, proj_.key_dim()}, at::kFloat), at::empty({0, n_layers_}, at::kFloat));
    return;
  }
  at::Tensor plans = at::zeros({static_cast<int64_t>(miss_b_.size()), n_layers_}, at::kFloat);
  for (size_t i = 0; i < miss_b_.size(); ++i)
    for (int64_t l = p_ + 1; l < n_layers_; ++l)
      if (miss_bi_[i][static_cast<size_t>(l)] < beta_) plans[static_cast<int64_t>(i)][l] = 1.0f;
  cache_->insert(miss_keys_, plans);
}


void PlanPolicy::save_state(StateWriter& w) const {
  w.tag(text_);
  proj_.save_state(w);
  cache_->save_state(w);
  w.i64(static_cast<int64_t>(plans_.size()));
  for (const auto& [row, layers] : plans_) {
    w.i64(row);
    w.i64s(layers);
  }
}

void PlanPolicy::load_state(StateReader& r) {
  r.expect_tag(text_);
  proj_.load_state(r);
  cache_->load_state(r);
  plans_.clear();
  const int64_t n = r.i64();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = r.i64();
    plans_[row] = r.i64s();
  }
}

}  // namespace semskip
