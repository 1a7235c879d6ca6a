#pragma once
// y = x Wᵀ + b, the one matmul every block is made of; records its FLOPs when counting.
// A single row on CPU is a matrix-vector product; up to four fp16/bf16 rows on CUDA are one
// kernel of model/cuda/gemv.h (SEMSKIP_GEMV=0: cuBLAS), everything else at::linear.

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "metrics/flop_counter.h"

namespace semskip {

struct Linear {
  at::Tensor weight;  // compute dtype [out, in]
  at::Tensor bias;    // compute dtype [out], undefined when the layer has none

  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
  int64_t n_params() const { return weight.numel() + (bias.defined() ? bias.numel() : 0); }

  // x [..., in] -> [..., out]; adds 2·rows·out·in to `flops` (when given) under (layer, group).
  at::Tensor forward(const at::Tensor& x, FlopCounter* flops = nullptr,
                     int layer = FlopCounter::kNoLayer, OpGroup group = OpGroup::attn_proj) const;
};

// Stacks the rows of Linears that share their input into one Linear, so one matmul computes
// them all, and re-points each part's weight and bias to its rows of the stack: the parts stay
// usable on their own and no memory is duplicated. All parts have a bias or none has.
Linear fuse_rows(const std::vector<Linear*>& parts);

}  // namespace semskip
