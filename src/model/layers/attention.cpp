#include "model/layers/attention.h"

#include <cmath>
#include <limits>

#include <torch/version.h>

#include "core/error.h"

namespace semskip {

Qkv Attention::project_qkv(const at::Tensor& x_normed, const RopeTable& rope, FlopCounter* flops,
                           int layer) const {
  const int64_t batch = x_normed.size(0);
  const int64_t n_tokens = x_normed.size(1);
  const auto heads = [&](const at::Tensor& y, int64_t n) {
    return y.view({batch, n_tokens, n, head_dim}).transpose(1, 2);  // [B, n, T, hd]
  };
  Qkv out;
  if (q_norm.weight.defined()) {
    // Normalised over the whole projection, then split into heads and rotated.
    const int64_t q_width = n_heads * head_dim, kv_width = n_kv_heads * head_dim;
    at::Tensor q, k, v;
    if (qkv_proj.weight.defined()) {
      const at::Tensor qkv = qkv_proj.forward(x_normed, flops, layer, OpGroup::attn_proj);
      q = qkv.narrow(-1, 0, q_width);
      k = qkv.narrow(-1, q_width, kv_width);
      v = qkv.narrow(-1, q_width + kv_width, kv_width);
    } else {
      q = q_proj.forward(x_normed, flops, layer, OpGroup::attn_proj);
      k = k_proj.forward(x_normed, flops, layer, OpGroup::attn_proj);
      v = v_proj.forward(x_normed, flops, layer, OpGroup::attn_proj);
    }
    out.q = Rotary::apply(heads(q_norm.forward(q), n_heads), rope);
    out.k = Rotary::apply(heads(k_norm.forward(k), n_kv_heads), rope);
    out.v = heads(v, n_kv_heads);
    return out;
  }
  if (qkv_proj.weight.defined()) {
    // One matmul; its FLOPs are those of the three projections together.
    const at::Tensor qkv = qkv_proj.forward(x_normed, flops, layer, OpGroup::attn_proj);
    const int64_t q_width = n_heads * head_dim, kv_width = n_kv_heads * head_dim;
    // Queries and keys are adjacent columns: one rotation for both, [B, T, n_heads + n_kv, hd].
    const at::Tensor qk = Rotary::apply_tokens_first(
        qkv.narrow(-1, 0, q_width + kv_width).view({batch, n_tokens, n_heads + n_kv_heads, head_dim}), rope);
    out.q = qk.narrow(2, 0, n_heads).transpose(1, 2);
    out.k = qk.narrow(2, n_heads, n_kv_heads).transpose(1, 2);
    out.v = heads(qkv.narrow(-1, q_width + kv_width, kv_width), n_kv_heads);
    return out;
  }
  out.q = Rotary::apply(heads(q_proj.forward(x_normed, flops, layer, OpGroup::attn_proj), n_heads), rope);
  out.k = Rotary::apply(heads(k_proj.forward(x_normed, flops, layer, OpGroup::attn_proj), n_kv_heads), rope);
  out.v = heads(v_proj.forward(x_normed, flops, layer, OpGroup::attn_proj), n_kv_heads);
  return out;
}

namespace {

// Additive causal mask (0 / -inf) [Tq, Tk] for queries at slots Tk - Tq .. Tk - 1.
at::Tensor causal_additive(int64_t n_queries, int64_t n_keys, const at::TensorOptions& opts) {
  return at::full({n_queries, n_keys}, -std::numeric_limits<double>::infinity(), opts)
      .triu(n_keys - n_queries + 1);
}

}  // namespace

// Grouped heads share a key/value head, so the queries of one group are folded into the
// query axis ([B, n_kv, rep·Tq, hd]): one matmul per key/value head, and K/V are never copied.
at::Tensor Attention::attend_eager(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                   const AttentionMask& mask) const {
  const int64_t batch = q.size(0), n_queries = q.size(2), n_keys = k.size(2);
  const int64_t rep = n_heads / n_kv_heads;
  const double scaling = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const at::Tensor qg = q.reshape({batch, n_kv_heads, rep * n_queries, head_dim});
  at::Tensor scores = at::matmul(qg, k.transpose(-1, -2)) * scaling;  // [B, n_kv, rep·Tq, Tk]
  if (mask.kind != AttentionMask::Kind::none) {
    const at::Tensor add = mask.kind == AttentionMask::Kind::causal
                               ? causal_additive(n_queries, n_keys, q.options())  // [Tq, Tk]
                               : mask.additive.unsqueeze(2);                      // [B, 1, 1, Tq, Tk]
    scores = (scores.view({batch, n_kv_heads, rep, n_queries, n_keys}) + add)
                 .view({batch, n_kv_heads, rep * n_queries, n_keys});
  }
  // Softmax in fp32 whatever the compute dtype, as the reference does.
  const at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  return at::matmul(probs, v).view({batch, n_heads, n_queries, head_dim});
}

at::Tensor Attention::attend_sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const AttentionMask& mask) const {
  const int64_t batch = q.size(0), n_queries = q.size(2), n_keys = k.size(2);
  const int64_t rep = n_heads / n_kv_heads;
  const auto sdpa = [](const at::Tensor& qq, const at::Tensor& kk, const at::Tensor& vv,
                       const c10::optional<at::Tensor>& m, bool is_causal) {
#if TORCH_VERSION_MAJOR >= 2
    return at::scaled_dot_product_attention(qq, kk, vv, m, 0.0, is_causal);
#else
    return std::get<0>(at::_scaled_dot_product_attention(qq, kk, vv, m, 0.0, false, is_causal));
#endif
  };
#if TORCH_VERSION_MAJOR >= 2
  // A square causal block runs the fused causal kernels; they need one K/V head per query head.
  if (mask.kind == AttentionMask::Kind::causal && n_queries == n_keys) {
    const auto expand = [&](const at::Tensor& t) {
      return rep == 1 ? t
                      : t.unsqueeze(2).expand({batch, n_kv_heads, rep, n_keys, head_dim})
                            .reshape({batch, n_heads, n_keys, head_dim});
    };
    return sdpa(q, expand(k), expand(v), c10::nullopt, true);
  }
#endif
  // LibTorch 1.13's is_causal reads a boolean mask with the opposite convention of 2.x, so
  // masks are always passed additive here. A per-row mask [B, 1, Tq, Tk] is either repeated
  // for the rep query heads of a group (queries folded as in attend_eager: rep·Tq·Tk mask
  // values copied per row) or broadcast over full heads with K/V repeated to them (2·H·Tk·hd
  // values copied per row), whichever copies less: the first for decode steps, the second for
  // long query blocks (prefill chunks beside decoding rows).
  if (mask.kind == AttentionMask::Kind::explicit_ && rep > 1 && n_queries >= 2 * n_kv_heads * head_dim) {
    const auto expand = [&](const at::Tensor& t) {
      return t.unsqueeze(2).expand({batch, n_kv_heads, rep, n_keys, head_dim}).reshape({batch, n_heads, n_keys, head_dim});
    };
    return sdpa(q, expand(k), expand(v), mask.additive, false).reshape({batch, n_heads, n_queries, head_dim});
  }
  const at::Tensor qg = q.reshape({batch, n_kv_heads, rep * n_queries, head_dim});
  c10::optional<at::Tensor> add;
  if (mask.kind == AttentionMask::Kind::causal) {
    add = causal_additive(n_queries, n_keys, q.options()).repeat({rep, 1});  // [rep·Tq, Tk]
  } else if (mask.kind == AttentionMask::Kind::explicit_) {
    add = mask.additive.unsqueeze(2)
              .expand({batch, 1, rep, n_queries, n_keys})
              .reshape({batch, 1, rep * n_queries, n_keys});
  }
  // Fused kernels may return a non-contiguous layout: reshape, not view.
  return sdpa(qg, k, v, add, false).reshape({batch, n_heads, n_queries, head_dim});
}

