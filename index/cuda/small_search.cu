// The first stage of a small half-precision exact search in one launch (the header says how).
#include "index/cuda/small_search.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include "index/cuda/score_words.cuh"

namespace semskip::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kScoreLd = kTileKeys + 4;  // floats per row of a tile's scores (rows 16-byte aligned)
constexpr int kBatch = 8;                // column steps of 16 whose key fragments are loaded together
constexpr int kMaxTilesPerSlice = 16;
constexpr int kTargetBlocks = 256;
static_assert(kWarps * 16 == kTileKeys, "each warp scores 16 keys");
static_assert(kTileKeys == 4 * 32, "a warp sorts a query's tile scores, 4 per lane");
static_assert(kTileQueries == 2 * kWarps, "each warp keeps the lists of two queries");
static_assert(kMaxTilesPerSlice * kTileKeys <= 0x10000, "a column in the slice fits 16 bits");

__device__ __forceinline__ void to_half(float v, __half* out) { *out = __float2half_rn(v); }
__device__ __forceinline__ void to_half(float v, __nv_bfloat16* out) { *out = __float2bfloat16_rn(v); }
__device__ __forceinline__ uint16_t rounded_bits(float v, __half) { return __half_as_ushort(__float2half_rn(v)); }
__device__ __forceinline__ uint16_t rounded_bits(float v, __nv_bfloat16) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(v));
}

// Sorts the warp's 128 words v (element e = lane·4 + r in v[r]) in decreasing order.
__device__ __forceinline__ void warp_sort_descending(uint32_t (&v)[4]) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
#pragma unroll
  for (int size = 2; size <= kTileKeys; size <<= 1) {
#pragma unroll
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      uint32_t next[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int e = lane * 4 + r;
        const uint32_t other = stride >= 4 ? __shfl_xor_sync(0xFFFFFFFFu, v[r], stride / 4) : v[r ^ stride];
        // In a decreasing run the lower element of a pair keeps the larger word, in an
        // increasing one the smaller; the last run (size 128) decreases.
        const bool lower = (e & stride) == 0;
        const bool decreasing = (e & size) == 0;
        next[r] = (lower == decreasing) ? max(v[r], other) : min(v[r], other);
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) v[r] = next[r];
    }
  }
}

// A query's running best words, one per lane, decreasing from lane 0 (0: empty). Inserts each
// word of v (4 per lane) that beats the take-th best.
__device__ __forceinline__ void insert_words(uint32_t& list, const uint32_t (&v)[4], int take) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    uint32_t pending = __ballot_sync(0xFFFFFFFFu, v[r] > __shfl_sync(0xFFFFFFFFu, list, take - 1));
    while (pending) {
      const int src = __ffs(pending) - 1;
      pending &= pending - 1;
      const uint32_t w = __shfl_sync(0xFFFFFFFFu, v[r], src);
      if (w > __shfl_sync(0xFFFFFFFFu, list, take - 1)) {  // the bound rises as words go in
        const int pos = __popc(__ballot_sync(0xFFFFFFFFu, list > w));
        const uint32_t up = __shfl_up_sync(0xFFFFFFFFu, list, 1);
        if (lane > pos) list = up;
        if (lane == pos) list = w;
      }
    }
  }
}

