#include "index/cuda/reduced_gemm.h"

#include <dlfcn.h>

#include <limits>

#include <cublas_v2.h>

namespace semskip::cuda {
namespace {

// cublasGemmEx's C signature (the header adds a C++ overload with a cudaDataType compute type).
using GemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                  const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                                  cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);

GemmEx loaded_gemm_ex() {
  static const GemmEx f = reinterpret_cast<GemmEx>(dlsym(RTLD_DEFAULT, "cublasGemmEx"));
  return f;
}

bool fits_int(int64_t v) { return v >= 0 && v <= std::numeric_limits<int>::max(); }

}  // namespace

bool has_reduced_gemm() { return loaded_gemm_ex() != nullptr; }

bool reduced_gemm(void* blas_handle, ScoreType type, const void* keys, const void* q, int64_t n, int64_t ld,
                  int64_t dim, void* scores) {
  const GemmEx gemm = loaded_gemm_ex();
  if (gemm == nullptr || type == ScoreType::f32 || !fits_int(n) || !fits_int(ld) || !fits_int(dim)) return false;
  if (n == 0 || ld == 0) return true;
  const cudaDataType t = type == ScoreType::f16 ? CUDA_R_16F : CUDA_R_16BF;
  const float one = 1.f, zero = 0.f;
  // Column-major: scoresᵀ [ld, n] = (keys read transposed: [ld, dim]) · qᵀ [dim, n].
  const int m_ = static_cast<int>(ld), n_ = static_cast<int>(n), k_ = static_cast<int>(dim);
  return gemm(static_cast<cublasHandle_t>(blas_handle), CUBLAS_OP_T, CUBLAS_OP_N, m_, n_, k_, &one, keys, t, k_, q, t,
              k_, &zero, scores, t, m_, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS;
}

}  // namespace semskip::cuda
