#include "model/arch/architecture.h"

#include "core/error.h"

namespace semskip {

DecoderLayer build_decoder_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o) {
  switch (c.arch) {
    case Arch::llama: return build_llama_layer(c, layer, w, o);
    case Arch::qwen2: return build_qwen2_layer(c, layer, w, o);
    case Arch::qwen2_moe: return build_qwen2_moe_layer(c, layer, w, o);
    case Arch::mixtral: return build_mixtral_layer(c, layer, w, o);
    case Arch::olmoe: return build_olmoe_layer(c, layer, w, o);
  }
  SEMSKIP_ASSERT(false);
}

}  // namespace semskip
