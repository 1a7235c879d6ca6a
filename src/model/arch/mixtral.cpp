// Mixtral: Llama attention without biases; every layer a MoE of n_experts SwiGLU experts of
// width intermediate_size, top-k routing always renormalised over the k. Hub checkpoints name
// the experts block_sparse_moe.experts.E.{w1,w3,w2} (gate, up, down); the later
// mlp.experts.E.{gate,up,down}_proj spelling is read too.
#include <fmt/format.h>

#include "model/arch/architecture.h"
#include "model/arch/blocks.h"

namespace semskip {

DecoderLayer build_mixtral_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o) {
  const std::string p = arch::layer_prefix(layer);
  DecoderLayer l = arch::decoder_layer(w, c, layer, arch::attention(w, p + ".self_attn", c, false, false, o.attn_impl));
  const int64_t d = c.hidden_size;
  const bool hub_names = !w.has(p + ".mlp.gate.weight");
  const std::string block = p + (hub_names ? ".block_sparse_moe" : ".mlp");
  MoeBlock moe;
  moe.top_k = c.n_experts_per_tok;
  moe.norm_topk_prob = true;
  moe.router = arch::linear(w, block + ".gate", c.n_experts, d, false);
  moe.experts = hub_names ? arch::routed_experts(w, block + ".experts", c.n_experts, d, c.intermediate_size,
                                                  o.experts, "w1", "w3", "w2")
                          : arch::routed_experts(w, block + ".experts", c.n_experts, d, c.intermediate_size,
                                                  o.experts);
  moe.stack_experts();  // fixed-shape decoding runs the experts batched (MoeBlock::forward_fixed)
  l.moe = std::move(moe);
  return l;
}

}  // namespace semskip
