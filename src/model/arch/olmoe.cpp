// OLMoE: Llama attention with RMSNorm over the whole query and key projections before RoPE
// (self_attn.q_norm [n_heads·head_dim], self_attn.k_norm [n_kv_heads·head_dim]); q/k/v and o
// biases per attention_bias; every layer a MoE block of num_experts routed experts of width
// intermediate_size (mlp.gate, mlp.experts.<e>.{gate,up,down}_proj), top-k of the fp32 softmax,
// renormalised iff norm_topk_prob, no shared expert.
#include "model/arch/architecture.h"
#include "model/arch/blocks.h"

namespace semskip {

DecoderLayer build_olmoe_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o) {
  const std::string p = arch::layer_prefix(layer);
  Attention attn = arch::attention(w, p + ".self_attn", c, c.attention_bias, c.o_proj_bias, o.attn_impl);
  attn.q_norm = arch::rms_norm(w, p + ".self_attn.q_norm", c.n_heads * c.head_dim, c.rms_norm_eps);
  attn.k_norm = arch::rms_norm(w, p + ".self_attn.k_norm", c.n_kv_heads * c.head_dim, c.rms_norm_eps);
  DecoderLayer l = arch::decoder_layer(w, c, layer, std::move(attn));
  const int64_t d = c.hidden_size;
  MoeBlock moe;
  moe.top_k = c.n_experts_per_tok;
  moe.norm_topk_prob = c.norm_topk_prob;
  moe.router = arch::linear(w, p + ".mlp.gate", c.n_experts, d, false);
  moe.experts = arch::routed_experts(w, p + ".mlp.experts", c.n_experts, d, c.intermediate_size, o.experts);
  moe.stack_experts();  // fixed-shape decoding runs the experts batched (MoeBlock::forward_fixed)
  l.moe = std::move(moe);
  return l;
}

}  // namespace semskip
