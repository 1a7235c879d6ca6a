#pragma once
// The score matrix of a half-precision exact search by one cuBLAS call (CUDA builds only; the
// torch:flat index's matmul path uses it on a CUDA device with dtype=fp16|bf16).
//
// Why. At the size of a semantic-cache step (128 queries × 16k keys × 256) the matmul path is
// bound by the host: at::mm_out spends about as long in operator dispatch before it reaches
// cuBLAS as the GPU spends on the product (bench/bench_small_search.cpp measures the host's
// issue time of each stage), and the search's latency is the sum of what the host issues.
// Calling cuBLAS's cublasGemmEx directly, on the handle LibTorch uses for the stream (its
// workspace and stream set by LibTorch), computes the same product (float32 accumulation,
// output rounded to the keys' type) without that dispatch.
//
// Which cuBLAS. LibTorch does not export its own gemm wrappers, and linking a cuBLAS of this
// build's toolkit beside the one LibTorch loaded could put two versions of one library in the
// process; cublasGemmEx is therefore looked up (once) in the cuBLAS LibTorch loaded. Where the
// process has none, reduced_gemm returns false and the caller runs the matmul through LibTorch.

#include <cstdint>

#include "index/cuda/select_topk.h"

namespace semskip::cuda {

// Whether this process has a cuBLAS to call (LibTorch's).
bool has_reduced_gemm();

// scores [n, ld] (row-major, row stride ld) = q [n, dim] · keys[0, ld)ᵀ, q and keys row-major
// with row stride dim, all three of type (f16 or bf16), on blas_handle (a cublasHandle_t whose
// stream is the caller's). False (nothing launched) where there is no cuBLAS, a size does not
// fit cuBLAS's 32-bit arguments, type is f32 or cuBLAS refuses the call.
bool reduced_gemm(void* blas_handle, ScoreType type, const void* keys, const void* q, int64_t n, int64_t ld,
                  int64_t dim, void* scores);

}  // namespace semskip::cuda
