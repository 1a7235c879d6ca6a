#include "model/decoder_layer.h"

#include "core/error.h"

namespace semskip {

namespace {

// a ∧ ¬b over bool tensors where undefined means "all" for a and "none" for b.
at::Tensor and_not(const at::Tensor& a, const at::Tensor& b, int64_t n, const at::TensorOptions& bool_opts) {
  if (!b.defined()) return a.defined() ? a : at::ones({n}, bool_opts);
  const at::Tensor not_b = b.logical_not();
  return a.defined() ? a.logical_and(not_b) : not_b;
}

at::Tensor rows_of(const at::Tensor& mask) { return mask.nonzero().squeeze(1); }  // int64 [n]

// The cos/sin of some rows of a [B, T] table, as a [1, n] table.
RopeTable rope_rows(const RopeTable& t, const at::Tensor& rows) {
  const auto pick = [&](const at::Tensor& x) { return x.reshape({-1, x.size(-1)}).index_select(0, rows).unsqueeze(0); };
  return RopeTable{pick(t.cos), pick(t.sin), pick(t.sin_signed)};
}

void charge_pairs(const AttentionMask& mask, const Attention& attn, int layer, const LayerContext& ctx) {
  if (!mask.pairs_pending.defined()) return;
  SEMSKIP_ASSERT(ctx.pending_pairs != nullptr);
  ctx.pending_pairs->push_back(PendingPairs{layer, attn.n_heads, attn.head_dim, mask.pairs_dense, mask.pairs_pending});
}

}  // namespace

AttentionMask DecoderLayer::layer_mask(int64_t batch, int64_t n_tokens, const LayerContext& ctx,
                                       const at::Tensor& counted, int64_t n_counted) const {
  const int64_t start = ctx.first_slot, n_keys = start + n_tokens;
  const at::Tensor key_valid = ctx.kv_cache->key_valid(index, n_keys);
  const at::Tensor q_slots = at::arange(start, n_keys, key_valid.options().dtype(at::kLong));
  return AttentionMask::from_slots(q_slots, key_valid, batch, n_keys, attention.q_proj.weight.scalar_type(),
                                   /*count_pairs=*/ctx.flops != nullptr, counted, n_counted,
                                   /*defer_pairs=*/ctx.pending_pairs != nullptr);
}

at::Tensor DecoderLayer::attention_block(const at::Tensor& resid, const LayerContext& ctx) const {
  const int layer = static_cast<int>(index);
  Qkv qkv = attention.project_qkv(input_norm.forward(resid), ctx.rope, ctx.flops, layer);
  if (ctx.kv_cache) std::tie(qkv.k, qkv.v) = ctx.kv_cache->append(index, qkv.k, qkv.v);
  // Keys hidden at this layer by an earlier planned forward: the layer needs its own mask.
  if (ctx.kv_cache && ctx.kv_cache->has_hidden(index)) {
    const AttentionMask mask = layer_mask(resid.size(0), resid.size(1), ctx, {}, -1);
    charge_pairs(mask, attention, layer, ctx);
    return attention.project_out(attention.attend(qkv.q, qkv.k, qkv.v, mask, ctx.flops, layer), ctx.flops, layer);
  }
  const at::Tensor o = attention.attend(qkv.q, qkv.k, qkv.v, ctx.mask, ctx.flops, layer);
  return attention.project_out(o, ctx.flops, layer);
}

at::Tensor DecoderLayer::mlp_block(const at::Tensor& resid_mid, const LayerContext& ctx) const {
  const int layer = static_cast<int>(index);
  const at::Tensor x = post_attention_norm.forward(resid_mid);
  if (mlp) return mlp->forward(x, ctx.flops, layer, OpGroup::mlp);
  SEMSKIP_ASSERT(moe.has_value());
  const int64_t batch = x.size(0), n_tokens = x.size(1), d = x.size(2);
  const at::Tensor flat = x.reshape({batch * n_tokens, d});
  // A rank without rows still joins an expert-parallel layer's all-to-alls; it routes nothing.
  const Routing routing = flat.size(0) > 0 ? moe->route(flat, ctx.flops, layer) : Routing{};
  if (ctx.hooks && !ctx.hooks->empty() && flat.size(0) > 0) {
    apply_hook(ctx.hooks, index, HookPoint::router_logits, routing.router_logits.view({batch, n_tokens, -1}));
    apply_hook(ctx.hooks, index, HookPoint::expert_indices, routing.topk_ids.view({batch, n_tokens, -1}));
    apply_hook(ctx.hooks, index, HookPoint::expert_weights, routing.topk_weights.view({batch, n_tokens, -1}));
  }
  const at::Tensor y = ctx.moe_executor ? ctx.moe_executor->forward_routed(*moe, flat, routing, ctx.flops, layer)
                                        : moe->forward_routed(flat, routing, ctx.flops, layer);
  return y.view({batch, n_tokens, d});
}

at::Tensor DecoderLayer::forward(const at::Tensor& resid, const LayerContext& ctx) const {
  const HookSet* hooks = ctx.hooks && !ctx.hooks->empty() ? ctx.hooks : nullptr;
  const at::Tensor resid_pre = apply_hook(hooks, index, HookPoint::resid_pre, resid);
  const at::Tensor attn_out = apply_hook(hooks, index, HookPoint::attn_out, attention_block(resid_pre, ctx));
  const at::Tensor resid_mid = apply_hook(hooks, index, HookPoint::resid_mid, resid_pre + attn_out);
  const at::Tensor mlp_out = apply_hook(hooks, index, HookPoint::mlp_out, mlp_block(resid_mid, ctx));
  return apply_hook(hooks, index, HookPoint::resid_post, resid_mid + mlp_out);
}

at::Tensor DecoderLayer::attention_rows(const at::Tensor& h_flat, const at::Tensor& run, const at::Tensor& rows,
                                        const at::Tensor& prop, const at::Tensor& visible, int64_t batch,
                                        int64_t n_tokens, const LayerContext& ctx) const {
  const int layer = static_cast<int>(index);
  KvCache& kv = *ctx.kv_cache;
  const Attention& a = attention;
  const int64_t n = rows.size(0), m = prop.size(0), N = batch * n_tokens;
  if (m > 0) {
    // Keys and values only, from the rows' own (substituted) state.
    const at::Tensor x = input_norm.forward(h_flat.index_select(0, prop)).unsqueeze(0);  // [1, m, d]
    const at::Tensor k = a.k_proj.forward(x, ctx.flops, layer, OpGroup::kv_propagate).view({1, m, a.n_kv_heads, a.head_dim});
    const at::Tensor v = a.v_proj.forward(x, ctx.flops, layer, OpGroup::kv_propagate).view({m, a.n_kv_heads, a.head_dim});
    kv.write_rows(index, n_tokens, prop, Rotary::apply_tokens_first(k, rope_rows(ctx.rope, prop))[0], v);
  }
  at::Tensor q;  // [n, n_heads, head_dim]
  if (n > 0) {
    const at::Tensor x = input_norm.forward(h_flat.index_select(0, rows)).unsqueeze(0);  // [1, n, d]
    const Qkv qkv = a.project_qkv(x, rope_rows(ctx.rope, rows), ctx.flops, layer);
    kv.write_rows(index, n_tokens, rows, qkv.k[0].transpose(0, 1), qkv.v[0].transpose(0, 1));
    q = qkv.q[0].transpose(0, 1);
  }
  kv.advance(index, n_tokens, visible);
  if (n == 0) return {};
  // Every sequence's queries in one call: scattered into their [B, T] places, the rows that
  // do not run computed (they see their own slot, so stay finite) and dropped.
  at::Tensor q_dense = at::zeros({N, a.n_heads, a.head_dim}, q.options());
  q_dense.index_copy_(0, rows, q);
  const at::Tensor q4 = q_dense.view({batch, n_tokens, a.n_heads, a.head_dim}).transpose(1, 2);
  // A layer whose keys are all the valid ones shares the padding mask of the forward's other
  // such layers (same queries, same keys); hidden keys or skipped queries need their own.
  const bool shared = !visible.defined() && m == 0 && !kv.has_hidden(index) && rows.is_same(ctx.valid_rows);
  if (shared && !ctx.valid_mask) ctx.valid_mask = layer_mask(batch, n_tokens, ctx, run.view({batch, n_tokens}), n);
  const AttentionMask mask = shared ? *ctx.valid_mask : layer_mask(batch, n_tokens, ctx, run.view({batch, n_tokens}), n);
  charge_pairs(mask, a, layer, ctx);
  const int64_t n_keys = mask.n_keys;
  const at::Tensor o = a.attend(q4, kv.keys(index, n_keys), kv.values(index, n_keys), mask, ctx.flops, layer);
  return a.project_out(o.reshape({N, -1}).index_select(0, rows), ctx.flops, layer);  // [n, d]
}

at::Tensor DecoderLayer::forward_planned(const at::Tensor& resid, const LayerContext& ctx, const LayerPlan& plan,
                                         ExecutionPlan* callbacks) const {
  SEMSKIP_ASSERT(ctx.kv_cache != nullptr);
  const HookSet* hooks = ctx.hooks && !ctx.hooks->empty() ? ctx.hooks : nullptr;
  const at::Tensor h = apply_hook(hooks, index, HookPoint::resid_pre, plan.jump.defined() ? resid + plan.jump : resid);
  const int64_t batch = h.size(0), n_tokens = h.size(1), d = h.size(2), N = batch * n_tokens;
  const auto bool_opts = h.options().dtype(at::kBool);
  const bool want_out = plan.want_mlp_out && callbacks;
  if (plan.bypass) {
    ctx.kv_cache->advance(index, n_tokens, at::zeros({batch, n_tokens}, bool_opts));
    if (want_out) callbacks->after_mlp(index, at::zeros_like(h));
    return apply_hook(hooks, index, HookPoint::resid_post, h);
  }
  const at::Tensor valid = ctx.valid.defined() ? ctx.valid.reshape({N}) : at::Tensor();
  const at::Tensor skip = plan.skip_block.defined()
                              ? (valid.defined() ? plan.skip_block.reshape({N}).logical_and(valid) : plan.skip_block.reshape({N}))
                              : at::Tensor();

  // Attention: every row at once when all run, else the gathered rows.
  at::Tensor run;  // bool [N]; undefined: every row runs
  at::Tensor mid;  // [N, d]
  if (!valid.defined() && !skip.defined()) {
    mid = (h + attention_block(h, ctx)).reshape({N, d});
  } else {
    run = and_not(valid, skip, N, bool_opts);
    // Only padding left out: the same rows at every such layer, found once per forward.
    const bool padding_only = !skip.defined();
    if (padding_only && !ctx.valid_rows.defined()) ctx.valid_rows = rows_of(run);
    const at::Tensor rows = padding_only ? ctx.valid_rows : rows_of(run);
    const at::Tensor prop = plan.propagate_kv && skip.defined() ? rows_of(skip) : at::empty({0}, rows.options());
    const at::Tensor h_flat = h.reshape({N, d});
    // kv=mask: of this forward's slots, only the rows that ran have keys at this layer.
    const at::Tensor visible = skip.defined() && !plan.propagate_kv ? run.view({batch, n_tokens}) : at::Tensor();
    const at::Tensor out = attention_rows(h_flat, run, rows, prop, visible, batch, n_tokens, ctx);
    mid = out.defined() ? h_flat.index_add(0, rows, out) : h_flat;
  }

  // MLP / MoE: all rows, or the gathered rows that run it.
  const at::Tensor skip_mlp = plan.skip_mlp.defined()
                                  ? (run.defined() ? plan.skip_mlp.reshape({N}).logical_and(run) : plan.skip_mlp.reshape({N}))
                                  : at::Tensor();
  at::Tensor post;
  if (!run.defined() && !skip_mlp.defined()) {
    const at::Tensor y = mlp_block(mid.view({batch, n_tokens, d}), ctx);  // [B, T, d]
    if (want_out) callbacks->after_mlp(index, y);
    post = mid + y.reshape({N, d});
  } else {
    const at::Tensor mlp_rows = !skip_mlp.defined() && !skip.defined() && ctx.valid_rows.defined()
                                    ? ctx.valid_rows
                                    : rows_of(and_not(run, skip_mlp, N, bool_opts));
    const int64_t n = mlp_rows.size(0);
    at::Tensor y;  // [n, d]
    // Expert parallelism: this rank joins the layer's collectives even with no rows.
    const bool collective = is_moe() && ctx.moe_executor && plan.moe_collective;
    post = mid;
    if (n > 0 || collective) {
      y = mlp_block(mid.index_select(0, mlp_rows).unsqueeze(0), ctx)[0];
      post = mid.index_add(0, mlp_rows, y);
    }
    if (skip_mlp.defined() && plan.mlp_replacement.defined())
      post = post + at::where(skip_mlp.unsqueeze(1), plan.mlp_replacement.reshape({N, d}), at::zeros({}, h.options()));
    if (want_out) {
      at::Tensor full = at::zeros({N, d}, h.options());
      if (y.defined() && n > 0) full.index_copy_(0, mlp_rows, y);
      callbacks->after_mlp(index, full.view({batch, n_tokens, d}));
    }
  }
  return apply_hook(hooks, index, HookPoint::resid_post, post.view({batch, n_tokens, d}));
}

int64_t DecoderLayer::n_params() const {
  return input_norm.weight.numel() + attention.n_params() + post_attention_norm.weight.numel() +
         (mlp ? mlp->n_params() : moe->n_params());
}

int64_t DecoderLayer::n_params_active() const {
  return n_params() - (moe ? moe->n_params() - moe->n_params_active() : 0);
}

}  // namespace semskip
