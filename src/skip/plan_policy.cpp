#include "skip/plan_policy.h"

#include <chrono>

#include "core/error.h"
#include "core/timing.h"
#include "metrics/flop_counter.h"
#include "skip/cache_charges.h"
#include "skip/state_io.h"

namespace semskip {

const char* plan_decision_name(PlanDecision d) { return d == PlanDecision::prompt ? "prompt" : "prefix"; }

PlanPolicy::PlanPolicy(const Descriptor& d, const PolicyEnv& env, int64_t n_layers, int64_t hidden)
    : text_(d.text()),
      p_(d.require_int("p")),
      beta_(d.require_double("beta")),
      tau_(d.require_double("tau")),
      decide_(d.get_choice("decide", "prefix", {"prefix", "prompt"}) == "prompt" ? PlanDecision::prompt
                                                                                 : PlanDecision::prefix),
      n_layers_(n_layers),
      hidden_(hidden),
      proj_(KeyProjectionKind::none, hidden, hidden, 0),
      sync_(env.sync),
      sum_over_ranks_(env.sync_sum()) {
  std::set<std::string> keys = {"p", "beta", "tau", "decide"};
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

void PlanPolicy::calibrate(const CalibrationSet& calib) {
  proj_.fit(calib.states[p_ + 1]);
  pending_train_flops_ += projection_fit_flops(proj_, calib.states.size(1));
}

void PlanPolicy::begin_request(int64_t row) {
  plans_.erase(row);
  prefix_.erase(row);
}

void PlanPolicy::begin_step(StepContext& ctx) {
  miss_b_.clear();
  miss_bi_.clear();
  miss_keys_ = at::Tensor();
  measured_ = at::Tensor();
  prev_h_ = at::Tensor();
  // decide=prompt: generated tokens follow the plan their request got after its prompt.
  if (ctx.prefill() || decide_ != PlanDecision::prompt) return;
  for (int64_t b = 0; b < ctx.batch(); ++b) {
    auto it = plans_.find(ctx.rows()[static_cast<size_t>(b)]);
    if (it != plans_.end()) apply_plan(b, it->second, ctx);
  }
}

void PlanPolicy::apply_plan(int64_t b, const std::vector<int64_t>& layers, StepContext& ctx) const {
  for (int64_t l : layers) ctx.skip_block(l)[b].copy_(ctx.valid()[b]);
}

void PlanPolicy::lookup_prompt(const at::Tensor& h, StepContext& ctx) {
  const int64_t B = ctx.batch();
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
  // The prompt itself runs the full model: the plan waits for the generated tokens.
  for (size_t i = 0; i < hit_b.size(); ++i) {
    const at::Tensor mask = masks[static_cast<int64_t>(i)];
    std::vector<int64_t> layers;
    for (int64_t l = p_ + 1; l < n_layers_; ++l)
      if (mask[l].item<float>() > 0.5f) layers.push_back(l);
    plans_[ctx.rows()[static_cast<size_t>(hit_b[i])]] = layers;
  }
  measured_ = ctx.valid();
  if (!miss_rows.empty()) miss_keys_ = keys.index_select(0, at::tensor(miss_rows, at::kLong).to(keys.device()));
}

void PlanPolicy::lookup_prefix(const at::Tensor& h, StepContext& ctx) {
  const int64_t B = ctx.batch(), S = ctx.n_step_tokens(), d = hidden_;
  const at::Tensor valid = ctx.valid().to(h.device());  // bool [B, S]
  // Running sums over each request's tokens so far: the earlier steps' and this step's.
  at::Tensor sum0 = at::zeros({B, d}, h.options().dtype(at::kFloat));  // fp32 [B, d]
  std::vector<float> count0(static_cast<size_t>(B), 0.0f);
  for (int64_t b = 0; b < B; ++b) {
    auto it = prefix_.find(ctx.rows()[static_cast<size_t>(b)]);
    if (it == prefix_.end()) continue;
    count0[static_cast<size_t>(b)] = static_cast<float>(it->second.first);
    sum0[b].copy_(it->second.second.to(h.device()));
  }
  const at::Tensor vf = valid.to(at::kFloat);                                              // [B, S]
  const at::Tensor cum = sum0.unsqueeze(1) + (h.to(at::kFloat) * vf.unsqueeze(2)).cumsum(1);  // [B, S, d]
  const at::Tensor cnt = at::tensor(count0, at::kFloat).to(h.device()).unsqueeze(1) + vf.cumsum(1);  // [B, S]
  const at::Tensor flat = valid.flatten().nonzero().squeeze(1);  // int64 [N]
  const at::Tensor running = (cum / cnt.clamp_min(1.0).unsqueeze(2)).reshape({-1, d}).index_select(0, flat);
  const Stopwatch lookup_clock;
  const int64_t comm0 = cache_->comm_ns();
  at::Tensor keys = proj_(running, ctx.flops, static_cast<int>(p_));  // fp32 [N, key_dim]
  SkipCache::Match m = cache_->search(keys, 1, ctx.flops, static_cast<int>(p_));
  ctx.t_lookup_ns += lookup_clock.nanoseconds() - (cache_->comm_ns() - comm0);
  const int64_t N = flat.size(0);
  at::Tensor hit = m.similarity.select(1, 0).ge(tau_);  // bool [N], CPU
  const int64_t n_found = hit.sum().item<int64_t>();
  const SyncDecision sync = decide_sync(sync_, sum_over_ranks_, N, n_found);
  if (!sync.apply) hit = at::zeros_like(hit);
  const int64_t n_hit = sync.apply ? n_found : 0;
  cache_->count_lookups(N, n_hit, n_found - n_hit);
  const at::Tensor hit_rows = hit.nonzero().squeeze(1);  // CPU int64 [H]
  const at::Tensor handles = m.handle.select(1, 0).index_select(0, hit_rows).contiguous();
  // All hits of the step are one tick of the cache's clock. Collective: also without hits.
  const at::Tensor masks = cache_->fetch(handles, at::zeros_like(handles), at::kCPU);  // fp32 [H, n_layers]
  const at::Tensor flat_cpu = flat.to(at::kCPU);
  at::Tensor hit_dense = at::zeros({B * S}, at::kBool);  // CPU
  if (n_hit > 0) {
    const at::Tensor hit_flat = flat_cpu.index_select(0, hit_rows);
    hit_dense.index_fill_(0, hit_flat, true);
    at::Tensor skips = at::zeros({B * S, n_layers_}, at::kBool);
    skips.index_copy_(0, hit_flat, masks.gt(0.5f));
    for (int64_t l = p_ + 1; l < n_layers_; ++l) {
      const at::Tensor col = skips.select(1, l).reshape({B, S});
      if (!col.any().item<bool>()) continue;
      at::Tensor& sb = ctx.skip_block(l);
      sb.logical_or_(col.to(sb.device()));
    }
  }
  // The prefix after this step, per request with tokens in it.
  const at::Tensor has_tokens = ctx.valid().any(1).to(at::kCPU);
  const at::Tensor cnt_last = cnt.select(1, S - 1).to(at::kCPU);
  for (int64_t b = 0; b < B; ++b) {
    if (!has_tokens[b].item<bool>()) continue;
    prefix_[ctx.rows()[static_cast<size_t>(b)]] = {static_cast<int64_t>(cnt_last[b].item<float>()),
                                                   cum[b][S - 1].clone()};
  }
  measured_ = ctx.valid().logical_and(hit_dense.view({B, S}).to(ctx.valid().device()).logical_not());
  if (!ctx.prefill()) return;
  // A request is offered when the key of its last token (its whole prefix) missed.
  std::vector<int64_t> last(static_cast<size_t>(B), -1);
  const int64_t* fp = flat_cpu.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i) last[static_cast<size_t>(fp[i] / S)] = i;  // flat is ascending
  std::vector<int64_t> miss_rows;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t i = last[static_cast<size_t>(b)];
    if (i < 0 || hit[i].item<bool>()) continue;
    miss_b_.push_back(b);
    miss_rows.push_back(i);
  }
  if (!miss_rows.empty()) miss_keys_ = keys.index_select(0, at::tensor(miss_rows, at::kLong).to(keys.device()));
}

