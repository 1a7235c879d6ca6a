#include "model/layers/swiglu_mlp.h"

namespace semskip {

at::Tensor SwiGluMlp::forward(const at::Tensor& x, FlopCounter* flops, int layer, OpGroup group) const {
  const at::Tensor h = at::silu(gate_proj.forward(x, flops, layer, group)) *
                       up_proj.forward(x, flops, layer, group);
  return down_proj.forward(h, flops, layer, group);
}

}  // namespace semskip
