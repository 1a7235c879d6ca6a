// Qwen2-MoE: Qwen2 attention (q/k/v biases per qkv_bias); sparse layers (every decoder_sparse_step-th, minus
// mlp_only_layers) hold n_experts routed experts of width moe_intermediate_size, top-k routing
// renormalised iff norm_topk_prob, and a shared expert scaled by sigmoid(shared_expert_gate(x)).
// Dense layers use a SwiGLU of width intermediate_size.
#include <fmt/format.h>

#include "model/arch/architecture.h"
#include "model/arch/blocks.h"

namespace semskip {

DecoderLayer build_qwen2_moe_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o) {
  const std::string p = arch::layer_prefix(layer);
  DecoderLayer l =
      arch::decoder_layer(w, c, layer, arch::attention(w, p + ".self_attn", c, c.attention_bias, false, o.attn_impl));
  const int64_t d = c.hidden_size;
  if (!c.is_moe_layer(layer)) {
    l.mlp = arch::swiglu(w, p + ".mlp", d, c.intermediate_size, false);
    return l;
  }
  MoeBlock moe;
  moe.top_k = c.n_experts_per_tok;
  moe.norm_topk_prob = c.norm_topk_prob;
  moe.router = arch::linear(w, p + ".mlp.gate", c.n_experts, d, false);
  moe.experts = arch::routed_experts(w, p + ".mlp.experts", c.n_experts, d, c.moe_intermediate_size, o.experts);
  if (c.shared_expert_intermediate_size > 0) {
    moe.shared = arch::swiglu(w, p + ".mlp.shared_expert", d, c.shared_expert_intermediate_size, false);
    moe.shared_gate = arch::linear(w, p + ".mlp.shared_expert_gate", 1, d, false);
  }
  moe.stack_experts();  // fixed-shape decoding runs the experts batched (MoeBlock::forward_fixed)
  l.moe = std::move(moe);
  return l;
}

}  // namespace semskip