template <typename Half>
__global__ void __launch_bounds__(kThreads)
    small_kernel(const float* queries, int64_t n_queries, int dim, const Half* keys, int64_t n_keys, int take,
                 int tiles_per_slice, float* unit, uint64_t* cand, int64_t m) {
  namespace wmma = nvcuda::wmma;
  extern __shared__ __align__(128) unsigned char smem[];
  const int ldq = dim + 8;
  Half* s_q = reinterpret_cast<Half*>(smem);             // [kTileQueries][ldq]: the normalised queries
  float* s_scores = reinterpret_cast<float*>(s_q + kTileQueries * ldq);  // 2 × [kTileQueries][kScoreLd]
  __shared__ float s_norm[kTileQueries];
  const int t = static_cast<int>(threadIdx.x);
  const int lane = t & 31;
  const int warp = t / 32;
  const int64_t slice = blockIdx.x;
  const int64_t slice_key0 = slice * tiles_per_slice * kTileKeys;
  const int64_t n_groups = (n_queries + kTileQueries - 1) / kTileQueries;
  for (int64_t g = blockIdx.y; g < n_groups; g += gridDim.y) {
    const int64_t q0 = g * kTileQueries;
    const int nq = static_cast<int>(min(static_cast<int64_t>(kTileQueries), n_queries - q0));
    // Each warp the norms of two queries; then the normalised queries, rounded, to shared
    // memory (and, by the blocks of slice 0, in float32 for the rescoring).
    for (int i = warp; i < kTileQueries; i += kWarps) {
      float sum = 0.f;
      if (i < nq) {
        const float* xr = queries + (q0 + i) * dim;
        for (int j = lane; j < dim; j += 32) sum += xr[j] * xr[j];
      }
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, off);
      if (lane == 0) s_norm[i] = fmaxf(sqrtf(sum), FLT_MIN);
    }
    __syncthreads();
    for (int i = warp; i < kTileQueries; i += kWarps) {
      const float norm = s_norm[i];
      for (int j = lane; j < dim; j += 32) {
        const float v = i < nq ? queries[(q0 + i) * dim + j] / norm : 0.f;
        to_half(v, s_q + i * ldq + j);
        if (unit && slice == 0 && i < nq) unit[(q0 + i) * dim + j] = v;
      }
    }
    uint32_t list[2] = {0u, 0u};  // the running best of queries warp and warp + kWarps
    for (int tile = 0; tile < tiles_per_slice; ++tile) {
      const int64_t key0 = slice_key0 + static_cast<int64_t>(tile) * kTileKeys;
      if (key0 >= n_keys) break;
      const int64_t warp_key0 = key0 + warp * 16;
      float* scores = s_scores + (tile & 1) * kTileQueries * kScoreLd;  // double-buffered
      __syncthreads();  // the queries are in shared memory; the buffer's last reader is done
      if (warp_key0 < n_keys) {
        // The warp's 16 keys straight from global memory (their rows lie within the readable
        // ones), kBatch column steps' fragments loaded before they are used, so that their
        // loads are in flight together.
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::fill_fragment(acc, 0.f);
        const Half* kw = keys + warp_key0 * dim;
        for (int c0 = 0; c0 < dim; c0 += 16 * kBatch) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, Half, wmma::col_major> b[kBatch];
#pragma unroll
          for (int u = 0; u < kBatch; ++u)
            if (c0 + 16 * u < dim) wmma::load_matrix_sync(b[u], kw + c0 + 16 * u, dim);  // (r, c) = key c, column r
#pragma unroll
          for (int u = 0; u < kBatch; ++u) {
            if (c0 + 16 * u < dim) {
              wmma::fragment<wmma::matrix_a, 16, 16, 16, Half, wmma::row_major> a;
              wmma::load_matrix_sync(a, s_q + c0 + 16 * u, ldq);
              wmma::mma_sync(acc, a, b[u], acc);
            }
          }
        }
        wmma::store_matrix_sync(scores + warp * 16, acc, kScoreLd, wmma::mem_row_major);
      }
      __syncthreads();
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int i = warp + h * kWarps;
        if (i >= nq) continue;  // the same for the whole warp
        const float4 f = *reinterpret_cast<const float4*>(scores + i * kScoreLd + lane * 4);
        const float s[4] = {f.x, f.y, f.z, f.w};
        uint32_t v[4];
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int col = lane * 4 + r;
          const uint32_t slice_col = static_cast<uint32_t>(tile * kTileKeys + col);
          v[r] = key0 + col < n_keys ? (words::score_key(rounded_bits(s[r], Half{})) << 16) | (0xFFFFu - slice_col)
                                     : 0u;
        }
        if (tile == 0) {
          // The first tile by a sort; lane l takes its l-th best word (element l: lane l / 4, r = l % 4).
          warp_sort_descending(v);
          uint32_t best = 0u;
#pragma unroll
          for (int r = 0; r < 4; ++r) {
            const uint32_t x = __shfl_sync(0xFFFFFFFFu, v[r], lane / 4);
            if ((lane & 3) == r) best = x;
          }
          list[h] = best;
        } else {
          insert_words(list[h], v, take);
        }
      }
      // The next tile stores into the other buffer; this one is overwritten only after the
      // barrier at the start of the tile after it.
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int i = warp + h * kWarps;
      if (i < nq && lane < take) {
        const uint32_t w = list[h];
        cand[(q0 + i) * m + slice * take + lane] =
            w ? words::pack(w >> 16, slice_key0 + (0xFFFFu - (w & 0xFFFFu))) : uint64_t{0};
      }
    }
    __syncthreads();  // s_q and s_norm are read above before the next group overwrites them
  }
}

