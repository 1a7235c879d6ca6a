// Few-row matrix products of a decode step (the header says what they compute and why).
#include "model/cuda/gemv.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace semskip::cuda {

namespace {

constexpr int kWarps = 8;  // per block
constexpr int kThreads = kWarps * 32;
// Enough warps to keep every SM's loads in flight (132 SMs × 32 resident warps on an H100/H200).
constexpr int64_t kWarpsInFlight = 132 * 32;

__device__ __forceinline__ void unpack(const uint4& v, float (&f)[8], __half) {
  const __half2* h = reinterpret_cast<const __half2*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __half22float2(h[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ void unpack(const uint4& v, float (&f)[8], __nv_bfloat16) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __bfloat1622float2(h[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ void store(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// Block: kWarps warps, kWarps / G output rows, G warps per row splitting its K / 8 vectors.
template <typename T, int M, int G>
__global__ void __launch_bounds__(kThreads) gemv_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                        const T* __restrict__ bias, T* __restrict__ y, int64_t n,
                                                        int64_t k) {
  constexpr int R = kWarps / G;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int local_row = warp / G, part = warp % G;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * R + local_row;
  const int64_t nvec = k / 8;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  if (row < n) {
    const uint4* wr = reinterpret_cast<const uint4*>(w + row * k);
    const uint4* xv = reinterpret_cast<const uint4*>(x);
#pragma unroll 4
    for (int64_t v = part * 32 + lane; v < nvec; v += G * 32) {
      float wf[8];
      unpack(__ldg(wr + v), wf, T{});
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float xf[8];
        unpack(__ldg(xv + m * nvec + v), xf, T{});
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[m] = fmaf(wf[j], xf[j], acc[m]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], off);
  }
  if constexpr (G > 1) {
    __shared__ float partial[kWarps][M];
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) partial[warp][m] = acc[m];
    }
    __syncthreads();
    if (part != 0) return;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float s = 0.0f;
#pragma unroll
      for (int g = 0; g < G; ++g) s += partial[local_row * G + g][m];
      acc[m] = s;
    }
  }
  if (lane != 0 || row >= n) return;
  const float b = bias ? to_float(bias[row]) : 0.0f;
#pragma unroll
  for (int m = 0; m < M; ++m) store(y + m * n + row, acc[m] + b);
}

template <typename T, int M, int G>
cudaError_t launch_g(const void* x, int64_t k, const void* w, int64_t n, const void* bias, void* y,
                     cudaStream_t stream) {
  constexpr int R = kWarps / G;
  const int64_t blocks = (n + R - 1) / R;
  gemv_kernel<T, M, G><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias), static_cast<T*>(y), n, k);
  return cudaGetLastError();
}

template <typename T, int M>
cudaError_t launch_m(int g, const void* x, int64_t k, const void* w, int64_t n, const void* bias, void* y,
                     cudaStream_t stream) {
  switch (g) {
    case 1: return launch_g<T, M, 1>(x, k, w, n, bias, y, stream);
    case 2: return launch_g<T, M, 2>(x, k, w, n, bias, y, stream);
    case 4: return launch_g<T, M, 4>(x, k, w, n, bias, y, stream);
    default: return launch_g<T, M, 8>(x, k, w, n, bias, y, stream);
  }
}

template <typename T>
cudaError_t launch(int64_t m, int g, const void* x, int64_t k, const void* w, int64_t n, const void* bias, void* y,
                   cudaStream_t stream) {
  switch (m) {
    case 1: return launch_m<T, 1>(g, x, k, w, n, bias, y, stream);
    case 2: return launch_m<T, 2>(g, x, k, w, n, bias, y, stream);
    case 3: return launch_m<T, 3>(g, x, k, w, n, bias, y, stream);
    default: return launch_m<T, 4>(g, x, k, w, n, bias, y, stream);
  }
}

}  // namespace

int gemv_warps_per_row(int64_t n, int64_t k) {
  // Double the warps per row while the device has too few warps and each lane keeps at least
  // two 16-byte loads of its row.
  const int64_t nvec = k / 8;
  int g = 1;
  while (g < kWarps && n * g < kWarpsInFlight && nvec >= int64_t{2} * 32 * (2 * g)) g *= 2;
  return g;
}

cudaError_t gemv_rows(ElemType type, const void* x, int64_t m, int64_t k, const void* w, int64_t n, const void* bias,
                      void* y, cudaStream_t stream) {
  if (type == ElemType::f32 || m < 1 || m > kGemvMaxRows || k % 8 != 0 || k <= 0 || n <= 0 || n > 2147483647LL)
    return cudaErrorInvalidValue;
  const int g = gemv_warps_per_row(n, k);
  if (type == ElemType::f16) return launch<__half>(m, g, x, k, w, n, bias, y, stream);
  return launch<__nv_bfloat16>(m, g, x, k, w, n, bias, y, stream);
}

}  // namespace semskip::cuda
