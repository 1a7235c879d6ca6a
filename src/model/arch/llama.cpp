// Llama 2 / 3 / 3.1: GQA attention (biases only with attention_bias, which also biases
// o_proj), SwiGLU MLP (biases with mlp_bias). RoPE scaling (llama3, linear) is in Rotary.
#include "model/arch/architecture.h"
#include "model/arch/blocks.h"

namespace semskip {

DecoderLayer build_llama_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o) {
  const std::string p = arch::layer_prefix(layer);
  DecoderLayer l = arch::decoder_layer(
      w, c, layer, arch::attention(w, p + ".self_attn", c, c.attention_bias, c.o_proj_bias, o.attn_impl));
  l.mlp = arch::swiglu(w, p + ".mlp", c.hidden_size, c.intermediate_size, c.mlp_bias);
  return l;
}

}  // namespace semskip
