// Fused element-wise kernels of the layer loop (the header says what each computes).
#include "model/cuda/fused_ops.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace semskip::cuda {

namespace {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T>
__global__ void rope_kernel(const T* x, const T* cos, const T* sin_signed, T* out, RopeShape s, int64_t total) {
  const int64_t hd = s.size[3];
  const int64_t half = hd / 2;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e % hd;
    int64_t r = e / hd;
    const int64_t c = r % s.size[2];
    r /= s.size[2];
    const int64_t a = r % s.size[1];
    const int64_t b = r / s.size[1];
    const int64_t t = s.t_dim == 1 ? a : c;
    const int64_t xo = b * s.x_stride[0] + a * s.x_stride[1] + c * s.x_stride[2];
    const int64_t to = b * s.table_stride[0] + t * s.table_stride[1];
    const int64_t ip = i < half ? i + half : i - half;
    // Each product rounded to T, then the sum (no contraction into a fused multiply-add).
    const float p1 = to_float(from_float<T>(__fmul_rn(to_float(x[xo + i]), to_float(cos[to + i]))));
    const float p2 = to_float(from_float<T>(__fmul_rn(to_float(x[xo + ip]), to_float(sin_signed[to + i]))));
    out[b * s.out_stride[0] + a * s.out_stride[1] + c * s.out_stride[2] + i] = from_float<T>(__fadd_rn(p1, p2));
  }
}

template <typename T>
cudaError_t launch(const void* x, const void* cos, const void* sin_signed, void* out, const RopeShape& s,
                   cudaStream_t stream) {
  const int64_t total = s.size[0] * s.size[1] * s.size[2] * s.size[3];
  if (total == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  rope_kernel<T><<<static_cast<unsigned>(blocks < 65535 * 16 ? blocks : 65535 * 16), kThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(cos), static_cast<const T*>(sin_signed), static_cast<T*>(out),
      s, total);
  return cudaGetLastError();
}

template <typename T>
__global__ void silu_mul_kernel(const T* gate_up, int64_t width, int64_t ld, T* out, int64_t total) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / width;
    const int64_t i = e % width;
    const float g = to_float(gate_up[r * ld + i]);
    const float u = to_float(gate_up[r * ld + width + i]);
    // As ATen's silu: x / (1 + exp(−x)) in float32, then rounded; then the rounded product.
    const float silu = to_float(from_float<T>(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g)))));
    out[e] = from_float<T>(__fmul_rn(silu, u));
  }
}

template <typename E>
__global__ void kv_write_kernel(E* k_cache, E* v_cache, int64_t heads, int64_t capacity, int64_t hd,
                                const int64_t* slot, const E* k, int64_t ksb, int64_t ksh, const E* v, int64_t vsb,
                                int64_t vsh, int64_t total) {
  const int64_t s = *slot;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = e % hd;
    const int64_t bh = e / hd;
    const int64_t h = bh % heads;
    const int64_t b = bh / heads;
    const int64_t dst = (bh * capacity + s) * hd + i;
    k_cache[dst] = k[b * ksb + h * ksh + i];
    v_cache[dst] = v[b * vsb + h * vsh + i];
  }
}

}  // namespace

cudaError_t kv_write_slot(ElemType type, void* k_cache, void* v_cache, int64_t batch, int64_t heads, int64_t capacity,
                          int64_t head_dim, const int64_t* slot, const void* k, const int64_t k_stride[2],
                          const void* v, const int64_t v_stride[2], cudaStream_t stream) {
  const int64_t total = batch * heads * head_dim;
  if (total == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const unsigned grid = static_cast<unsigned>((total + kThreads - 1) / kThreads);
  if (type == ElemType::f32)
    kv_write_kernel<uint32_t><<<grid, kThreads, 0, stream>>>(
        static_cast<uint32_t*>(k_cache), static_cast<uint32_t*>(v_cache), heads, capacity, head_dim, slot,
        static_cast<const uint32_t*>(k), k_stride[0], k_stride[1], static_cast<const uint32_t*>(v), v_stride[0],
        v_stride[1], total);
  else
    kv_write_kernel<uint16_t><<<grid, kThreads, 0, stream>>>(
        static_cast<uint16_t*>(k_cache), static_cast<uint16_t*>(v_cache), heads, capacity, head_dim, slot,
        static_cast<const uint16_t*>(k), k_stride[0], k_stride[1], static_cast<const uint16_t*>(v), v_stride[0],
        v_stride[1], total);
  return cudaGetLastError();
}

cudaError_t silu_mul(ElemType type, const void* gate_up, int64_t rows, int64_t width, int64_t ld, void* out,
                     cudaStream_t stream) {
  const int64_t total = rows * width;
  if (total == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t blocks = (total + kThreads - 1) / kThreads;
  const unsigned grid = static_cast<unsigned>(blocks < 65535 * 16 ? blocks : 65535 * 16);
  if (type == ElemType::f32)
    silu_mul_kernel<float><<<grid, kThreads, 0, stream>>>(static_cast<const float*>(gate_up), width, ld,
                                                          static_cast<float*>(out), total);
  else if (type == ElemType::f16)
    silu_mul_kernel<__half><<<grid, kThreads, 0, stream>>>(static_cast<const __half*>(gate_up), width, ld,
                                                           static_cast<__half*>(out), total);
  else
    silu_mul_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(gate_up), width,
                                                                  ld, static_cast<__nv_bfloat16*>(out), total);
  return cudaGetLastError();
}

cudaError_t rope_rotate(ElemType type, const void* x, const void* cos, const void* sin_signed, void* out,
                        const RopeShape& shape, cudaStream_t stream) {
  if (shape.size[3] % 2 != 0 || (shape.t_dim != 1 && shape.t_dim != 2)) return cudaErrorInvalidValue;
  if (type == ElemType::f32) return launch<float>(x, cos, sin_signed, out, shape, stream);
  if (type == ElemType::f16) return launch<__half>(x, cos, sin_signed, out, shape, stream);
  return launch<__nv_bfloat16>(x, cos, sin_signed, out, shape, stream);
}

}  // namespace semskip::cuda
