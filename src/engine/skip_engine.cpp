#include "engine/skip_engine.h"

#include "comm/expert_parallel.h"
#include "core/error.h"
#include "metrics/finite_check.h"
#include "metrics/flop_counter.h"
#include "model/layer_plan.h"
#include "model/transformer.h"

namespace semskip {

LayerCounts::LayerCounts(int64_t n_layers)
    : n_block_run(n_layers, 0), n_block_skip(n_layers, 0), n_mlp_skip(n_layers, 0), n_kv_propagated(n_layers, 0) {}

void LayerCounts::merge(const LayerCounts& o) {
  if (n_block_run.empty()) {
    *this = o;
    return;
  }
  SEMSKIP_ASSERT(o.n_block_run.size() == n_block_run.size());
  for (size_t l = 0; l < n_block_run.size(); ++l) {
    n_block_run[l] += o.n_block_run[l];
    n_block_skip[l] += o.n_block_skip[l];
    n_mlp_skip[l] += o.n_mlp_skip[l];
    n_kv_propagated[l] += o.n_kv_propagated[l];
  }
}

SkipEngine::SkipEngine(const Transformer& model, ExpertParallel* ep, RowExec row_exec)
    : model_(model), ep_(ep), row_exec_(row_exec) {}

SkipKvCache SkipEngine::make_cache(int64_t batch, int64_t capacity) const {
  return model_.make_kv_cache(batch, capacity);
}

namespace {

// A policy's StepContext read as the forward's execution plan, layer by layer (a policy may
// decide a layer's skips after an earlier layer ran), with the layer counts kept on the device.
class PolicyPlan final : public ExecutionPlan {
 public:
  PolicyPlan(SkipPolicy& policy, StepContext& ctx, bool counting, at::Tensor* states)
      : policy_(policy), ctx_(ctx), states_(states) {
    const at::Tensor& valid = ctx.valid();
    valid_ = valid;
    if (counting) {
      // int64 [4, L] on the device: block run, block skip, MLP skip, K/V propagated.
      counts_ = at::zeros({4, ctx.n_layers()}, valid.options().dtype(at::kLong));
      n_valid_ = valid.sum();
    }
  }

  LayerPlan layer(int64_t l, const at::Tensor& h) override {
    if (l == 0 && states_) (*states_)[0].copy_(h);
    LayerPlan lp;
    lp.jump = ctx_.jump_or_null(l);
    const bool everywhere = policy_.skips_layer_everywhere(l);
    const at::Tensor& sb = ctx_.skip_block_or_null(l);
    at::Tensor skip;  // bool [B, S]: valid rows that skip the block
    if (sb.defined()) {
      skip = sb.logical_and(valid_);
      lp.bypass = everywhere;
      lp.skip_block = skip;
      const KvMode kv = policy_.kv_mode();
      lp.propagate_kv = kv != KvMode::mask && !everywhere;
      if (kv == KvMode::exact && !everywhere) {
        // The full model's input of this layer: its K/V for the skipped rows, uncharged.
        SEMSKIP_THROW_IF_NOT_MSG(ctx_.full_states.defined() && ctx_.full_states.size(0) == ctx_.n_layers() + 1,
                                 "policy '{}': kv=exact needs the full model's states of the same step (the "
                                 "evaluator's teacher-forced scoring has them; generation and serving do not)",
                                 policy_.describe());
        lp.kv_state = ctx_.full_states[l];
      }
    }
    const at::Tensor& sm = ctx_.skip_mlp_or_null(l);
    if (sm.defined()) {
      lp.skip_mlp = skip.defined() ? sm.logical_and(valid_).logical_and(skip.logical_not()) : sm.logical_and(valid_);
      lp.mlp_replacement = ctx_.mlp_replacement_or_null(l);
    }
    lp.routed_only = policy_.skips_routed_only();
    lp.moe_collective = !(everywhere || ctx_.skipped_by_all(l));
    lp.want_mlp_out = policy_.wants_mlp_out(l);
    if (n_valid_host_ >= 0) {
      lp.n_skip = n_skip_[static_cast<size_t>(l)];
      lp.n_run = n_valid_host_ - lp.n_skip;
      lp.n_mlp_run = lp.n_run - n_skip_mlp_[static_cast<size_t>(l)];
      if (order_of_[static_cast<size_t>(l)] >= 0) lp.row_order = orders_[order_of_[static_cast<size_t>(l)]];
    }
    if (counts_.defined()) {
      const at::Tensor n_skip = skip.defined() ? skip.sum() : at::zeros_like(n_valid_);
      counts_[0][l].add_(n_valid_ - n_skip);
      counts_[1][l].add_(n_skip);
      if (lp.skip_mlp.defined()) counts_[2][l].add_(lp.skip_mlp.sum());
      if (lp.propagate_kv && !lp.kv_state.defined()) counts_[3][l].add_(n_skip);
    }
    return lp;
  }

