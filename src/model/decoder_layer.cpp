#include "model/decoder_layer.h"

#include "core/error.h"

namespace semskip {

at::Tensor DecoderLayer::attention_block(const at::Tensor& resid, const LayerContext& ctx) const {
  const int layer = static_cast<int>(index);
  Qkv qkv = attention.project_qkv(input_norm.forward(resid), ctx.rope, ctx.flops, layer);
  if (ctx.kv_cache) std::tie(qkv.k, qkv.v) = ctx.kv_cache->append(index, qkv.k, qkv.v);
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
  const Routing routing = moe->route(flat, ctx.flops, layer);
  if (ctx.hooks && !ctx.hooks->empty()) {
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

int64_t DecoderLayer::n_params() const {
  return input_norm.weight.numel() + attention.n_params() + post_attention_norm.weight.numel() +
         (mlp ? mlp->n_params() : moe->n_params());
}

int64_t DecoderLayer::n_params_active() const {
  return n_params() - (moe ? moe->n_params() - moe->n_params_active() : 0);
}

}  // namespace semskip
