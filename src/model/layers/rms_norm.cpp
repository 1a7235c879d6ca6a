#include "model/layers/rms_norm.h"

namespace semskip {

at::Tensor RmsNorm::forward(const at::Tensor& x) const {
  // The variance is taken in fp32 even for bf16/fp16 activations, as the reference does.
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor variance = xf.pow(2).mean(-1, /*keepdim=*/true);
  const at::Tensor normed = xf * at::rsqrt(variance + eps);
  return weight * normed.to(x.scalar_type());
}

}  // namespace semskip