  // Every layer's row counts in one host read, for a policy whose begin_step made all the
  // step's decisions: the forward then gathers without reading anything back.
  // With `order` (gather, no padding) the block-skipping layers' rows are also ordered here,
  // all layers at once (LayerPlan::row_order).
  void count_rows(bool order) {
    const int64_t L = ctx_.n_layers();
    std::vector<at::Tensor> sb, sm, sm_skip;
    std::vector<int64_t> sb_layers, sm_layers;
    for (int64_t l = 0; l < L; ++l) {
      const at::Tensor& b = ctx_.skip_block_or_null(l);
      const at::Tensor& m = ctx_.skip_mlp_or_null(l);
      if (b.defined()) sb.push_back(b), sb_layers.push_back(l);
      if (m.defined()) {
        sm.push_back(m), sm_layers.push_back(l);
        sm_skip.push_back(b.defined() ? b : at::zeros_like(m));
      }
    }
    std::vector<at::Tensor> parts{valid_.sum().view({1})};
    const int64_t N = valid_.numel();
    if (!sb.empty() && order && N > 0) {
      // Per layer the rows that run first, then the others, each in order (as exact_split).
      const int64_t L1 = static_cast<int64_t>(sb.size());
      const at::Tensor run = at::stack(sb).reshape({L1, N}).logical_not();
      const at::Tensor cs = run.to(at::kLong).cumsum(1);
      const at::Tensor n_run = cs.select(1, N - 1).unsqueeze(1);  // [L1, 1]
      orders_ = run_first_order(run, cs, n_run).order;
      parts.push_back(N - n_run.squeeze(1));
    } else if (!sb.empty()) {
      parts.push_back(at::stack(sb).logical_and(valid_).sum({1, 2}));
    }
    if (!sm.empty())
      parts.push_back(at::stack(sm).logical_and(valid_).logical_and(at::stack(sm_skip).logical_not()).sum({1, 2}));
    const at::Tensor host = at::cat(parts).to(at::kCPU, at::kLong);
    const int64_t* p = host.data_ptr<int64_t>();
    n_valid_host_ = p[0];
    n_skip_.assign(static_cast<size_t>(L), 0);
    n_skip_mlp_.assign(static_cast<size_t>(L), 0);
    order_of_.assign(static_cast<size_t>(L), -1);
    for (size_t i = 0; i < sb_layers.size(); ++i) {
      n_skip_[static_cast<size_t>(sb_layers[i])] = p[1 + i];
      if (orders_.defined()) order_of_[static_cast<size_t>(sb_layers[i])] = static_cast<int64_t>(i);
    }
    for (size_t i = 0; i < sm_layers.size(); ++i)
      n_skip_mlp_[static_cast<size_t>(sm_layers[i])] = p[1 + sb_layers.size() + i];
  }

  void after_mlp(int64_t l, const at::Tensor& mlp_out) override { policy_.after_mlp(l, mlp_out, ctx_); }

  void after_layer(int64_t l, const at::Tensor& h) override {
    if (ctx_.finite) ctx_.finite->fold_layer(l, h);
    policy_.after_layer(l, h, ctx_);
    if (states_) (*states_)[l + 1].copy_(h);
  }

  // The step's counts, read once.
  void add_to(LayerCounts& counts) const {
    const at::Tensor c = counts_.to(at::kCPU);
    const int64_t* p = c.data_ptr<int64_t>();
    const int64_t L = c.size(1);
    for (int64_t l = 0; l < L; ++l) {
      counts.n_block_run[l] += p[l];
      counts.n_block_skip[l] += p[L + l];
      counts.n_mlp_skip[l] += p[2 * L + l];
      counts.n_kv_propagated[l] += p[3 * L + l];
    }
  }

 private:
  SkipPolicy& policy_;
  StepContext& ctx_;
  at::Tensor* states_;
  at::Tensor valid_;    // bool [B, S]
  at::Tensor counts_;   // int64 [4, L] on the device; undefined: not counting
  at::Tensor n_valid_;  // int64 scalar on the device
  // count_rows(): the valid rows and, per layer, the valid rows skipping the block and the
  // MLP alone, on the host; −1: not counted.
  int64_t n_valid_host_ = -1;
  std::vector<int64_t> n_skip_, n_skip_mlp_;
  at::Tensor orders_;              // int64 [L1, N]: the block-skipping layers' row orders
  std::vector<int64_t> order_of_;  // per layer: its row of orders_, −1: none
};

}  // namespace

at::Tensor SkipEngine::step(const at::Tensor& ids, StepContext& ctx, SkipKvCache& kv, SkipPolicy& policy,
                            FlopCounter* flops, LayerCounts* counts, at::Tensor* states) const {
  const ModelConfig& cfg = model_.config();
  const int64_t B = ids.size(0), S = ids.size(1), d = cfg.hidden_size, L = cfg.n_layers;
  SEMSKIP_ASSERT(ctx.batch() == B && ctx.n_step_tokens() == S);
  // A step of no sequences takes the gathering path too (it gathers nothing).
  const bool padded = B == 0 || !ctx.valid().all().item<bool>();
  if (states) *states = at::empty({L + 1, B, S, d}, at::TensorOptions().dtype(model_.dtype()).device(model_.device()));
  PolicyPlan plan(policy, ctx, counts != nullptr, states);
  policy.begin_step(ctx);
  if (policy.decides_at_begin_step() && row_exec_ != RowExec::mask) plan.count_rows(!padded && row_exec_ == RowExec::gather);
  ForwardOptions fo;
  fo.kv_cache = &kv;
  fo.flops = flops;
  fo.moe_executor = ep_;
  fo.plan = &plan;
  fo.row_exec = row_exec_;
  fo.last_token_logits = last_token_logits_;
  if (padded) fo.attention_mask = ctx.valid();
  const at::Tensor logits = model_.forward(ids, fo);
  // Before end_step: a policy inserts this step's values into its cache there.
  if (ctx.finite) {
    ctx.finite->fold_logits(logits);
    ctx.finite->check(logits, ctx.prefill());
  }
  ctx.logits = logits;
  policy.end_step(ctx);
  if (counts) plan.add_to(*counts);
  return logits;
}

}  // namespace semskip
