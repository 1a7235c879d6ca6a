#include "model/layers/linear.h"

namespace semskip {

at::Tensor Linear::forward(const at::Tensor& x, FlopCounter* flops, int layer, OpGroup group) const {
  if (flops) {
    const int64_t rows = x.dim() == 0 ? 0 : x.numel() / x.size(-1);
    flops->add_matmul(layer, group, rows, out_features(), in_features());
  }
  return at::linear(x, weight, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt);
}

}  // namespace semskip
