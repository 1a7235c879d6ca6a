#pragma once
// Fused element-wise kernels of the layer loop (CUDA builds), each equal bit for bit to the
// eager ATen expression it replaces, so that a CUDA forward gives the same numbers with fewer
// launches (a batch-1 decode step is a few hundred small kernels).
//
// Rotary position embedding in one kernel (Rotary::apply and apply_tokens_first call it for
// CUDA tensors, src/model/layers/rotary.h). The eager expression
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

enum class ElemType : int { f32 = 0, f16 = 1, bf16 = 2 };  // the tensors' type

struct RopeShape {
  int64_t size[4];
  int64_t x_stride[3];
  int64_t out_stride[3];
  int t_dim;               // 1 or 2
  int64_t table_stride[2]; // for d0 and the token dimension
};

cudaError_t rope_rotate(ElemType type, const void* x, const void* cos, const void* sin_signed, void* out,
                        const RopeShape& shape, cudaStream_t stream);

// A decode step's K and V written at one cache slot in one kernel (KvCache::write_slot: two
// index_copy launches otherwise): k_cache, v_cache [B, H, capacity, hd] contiguous, slot one
// int64 on the device, k and v [B, H, 1, hd] with row strides (b, h) and contiguous head_dim.
// Plain copies. SEMSKIP_FUSED_KV=0 turns it off (the caller reads it).
cudaError_t kv_write_slot(ElemType type, void* k_cache, void* v_cache, int64_t batch, int64_t heads, int64_t capacity,
                          int64_t head_dim, const int64_t* slot, const void* k, const int64_t k_stride[2],
                          const void* v, const int64_t v_stride[2], cudaStream_t stream);

// SwiGLU's gating in one kernel (SwiGluMlp::forward with a stacked gate/up projection): for
// gate_up [rows, 2·width] (row stride ld, contiguous within a row), out [rows, width]
// (contiguous) = silu(gate) · up with the eager roundings: silu in float32 (x / (1 + e^−x))
// rounded to the type, the product in float32 rounded to the type. SEMSKIP_FUSED_SILU=0 turns
// it off (the caller reads it).
cudaError_t silu_mul(ElemType type, const void* gate_up, int64_t rows, int64_t width, int64_t ld, void* out,
                     cudaStream_t stream);

}  // namespace semskip::cuda
