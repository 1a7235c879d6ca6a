#include "model/layer_dims.h"

namespace semskip {

flops::LayerDims layer_dims(const ModelConfig& c, int64_t layer) {
  flops::LayerDims d;
  d.hidden = c.hidden_size;
  d.n_heads = c.n_heads;
  d.n_kv_heads = c.n_kv_heads;
  d.head_dim = c.head_dim;
  if (!c.is_moe_layer(layer)) {
    d.mlp_intermediate = c.intermediate_size;
    return d;
  }
  d.n_experts = c.n_experts;
  d.top_k = c.n_experts_per_tok;
  d.expert_intermediate = c.expert_intermediate_size();
  d.shared_intermediate = c.shared_expert_intermediate_size;
  // Qwen2-MoE gates its shared expert; Mixtral has none.
  d.shared_gate = c.arch == Arch::qwen2_moe && c.shared_expert_intermediate_size > 0;
  return d;
}

}  // namespace semskip
