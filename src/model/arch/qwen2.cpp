// Qwen2: biases on q/k/v (never on o_proj), SwiGLU MLP without biases; tied embeddings are
// handled by the Transformer.
#include "model/arch/architecture.h"
#include "model/arch/blocks.h"

namespace semskip {

DecoderLayer build_qwen2_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o) {
  const std::string p = arch::layer_prefix(layer);
  DecoderLayer l =
      arch::decoder_layer(w, c, layer, arch::attention(w, p + ".self_attn", c, /*qkv_bias=*/true, false, o.attn_impl));
  l.mlp = arch::swiglu(w, p + ".mlp", c.hidden_size, c.intermediate_size, false);
  return l;
}

}  // namespace semskip
