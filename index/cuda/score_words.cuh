#pragma once
// The packed words the GPU selection kernels exchange (index/cuda/select_topk.h): a score's
// order-preserving key in the high 32 bits, the complement of its column in the low 32, so
// that one unsigned comparison orders by score and then by lower column. Device code only.
#include <cstdint>

namespace semskip::cuda::words {

// Order-preserving keys: a larger score gives a larger key; 0 means "no score" (valid scores
// map to ≥ 1, which only merges the one NaN bit pattern that would map to 0 with its neighbour).
__device__ __forceinline__ uint32_t score_key(uint32_t bits) {
  const uint32_t k = bits ^ ((bits & 0x80000000u) ? 0xFFFFFFFFu : 0x80000000u);
  return k > 1u ? k : 1u;
}
__device__ __forceinline__ uint32_t score_key(uint16_t bits) {
  const uint32_t b = bits;
  const uint32_t k = b ^ ((b & 0x8000u) ? 0xFFFFu : 0x8000u);
  return k > 1u ? k : 1u;
}
__device__ __forceinline__ uint32_t score_key(uint64_t word) { return static_cast<uint32_t>(word >> 32); }

__device__ __forceinline__ uint64_t pack(uint32_t key, uint64_t column) {
  return (static_cast<uint64_t>(key) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(column));
}

}  // namespace semskip::cuda::words