// Tiles per slice: as few as still give about kTargetBlocks blocks and keep the candidates
// of a query within one selection segment (so that select_finish is one launch), at most
// kMaxTilesPerSlice.
int tiles_per_slice(int64_t n_keys, int64_t n_queries, int k) {
  const int64_t n_tiles = (n_keys + kTileKeys - 1) / kTileKeys;
  const int64_t n_groups = (n_queries + kTileQueries - 1) / kTileQueries;
  const int64_t fill = n_tiles * n_groups / kTargetBlocks;
  const int64_t one_segment = (n_tiles * k + kSegment - 1) / kSegment;
  return static_cast<int>(std::clamp<int64_t>(std::max(fill, one_segment), 1, kMaxTilesPerSlice));
}

size_t shared_bytes(int64_t dim) {
  return sizeof(uint16_t) * kTileQueries * (dim + 8) + sizeof(float) * 2 * kTileQueries * kScoreLd;
}

// The kernel's dynamic shared memory may exceed the 48 KiB default: allowed once per device
// and type.
template <typename Half>
cudaError_t allow_shared(int64_t dim) {
  constexpr int kMaxDevices = 64;
  static bool done[kMaxDevices] = {};
  int dev = 0;
  if (cudaError_t e = cudaGetDevice(&dev); e != cudaSuccess) return e;
  if (dev >= 0 && dev < kMaxDevices && done[dev]) return cudaSuccess;
  const cudaError_t e = cudaFuncSetAttribute(small_kernel<Half>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(shared_bytes(kSmallMaxDim)));
  if (e == cudaSuccess && dev >= 0 && dev < kMaxDevices) done[dev] = true;
  return e;
}

}  // namespace

bool small_search_fits(ScoreType type, int64_t dim, int k) {
  return type != ScoreType::f32 && dim >= 16 && dim <= kSmallMaxDim && dim % 16 == 0 && k >= 1 &&
         k <= kSmallMaxTake;
}

int64_t small_candidate_width(int64_t n_keys, int64_t n_queries, int k) {
  const int64_t per_slice = int64_t{tiles_per_slice(n_keys, n_queries, k)} * kTileKeys;
  return (n_keys + per_slice - 1) / per_slice * k;
}

cudaError_t small_candidates(ScoreType type, const float* queries, int64_t n_queries, int64_t dim,
                             const void* keys, int64_t n_keys, int k, float* unit, uint64_t* cand,
                             cudaStream_t stream) {
  if (!small_search_fits(type, dim, k)) return cudaErrorInvalidValue;
  if (n_queries == 0 || n_keys == 0) return cudaSuccess;
  const int tps = tiles_per_slice(n_keys, n_queries, k);
  const int64_t n_slices = (n_keys + int64_t{tps} * kTileKeys - 1) / (int64_t{tps} * kTileKeys);
  const int64_t n_groups = (n_queries + kTileQueries - 1) / kTileQueries;
  if (n_slices > 0x7FFFFFFF) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(n_slices), static_cast<unsigned>(std::min<int64_t>(n_groups, 65535)));
  const int64_t m = small_candidate_width(n_keys, n_queries, k);
  const size_t smem = shared_bytes(dim);
  const int d = static_cast<int>(dim);
  if (type == ScoreType::f16) {
    if (cudaError_t e = allow_shared<__half>(dim); e != cudaSuccess) return e;
    small_kernel<__half><<<grid, kThreads, smem, stream>>>(queries, n_queries, d, static_cast<const __half*>(keys),
                                                           n_keys, k, tps, unit, cand, m);
  } else {
    if (cudaError_t e = allow_shared<__nv_bfloat16>(dim); e != cudaSuccess) return e;
    small_kernel<__nv_bfloat16><<<grid, kThreads, smem, stream>>>(
        queries, n_queries, d, static_cast<const __nv_bfloat16*>(keys), n_keys, k, tps, unit, cand, m);
  }
  return cudaGetLastError();
}

}  // namespace semskip::cuda