void PlanPolicy::after_layer(int64_t layer, const at::Tensor& h, StepContext& ctx) {
  if (layer < p_) return;
  if (layer == p_) {
    if (decide_ == PlanDecision::prefix) {
      lookup_prefix(h, ctx);
    } else if (ctx.prefill()) {
      lookup_prompt(h, ctx);
    }
    if (!miss_b_.empty()) miss_bi_.assign(miss_b_.size(), std::vector<double>(static_cast<size_t>(n_layers_), 0.0));
  } else if (!miss_b_.empty()) {
    // Block influence of `layer` on each missed request, over its tokens that ran every layer.
    at::Tensor cos = at::cosine_similarity(prev_h_.to(at::kFloat), h.to(at::kFloat), -1, 1e-12);  // [B, S]
    at::Tensor w = measured_.to(cos.device()).to(at::kFloat);
    at::Tensor bi = ((1.0 - cos) * w).sum(1) / w.sum(1).clamp_min(1.0);  // [B]
    at::Tensor bi_cpu = bi.to(at::kCPU, at::kDouble);
    for (size_t i = 0; i < miss_b_.size(); ++i)
      miss_bi_[i][static_cast<size_t>(layer)] = bi_cpu[miss_b_[i]].item<double>();
  }
  prev_h_ = h;
}

void PlanPolicy::end_step(StepContext& ctx) {
  charge_pending_train(ctx);
  if (!ctx.prefill()) return;
  const CacheSizes before = cache_sizes(*cache_);
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
  charge_insertions(*cache_, before, ctx.flops, static_cast<int>(p_));
}

void PlanPolicy::charge_pending_train(StepContext& ctx) {
  if (pending_train_flops_ == 0 || !ctx.flops) return;
  ctx.flops->add(static_cast<int>(p_), OpGroup::train, pending_train_flops_);
  pending_train_flops_ = 0;
}

void PlanPolicy::save_state(StateWriter& w) const {
  w.tag(text_);
  proj_.save_state(w);
  cache_->save_state(w);
  w.i64(pending_train_flops_);
  w.i64(static_cast<int64_t>(plans_.size()));
  for (const auto& [row, layers] : plans_) {
    w.i64(row);
    w.i64s(layers);
  }
  w.i64(static_cast<int64_t>(prefix_.size()));
  for (const auto& [row, seen] : prefix_) {
    w.i64s({row, seen.first});
    w.tensor(seen.second);
  }
}

void PlanPolicy::load_state(StateReader& r) {
  r.expect_tag(text_);
  proj_.load_state(r);
  cache_->load_state(r);
  pending_train_flops_ = r.i64();
  plans_.clear();
  const int64_t n = r.i64();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = r.i64();
    plans_[row] = r.i64s();
  }
  prefix_.clear();
  const int64_t m = r.i64();
  for (int64_t i = 0; i < m; ++i) {
    const std::vector<int64_t> head = r.i64s();
    at::Tensor sum = r.tensor();
    SEMSKIP_THROW_IF_NOT_MSG(head.size() == 2 && sum.defined() && sum.dim() == 1 && sum.size(0) == hidden_,
                             "{}: policy '{}': a saved prefix sum is damaged", r.what(), text_);
    prefix_[head[0]] = {head[1], sum};
  }
}

}  // namespace semskip
