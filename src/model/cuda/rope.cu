// Rotary position embedding in one kernel (the header says what it computes).
#include "model/cuda/rope.h"

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

}  // namespace

cudaError_t rope_rotate(RopeType type, const void* x, const void* cos, const void* sin_signed, void* out,
                        const RopeShape& shape, cudaStream_t stream) {
  if (shape.size[3] % 2 != 0 || (shape.t_dim != 1 && shape.t_dim != 2)) return cudaErrorInvalidValue;
  if (type == RopeType::f32) return launch<float>(x, cos, sin_signed, out, shape, stream);
  if (type == RopeType::f16) return launch<__half>(x, cos, sin_signed, out, shape, stream);
  return launch<__nv_bfloat16>(x, cos, sin_signed, out, shape, stream);
}

}  // namespace semskip::cuda