at::Tensor Attention::attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const AttentionMask& mask, FlopCounter* flops, int layer) const {
  SEMSKIP_ASSERT(q.dim() == 4 && q.size(1) == n_heads && k.size(1) == n_kv_heads);
  SEMSKIP_ASSERT(q.size(2) == mask.n_queries && k.size(2) == mask.n_keys);
  if (flops && !mask.pairs_pending.defined())
    flops->add_attention(layer, n_heads, head_dim, mask.pairs_dense, mask.pairs_causal);
  const at::Tensor o = impl == AttnImpl::eager ? attend_eager(q, k, v, mask) : attend_sdpa(q, k, v, mask);
  return o.transpose(1, 2).reshape({q.size(0), q.size(2), n_heads * head_dim});  // [B, Tq, H·hd]
}

at::Tensor Attention::project_out(const at::Tensor& o, FlopCounter* flops, int layer) const {
  return o_proj.forward(o, flops, layer, OpGroup::attn_proj);
}

void Attention::fuse_projections() { qkv_proj = fuse_rows({&q_proj, &k_proj, &v_proj}); }

int64_t Attention::n_params() const {
  int64_t n = q_proj.n_params() + k_proj.n_params() + v_proj.n_params() + o_proj.n_params();
  if (q_norm.weight.defined()) n += q_norm.weight.numel() + k_norm.weight.numel();
  return n;
}

}  // namespace semskip
