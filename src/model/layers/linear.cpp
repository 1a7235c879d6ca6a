#include "model/layers/linear.h"

#include "core/error.h"

namespace semskip {

at::Tensor Linear::forward(const at::Tensor& x, FlopCounter* flops, int layer, OpGroup group) const {
  if (flops) {
    const int64_t rows = x.dim() == 0 ? 0 : x.numel() / x.size(-1);
    flops->add_matmul(layer, group, rows, out_features(), in_features());
  }
  if (x.device().is_cpu() && x.numel() == in_features()) {
    // One row (a decode step of one sequence): on CPU a 1-row gemm first packs (copies) the
    // whole weight, a matrix-vector product only reads it; decode is bound by those reads.
    std::vector<int64_t> shape = x.sizes().vec();
    shape.back() = out_features();
    const at::Tensor xv = x.reshape({in_features()});
    return (bias.defined() ? at::addmv(bias, weight, xv) : at::mv(weight, xv)).view(shape);
  }
  return at::linear(x, weight, bias.defined() ? c10::optional<at::Tensor>(bias) : c10::nullopt);
}

Linear fuse_rows(const std::vector<Linear*>& parts) {
  SEMSKIP_ASSERT(!parts.empty());
  const bool with_bias = parts.front()->bias.defined();
  std::vector<at::Tensor> weights, biases;
  for (const Linear* p : parts) {
    SEMSKIP_ASSERT(p->bias.defined() == with_bias && p->in_features() == parts.front()->in_features());
    weights.push_back(p->weight);
    if (with_bias) biases.push_back(p->bias);
  }
  Linear fused;
  fused.weight = at::cat(weights, 0);
  if (with_bias) fused.bias = at::cat(biases, 0);
  int64_t row = 0;
  for (Linear* p : parts) {
    const int64_t n = p->out_features();
    p->weight = fused.weight.narrow(0, row, n);
    if (with_bias) p->bias = fused.bias.narrow(0, row, n);
    row += n;
  }
  return fused;
}

}  // namespace semskip
