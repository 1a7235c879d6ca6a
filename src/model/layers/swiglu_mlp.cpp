#include "model/layers/swiglu_mlp.h"

namespace semskip {

at::Tensor SwiGluMlp::forward(const at::Tensor& x, FlopCounter* flops, int layer, OpGroup group) const {
  if (gate_up_proj.weight.defined()) {
    const int64_t width = intermediate_size();
    const at::Tensor gate_up = gate_up_proj.forward(x, flops, layer, group);
    return down_proj.forward(at::silu(gate_up.narrow(-1, 0, width)) * gate_up.narrow(-1, width, width), flops,
                             layer, group);
  }
  const at::Tensor h = at::silu(gate_proj.forward(x, flops, layer, group)) *
                       up_proj.forward(x, flops, layer, group);
  return down_proj.forward(h, flops, layer, group);
}

}  // namespace semskip
