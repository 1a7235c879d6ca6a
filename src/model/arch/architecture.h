#pragma once
// One file per architecture (docs/conventions.md rule 2): each names its weights and composes the shared
// blocks of src/model/layers into a DecoderLayer. The embedding, final norm and LM head are
// named the same in all five and built by the Transformer.

#include <cstdint>

#include "model/decoder_layer.h"
#include "model/model_config.h"
#include "model/model_options.h"
#include "model/weights.h"

namespace semskip {

DecoderLayer build_llama_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o);
DecoderLayer build_qwen2_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o);
DecoderLayer build_qwen2_moe_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o);
DecoderLayer build_mixtral_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o);
DecoderLayer build_olmoe_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o);

// Dispatches on c.arch.
DecoderLayer build_decoder_layer(const ModelConfig& c, int64_t layer, WeightSource& w, const ModelOptions& o);

}  // namespace semskip
