#include "model/layers/swiglu_mlp.h"

#ifdef SEMSKIP_MODEL_CUDA_KERNELS
#include <optional>
#include <vector>

#include <c10/cuda/CUDAGuard.h>

#include "model/cuda/fused_dispatch.h"
#endif

namespace semskip {

namespace {

#ifdef SEMSKIP_MODEL_CUDA_KERNELS
// silu(gate) · up of a stacked projection in one launch (model/cuda/fused_ops.h, equal bit for
// bit); undefined where it does not apply. SEMSKIP_FUSED_SILU=0 turns it off.
at::Tensor silu_mul_cuda(const at::Tensor& gate_up, int64_t width) {
  static const bool enabled = cuda::fused_enabled("SEMSKIP_FUSED_SILU");
  const std::optional<cuda::ElemType> type = cuda::elem_type(gate_up.scalar_type());
  if (!enabled || !type || !gate_up.is_cuda() || !gate_up.is_contiguous()) return at::Tensor();
  std::vector<int64_t> sizes = gate_up.sizes().vec();
  sizes.back() = width;
  at::Tensor out = at::empty(sizes, gate_up.options());
  const c10::cuda::CUDAGuard guard(gate_up.device());
  cuda::check(cuda::silu_mul(*type, gate_up.data_ptr(), gate_up.numel() / (2 * width), width, 2 * width,
                             out.data_ptr(), cuda::stream_of(gate_up.device())),
              "SwiGLU gating");
  return out;
}
#endif

}  // namespace

at::Tensor SwiGluMlp::forward(const at::Tensor& x, FlopCounter* flops, int layer, OpGroup group) const {
  if (gate_up_proj.weight.defined()) {
    const int64_t width = intermediate_size();
    const at::Tensor gate_up = gate_up_proj.forward(x, flops, layer, group);
#ifdef SEMSKIP_MODEL_CUDA_KERNELS
    if (const at::Tensor h = silu_mul_cuda(gate_up, width); h.defined()) return down_proj.forward(h, flops, layer, group);
#endif
    return down_proj.forward(at::silu(gate_up.narrow(-1, 0, width)) * gate_up.narrow(-1, width, width), flops,
                             layer, group);
  }
  const at::Tensor h = at::silu(gate_proj.forward(x, flops, layer, group)) *
                       up_proj.forward(x, flops, layer, group);
  return down_proj.forward(h, flops, layer, group);
}

}  // namespace semskip
