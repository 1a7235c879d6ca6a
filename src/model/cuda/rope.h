#pragma once
// Rotary position embedding in one kernel (CUDA builds; Rotary::apply and apply_tokens_first
// call it for CUDA tensors, src/model/layers/rotary.h). The eager expression
//   x·cos + roll(x, head_dim/2)·sin_signed
// is four launches (two products, the roll, the sum) per rotation; this is one, with the same
// roundings: each product rounded to the tensor's type, then their sum rounded (in float32 no
// fused multiply-add), so the result equals the eager one bit for bit.
//
// Shapes are 4-D [d0, d1, d2, head_dim] with any strides for the first three dimensions and a
// contiguous last one; the table (cos, sin_signed) is indexed by d0 and the token dimension
// (t_dim: 1 for [B, T, heads, hd], 2 for [B, heads, T, hd]), with its own strides (0 where
// broadcast).

#include <cstdint>

#include <cuda_runtime_api.h>

namespace semskip::cuda {

enum class RopeType : int { f32 = 0, f16 = 1, bf16 = 2 };

struct RopeShape {
  int64_t size[4];
  int64_t x_stride[3];
  int64_t out_stride[3];
  int t_dim;               // 1 or 2
  int64_t table_stride[2]; // for d0 and the token dimension
};

cudaError_t rope_rotate(RopeType type, const void* x, const void* cos, const void* sin_signed, void* out,
                        const RopeShape& shape, cudaStream_t stream);

}  // namespace semskip::cuda
