#pragma once
// Multi-head attention with grouped (GQA) or multi-query (MQA) key/value heads, optional
// q/k/v (and o) biases, RoPE. Split in three so a caller can, for instance, compute queries
// for a subset of tokens while keys and values cover all of them:
//   project_qkv -> (optionally: KV cache, query selection) -> attend -> project_out.

#include <cstdint>

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"
#include "model/layers/attention_mask.h"
#include "model/layers/linear.h"
#include "model/layers/rms_norm.h"
#include "model/layers/rotary.h"
#include "model/model_options.h"

namespace semskip {

struct Qkv {
  at::Tensor q;  // compute dtype [B, n_heads, T, head_dim], RoPE applied
  at::Tensor k;  // compute dtype [B, n_kv_heads, T, head_dim], RoPE applied
  at::Tensor v;  // compute dtype [B, n_kv_heads, T, head_dim]
};

class Attention {
 public:
  Linear q_proj;  // [n_heads·head_dim, d]
  Linear k_proj;  // [n_kv_heads·head_dim, d]
  Linear v_proj;  // [n_kv_heads·head_dim, d]
  Linear o_proj;  // [d, n_heads·head_dim]
  // q, k and v stacked, [(n_heads + 2·n_kv_heads)·head_dim, d]; q/k/v_proj are views of its
  // rows. Undefined weight: the three run separately (e.g. blocks assembled by hand).
  Linear qkv_proj;
  // OLMoE: RMSNorm over the whole query and key projections ([n_heads·head_dim] and
  // [n_kv_heads·head_dim]), before RoPE. Undefined weights: none.
  RmsNorm q_norm;
  RmsNorm k_norm;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  AttnImpl impl = AttnImpl::eager;

  // x_normed [B, T, d], rope cos/sin of those T tokens -> q, k, v with RoPE applied.
  Qkv project_qkv(const at::Tensor& x_normed, const RopeTable& rope, FlopCounter* flops = nullptr,
                  int layer = FlopCounter::kNoLayer) const;

  // softmax(q kᵀ / √head_dim + mask) v. q [B, n_heads, Tq, hd]; k, v [B, n_kv_heads, Tk, hd]
  // (the whole key block, e.g. the KV cache up to the newest token); mask of Tq × Tk.
  // Returns o [B, Tq, n_heads·head_dim].
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    const AttentionMask& mask, FlopCounter* flops = nullptr,
                    int layer = FlopCounter::kNoLayer) const;

  // o [B, Tq, n_heads·head_dim] -> [B, Tq, d].
  at::Tensor project_out(const at::Tensor& o, FlopCounter* flops = nullptr,
                         int layer = FlopCounter::kNoLayer) const;

  int64_t n_params() const;
  // Stacks q/k/v_proj into qkv_proj (one matmul instead of three, same numbers).
  void fuse_projections();

 private:
  at::Tensor attend_eager(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const AttentionMask& mask) const;
  at::Tensor attend_sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         const AttentionMask& mask) const;
};

}  // namespace semskip
