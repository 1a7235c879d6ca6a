#include "model/layers/linear.h"

#include "core/error.h"

#ifdef SEMSKIP_MODEL_CUDA_KERNELS
#include <cstdint>
#include <optional>

#include <c10/cuda/CUDAGuard.h>

#include "model/cuda/fused_dispatch.h"
#include "model/cuda/gemv.h"
#endif

namespace semskip {

namespace {

#ifdef SEMSKIP_MODEL_CUDA_KERNELS
bool aligned16(const at::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

// x Wᵀ + b for up to kGemvMaxRows rows of fp16/bf16 in one kernel (model/cuda/gemv.h);
// undefined where it does not apply. SEMSKIP_GEMV=0 turns it off.
at::Tensor gemv_cuda(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  static const bool enabled = cuda::fused_enabled("SEMSKIP_GEMV");
  const int64_t k = weight.size(1), n = weight.size(0);
  if (!enabled || !x.is_cuda() || x.dim() == 0 || x.scalar_type() != weight.scalar_type() || k % 8 != 0) return {};
  const int64_t rows = x.numel() / k;
  const std::optional<cuda::ElemType> type = cuda::elem_type(x.scalar_type());
  if (!type || *type == cuda::ElemType::f32 || rows < 1 || rows > cuda::kGemvMaxRows || !weight.is_contiguous() ||
      (bias.defined() && !bias.is_contiguous()))
    return {};
  const at::Tensor xc = x.contiguous();
  if (!aligned16(xc) || !aligned16(weight)) return {};
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = n;
  at::Tensor y = at::empty(shape, x.options());
  const c10::cuda::CUDAGuard guard(x.device());
  cuda::check(cuda::gemv_rows(*type, xc.data_ptr(), rows, k, weight.data_ptr(), n,
                              bias.defined() ? bias.data_ptr() : nullptr, y.data_ptr(), cuda::stream_of(x.device())),
              "matrix-vector product");
  return y;
}
#endif

}  // namespace

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
#ifdef SEMSKIP_MODEL_CUDA_KERNELS
  if (at::Tensor y = gemv_cuda(x, weight, bias); y.defined()) return y;
#endif
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
