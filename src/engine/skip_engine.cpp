#include "engine/skip_engine.h"

#include "core/error.h"
#include "comm/expert_parallel.h"
#include "metrics/flop_counter.h"
#include "metrics/flop_formulas.h"
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

SkipEngine::SkipEngine(const Transformer& model, ExpertParallel* ep) : model_(model), ep_(ep) {}

SkipKvCache SkipEngine::make_cache(int64_t batch, int64_t capacity) const {
  const ModelConfig& c = model_.config();
  return SkipKvCache(c.n_layers, batch, c.n_kv_heads, c.head_dim, capacity, model_.dtype(), model_.device());
}

namespace {
at::Tensor rows_of(const at::Tensor& mask_flat) { return mask_flat.nonzero().squeeze(1); }
}  // namespace

void SkipEngine::attention(int64_t l, at::Tensor& h, const at::Tensor& run, const at::Tensor& propagate,
                           const at::Tensor& positions, SkipKvCache& kv, FlopCounter* flops) const {
  const DecoderLayer& layer = model_.layer(l);
  const Attention& attn = layer.attention;
  const int li = static_cast<int>(l);
  const int64_t S = positions.size(1);
  const at::Tensor pos_flat = positions.reshape({-1});
  // K/V for a set of rows, written to the cache; q only for rows that run.
  auto project = [&](const at::Tensor& rows, OpGroup group, bool with_q) -> at::Tensor {
    const at::Tensor x = layer.input_norm.forward(h.index_select(0, rows));        // [n, d]
    const int64_t n = rows.size(0);
    RopeTable rope = model_.rotary().table(pos_flat.index_select(0, rows).unsqueeze(0), x.scalar_type());
    auto heads = [&](const at::Tensor& y, int64_t n_heads) {                        // -> [1, H, n, hd]
      return y.view({1, n, n_heads, attn.head_dim}).transpose(1, 2);
    };
    at::Tensor k = Rotary::apply(heads(attn.k_proj.forward(x, flops, li, group), attn.n_kv_heads), rope);
    at::Tensor v = heads(attn.v_proj.forward(x, flops, li, group), attn.n_kv_heads);
    kv.write(l, rows, k[0].transpose(0, 1), v[0].transpose(0, 1));               // [n, H_kv, hd]
    if (!with_q) return at::Tensor();
    return Rotary::apply(heads(attn.q_proj.forward(x, flops, li, group), attn.n_heads), rope);  // [1, H, n, hd]
  };
  if (propagate.defined() && propagate.numel() > 0) project(propagate, OpGroup::kv_propagate, false);
  if (run.numel() == 0) return;
  const at::Tensor q = project(run, OpGroup::attn_proj, true);

  // Each sequence's queries against its own keys.
  const at::Tensor run_cpu = run.to(at::kCPU);
  const int64_t* r = run_cpu.data_ptr<int64_t>();
  const int64_t n_run = run_cpu.size(0);
  std::vector<at::Tensor> outs;
  for (int64_t i = 0; i < n_run;) {
    const int64_t b = r[i] / S;
    int64_t j = i;
    while (j < n_run && r[j] / S == b) ++j;
    const at::Tensor q_b = q.slice(2, i, j);                                        // [1, H, nq, hd]
    const at::Tensor q_slots = run.slice(0, i, j).remainder(S).add(kv.length()).unsqueeze(0);  // [1, nq]
    const at::Tensor key_valid = kv.key_valid(l, b);                                 // [1, Tk]
    const AttentionMask mask = AttentionMask::from_slots(q_slots, key_valid, 1, key_valid.size(1),
                                                         q.scalar_type(), flops != nullptr);
    outs.push_back(attn.attend(q_b, kv.k(l, b), kv.v(l, b), mask, flops, li)[0]);   // [nq, H·hd]
    i = j;
  }
  const at::Tensor o = at::cat(outs, 0);                                            // [n_run, H·hd]
  h = h.index_add(0, run, attn.project_out(o, flops, li));
}

