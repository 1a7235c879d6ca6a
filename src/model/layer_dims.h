#pragma once
// A decoder layer's shapes as the FLOP formulas (metrics/flop_formulas.h) take them, from a
// config alone: `semskip info` and cost models need no weights.

#include <cstdint>

#include "metrics/flop_formulas.h"
#include "model/model_config.h"

namespace semskip {

flops::LayerDims layer_dims(const ModelConfig& c, int64_t layer);

// FLOPs of the LM head for one token.
inline int64_t lm_head_token_flops(const ModelConfig& c) { return flops::matmul(1, c.vocab_size, c.hidden_size); }

}  // namespace semskip
