#pragma once
// Building shared blocks from named weights; the architecture files call these.

#include <cstdint>
#include <string>
#include <vector>

#include "model/decoder_layer.h"
#include "model/model_config.h"
#include "model/model_options.h"
#include "model/weights.h"

namespace semskip::arch {

// "<prefix>.weight" [out, in] and, when `bias`, "<prefix>.bias" [out].
Linear linear(WeightSource& w, const std::string& prefix, int64_t out, int64_t in, bool bias);
RmsNorm rms_norm(WeightSource& w, const std::string& name, int64_t d, double eps);
// "<prefix>.{q,k,v,o}_proj"; q/k/v biases when qkv_bias, o bias when o_bias.
Attention attention(WeightSource& w, const std::string& prefix, const ModelConfig& c, bool qkv_bias,
                    bool o_bias, AttnImpl impl);
// "<prefix>.<gate>", "<prefix>.<up>", "<prefix>.<down>".
SwiGluMlp swiglu(WeightSource& w, const std::string& prefix, int64_t d, int64_t intermediate, bool bias,
                 const char* gate = "gate_proj", const char* up = "up_proj", const char* down = "down_proj");
// The routed experts "<prefix>.<e>" of a MoE block, only those `held` (ModelOptions::experts):
// per-expert tensors "<prefix>.<e>.<gate|up|down>.weight" are read for the held experts alone,
// stacked ones (transformers 5: "<prefix>.gate_up_proj" [E, 2·width, d], gate rows first, and
// "<prefix>.down_proj" [E, d, width]) for the held rows alone. Experts not held stay empty
// (undefined weights). semskip::Error when `held` names experts past n_experts.
std::vector<SwiGluMlp> routed_experts(WeightSource& w, const std::string& prefix, int64_t n_experts, int64_t d,
                                      int64_t width, const ExpertShard& held, const char* gate = "gate_proj",
                                      const char* up = "up_proj", const char* down = "down_proj");
// "model.layers.<layer>".
std::string layer_prefix(int64_t layer);
// The pre-norm block with its two norms named as every architecture here names them.
DecoderLayer decoder_layer(WeightSource& w, const ModelConfig& c, int64_t layer, Attention attn);

}  // namespace semskip::arch
