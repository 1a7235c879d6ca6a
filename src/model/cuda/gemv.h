#pragma once
// Matrix-vector products of a decode step (CUDA builds): y [M, N] = x [M, K] · Wᵀ (+ b) for a
// few rows (M ≤ kGemvMaxRows), fp16/bf16, W [N, K] row-major. A batch-1 decode step is bound
// by reading the weights once; cuBLAS picks split-K kernels for one row (a product and a
// separate reduction per matmul) that read them at about two thirds of the copy bandwidth.
//
// One kernel per product: each output row is a dot product of K elements, taken by G warps
// (G = 1, 2, 4 or 8, chosen from N and K so that the device has enough warps in flight and each
// lane at least a couple of 16-byte loads), each lane reading 8 elements per load and
// accumulating in fp32; the warps' partial sums meet in shared memory, the bias is added in
// fp32 and the result rounded once to the type. The same arithmetic as cuBLAS (fp32
// accumulation, one rounding) in another summation order: results agree with cuBLAS to the
// type's rounding, not bit for bit (fp32 products stay on cuBLAS, so fp32 parity is unchanged).
//
// Requirements, checked by the caller (Linear::forward): K a multiple of 8, x, W (and b) 16-byte
// aligned and contiguous. SEMSKIP_GEMV=0 turns it off (the caller reads it).

#include <cstdint>

#include <cuda_runtime_api.h>

#include "model/cuda/fused_ops.h"

namespace semskip::cuda {

constexpr int64_t kGemvMaxRows = 4;

// x [m, k], w [n, k], bias [n] or nullptr, y [m, n]; type f16 or bf16 (f32: cudaErrorInvalidValue).
cudaError_t gemv_rows(ElemType type, const void* x, int64_t m, int64_t k, const void* w, int64_t n, const void* bias,
                      void* y, cudaStream_t stream);

// The warps per output row gemv_rows uses for an [n, k] weight (exposed for tests and the
// benchmark's notes).
int gemv_warps_per_row(int64_t n, int64_t k);

}  // namespace semskip::cuda
