#include "metrics/flop_formulas.h"

namespace semskip::flops {

LayerTokenFlops layer_token_flops(const LayerDims& dims, int64_t context) {
  LayerTokenFlops f;
  const int64_t d = dims.hidden;
  const int64_t q_width = dims.n_heads * dims.head_dim;
  const int64_t kv_width = dims.n_kv_heads * dims.head_dim;
  f.attn_proj = matmul(1, q_width, d) + 2 * matmul(1, kv_width, d) + matmul(1, d, q_width);
  f.attn_products = attention_products(dims.n_heads, dims.head_dim, context);
  if (dims.n_experts == 0) {
    f.mlp = swiglu(1, d, dims.mlp_intermediate);
  } else {
    f.router = matmul(1, dims.n_experts, d);
    f.experts = dims.top_k * swiglu(1, d, dims.expert_intermediate);
    if (dims.shared_intermediate > 0) f.shared_expert = swiglu(1, d, dims.shared_intermediate);
    if (dims.shared_gate) f.shared_expert += matmul(1, 1, d);
  }
  return f;
}

}  // namespace semskip::flops
