#pragma once
// The gated feed-forward of Llama/Qwen/Mixtral: down(silu(gate(x)) · up(x)). Also the body of
// every routed and shared expert.

#include <cstdint>

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"
#include "model/layers/linear.h"

namespace semskip {

struct SwiGluMlp {
  Linear gate_proj;  // [intermediate, d]
  Linear up_proj;    // [intermediate, d]
  Linear down_proj;  // [d, intermediate]
  // gate and up stacked, [2·intermediate, d]; gate_proj/up_proj are views of its rows.
  // Undefined weight: the two run separately.
  Linear gate_up_proj;

  int64_t intermediate_size() const { return gate_proj.out_features(); }
  int64_t n_params() const { return gate_proj.n_params() + up_proj.n_params() + down_proj.n_params(); }

  // Stacks gate_proj and up_proj into gate_up_proj (one matmul instead of two, same numbers).
  void fuse_projections() { gate_up_proj = fuse_rows({&gate_proj, &up_proj}); }

  // x [..., d] -> [..., d]; FLOPs of the rows actually given, under (layer, group).
  at::Tensor forward(const at::Tensor& x, FlopCounter* flops = nullptr,
                     int layer = FlopCounter::kNoLayer, OpGroup group = OpGroup::mlp) const;
};

}  // namespace semskip
