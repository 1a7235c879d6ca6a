#pragma once
// Rotary position embedding (RoPE) with the frequency scalings of Hugging Face's
// ROPE_INIT_FUNCTIONS that our architectures use: default, linear and llama3.

#include <cstdint>

#include <ATen/ATen.h>

#include "model/model_config.h"

namespace semskip {

// cos/sin of every (sequence, position) of one forward, shared by all layers.
struct RopeTable {
  at::Tensor cos;         // compute dtype [B, T, head_dim]
  at::Tensor sin;         // compute dtype [B, T, head_dim]
  // sin with its first half negated, [−sin_h | sin_h]: rotate_half(x)·sin equals
  // roll(x, head_dim/2)·sin_signed, one roll instead of a negation and a concatenation.
  at::Tensor sin_signed;  // compute dtype [B, T, head_dim]
};

class Rotary {
 public:
  Rotary() = default;
  // semskip::Error naming the config when its rope_type is not one of the three.
  Rotary(const ModelConfig& config, at::Device device);

  int64_t head_dim() const { return head_dim_; }
  const at::Tensor& inv_freq() const { return inv_freq_; }  // fp32 [head_dim / 2]

  // positions int64 [B, T] -> cos/sin in `dtype`; angles are computed in fp32 as the reference does.
  RopeTable table(const at::Tensor& positions, at::ScalarType dtype) const;

  // x [B, n_heads, T, head_dim] rotated by table (cos/sin [B, T, head_dim]).
  static at::Tensor apply(const at::Tensor& x, const RopeTable& table);
  // The same for x [B, T, n_heads, head_dim] (heads after tokens, as projections produce them):
  // queries and keys of one fused projection rotate in one pass.
  static at::Tensor apply_tokens_first(const at::Tensor& x, const RopeTable& table);

 private:
  int64_t head_dim_ = 0;
  at::Tensor inv_freq_;  // fp32 [head_dim / 2], on the model's device
};

// The inverse frequencies 1/θ^(2i/head_dim) rescaled per `scaling`; fp32 [head_dim / 2] on CPU.
at::Tensor rope_inv_freq(int64_t head_dim, double theta, const RopeScaling& scaling,
                         const std::string& source);

}  // namespace semskip
