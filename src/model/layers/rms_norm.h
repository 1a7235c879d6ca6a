#pragma once
// RMSNorm as Hugging Face's LlamaRMSNorm: normalise in fp32, cast back, then scale.

#include <ATen/ATen.h>

namespace semskip {

struct RmsNorm {
  at::Tensor weight;  // compute dtype [d]
  double eps = 1e-6;

  // x [..., d] -> [..., d], same dtype.
  at::Tensor forward(const at::Tensor& x) const;
};

}  // namespace semskip
