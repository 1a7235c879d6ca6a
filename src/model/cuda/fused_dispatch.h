#pragma once
// The host side shared by the callers of the fused kernels (model/cuda/fused_ops.h; CUDA
// builds): the environment switch, the tensor type, the stream and the error check.

#include <cstdlib>
#include <cstring>
#include <optional>

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>

#include "core/error.h"
#include "model/cuda/fused_ops.h"

namespace semskip::cuda {

// False when the environment variable `var` is "0" (a kernel turned off, to measure what it
// saves); callers keep the answer in a static.
inline bool fused_enabled(const char* var) {
  const char* v = std::getenv(var);
  return v == nullptr || std::strcmp(v, "0") != 0;
}

// The kernels' type for st; nullopt for types they do not take.
inline std::optional<ElemType> elem_type(at::ScalarType st) {
  if (st == at::kFloat) return ElemType::f32;
  if (st == at::kHalf) return ElemType::f16;
  if (st == at::kBFloat16) return ElemType::bf16;
  return std::nullopt;
}

inline cudaStream_t stream_of(const at::Device& device) {
  return c10::cuda::getCurrentCUDAStream(device.index()).stream();
}

// semskip::Error "<what>: CUDA error: <message>" unless e is cudaSuccess.
inline void check(cudaError_t e, const char* what) {
  SEMSKIP_THROW_IF_NOT_MSG(e == cudaSuccess, "{}: CUDA error: {}", what, cudaGetErrorString(e));
}

}  // namespace semskip::cuda