at::Tensor SkipEngine::step(const at::Tensor& ids, StepContext& ctx, SkipKvCache& kv, SkipPolicy& policy,
                            FlopCounter* flops, LayerCounts* counts, at::Tensor* states) const {
  const ModelConfig& cfg = model_.config();
  const int64_t B = ids.size(0), S = ids.size(1), d = cfg.hidden_size, L = cfg.n_layers;
  SEMSKIP_ASSERT(ctx.batch() == B && ctx.n_step_tokens() == S);
  const at::Tensor valid = ctx.valid().reshape({-1});  // bool [B·S]
  const at::Tensor positions = kv.begin_step(ctx.valid());
  // The rotary table is one inverse-frequency × position product per forward, as the reference counts it.
  if (flops) flops->add(FlopCounter::kNoLayer, OpGroup::rotary, flops::rotary(cfg.head_dim, B * S));

  at::Tensor h = model_.embed(ids).reshape({B * S, d});  // [B·S, d]
  if (states) {
    *states = at::empty({L + 1, B, S, d}, h.options());
    (*states)[0].copy_(h.view({B, S, d}));
  }
  policy.begin_step(ctx);
  for (int64_t l = 0; l < L; ++l) {
    const DecoderLayer& layer = model_.layer(l);
    const int li = static_cast<int>(l);
    if (ctx.jump_or_null(l).defined()) h = h + ctx.jump_or_null(l).reshape({-1, d});
    const at::Tensor& sb = ctx.skip_block_or_null(l);
    const at::Tensor skip = sb.defined() ? sb.reshape({-1}).logical_and(valid) : at::Tensor();
    const at::Tensor run_mask = skip.defined() ? valid.logical_and(skip.logical_not()) : valid;
    const at::Tensor run = rows_of(run_mask);
    at::Tensor propagate;
    if (skip.defined() && policy.kv_mode() == KvMode::propagate && !policy.skips_layer_everywhere(l))
      propagate = rows_of(skip);
    attention(l, h, run, propagate, positions, kv, flops);

    const at::Tensor& sm = ctx.skip_mlp_or_null(l);
    const at::Tensor mlp_skip = sm.defined() ? sm.reshape({-1}).logical_and(run_mask) : at::Tensor();
    const at::Tensor mlp_rows = mlp_skip.defined() ? rows_of(run_mask.logical_and(mlp_skip.logical_not())) : run;
    at::Tensor y;
    if (ep_ && layer.moe) {
      // Collective over the EP group: joined with whatever rows this rank has, zero included.
      if (policy.skips_layer_everywhere(l) || ctx.skipped_by_all(l)) {
        SEMSKIP_ASSERT(mlp_rows.numel() == 0);
      } else {
        const at::Tensor x = layer.post_attention_norm.forward(h.index_select(0, mlp_rows));  // [n, d]
        y = ep_->forward(*layer.moe, x, flops, li);
        if (mlp_rows.numel() > 0) h = h.index_add(0, mlp_rows, y);
      }
    } else if (mlp_rows.numel() > 0) {
      const at::Tensor x = layer.post_attention_norm.forward(h.index_select(0, mlp_rows));
      y = layer.mlp ? layer.mlp->forward(x, flops, li, OpGroup::mlp) : layer.moe->forward(x, flops, li);
      h = h.index_add(0, mlp_rows, y);
    }
    at::Tensor replaced;
    if (mlp_skip.defined()) {
      replaced = rows_of(mlp_skip);
      if (replaced.numel() > 0)
        h = h.index_add(0, replaced, ctx.mlp_replacement_or_null(l).reshape({-1, d}).index_select(0, replaced));
    }
    if (policy.wants_mlp_out(l)) {
      at::Tensor out = at::zeros({B * S, d}, h.options());
      if (y.defined()) out.index_copy_(0, mlp_rows, y);
      policy.after_mlp(l, out.view({B, S, d}), ctx);
    }
    if (counts) {
      counts->n_block_run[l] += run.numel();
      counts->n_block_skip[l] += skip.defined() ? skip.sum().item<int64_t>() : 0;
      counts->n_mlp_skip[l] += replaced.defined() ? replaced.numel() : 0;
      counts->n_kv_propagated[l] += propagate.defined() ? propagate.numel() : 0;
    }
    policy.after_layer(l, h.view({B, S, d}), ctx);
    if (states) (*states)[l + 1].copy_(h.view({B, S, d}));
  }
  kv.end_step();
  policy.end_step(ctx);

  // Logits of real tokens only: padding costs nothing.
  const at::Tensor rows = rows_of(valid);
  const at::Tensor hv = model_.final_norm(h.index_select(0, rows));
  const at::Tensor lv = model_.lm_head(hv, flops);  // [n, V]
  at::Tensor logits = at::zeros({B * S, lv.size(1)}, lv.options());
  logits.index_copy_(0, rows, lv);
  return logits.view({B, S, lv.size(1)});
}

}  // namespace semskip
