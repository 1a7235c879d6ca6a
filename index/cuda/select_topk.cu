// Row-wise top-k selection and row normalisation on the GPU (the header says how it works).
#include "index/cuda/select_topk.h"

#include "index/cuda/score_words.cuh"

#include <cfloat>
#include <cmath>
#include <utility>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace semskip::cuda {

namespace {

constexpr int kThreads = kSelectThreads;
constexpr int kItems = kSelectItems;
constexpr int kBuffer = 1024;  // shared candidate words of one round (8 KiB)

using words::pack;
using words::score_key;

__device__ __forceinline__ uint32_t key_bits32(uint32_t key) {
  return (key & 0x80000000u) ? key ^ 0x80000000u : ~key;
}
__device__ __forceinline__ uint16_t key_bits16(uint32_t key) {
  return static_cast<uint16_t>((key & 0x8000u) ? key ^ 0x8000u : (~key & 0xFFFFu));
}

// Position inside the segment of item i of thread t: vectors of kVec consecutive elements,
// consecutive threads on consecutive vectors (coalesced).
template <int kVec>
__device__ __forceinline__ int item_position(int t, int i) {
  return ((i / kVec) * kThreads + t) * kVec + (i % kVec);
}

// The elements of one row: scores (Bits = uint32_t for fp32, uint16_t for fp16/bf16) or
// packed words of an earlier launch (uint64_t).
template <typename Bits>
struct Rows {
  const Bits* data;
  int64_t ld;          // elements between rows
  int64_t len;         // elements per row
  int64_t col_offset;  // added to a score's column (scores only)
};

template <typename Bits, int kVec>
__device__ void load_keys(const Bits* seg, int64_t m, int t, uint32_t (&key)[kItems]) {
  static_assert(kVec == 1 || kVec * sizeof(Bits) == 16, "vector loads are 16 bytes");
#pragma unroll
  for (int v = 0; v < kItems / kVec; ++v) {
    const int64_t j0 = (static_cast<int64_t>(v) * kThreads + t) * kVec;
    union {
      uint4 vec;
      Bits b[kVec];
    } u;
    if constexpr (kVec > 1) {
      if (j0 + kVec <= m) {
        u.vec = __ldcs(reinterpret_cast<const uint4*>(seg + j0));
      } else {
#pragma unroll
        for (int e = 0; e < kVec; ++e) u.b[e] = j0 + e < m ? seg[j0 + e] : Bits{0};
      }
    } else {
      u.b[0] = j0 < m ? seg[j0] : Bits{0};
    }
#pragma unroll
    for (int e = 0; e < kVec; ++e) key[v * kVec + e] = j0 + e < m ? score_key(u.b[e]) : 0u;
  }
}

// Where a block's k best go: packed words (cand[row · ld + offset + segment · k + j]) or,
// for the last launch, scores and columns.
struct Dest {
  uint64_t* cand = nullptr;
  int64_t cand_ld = 0;
  int64_t cand_offset = 0;
  ScoreType type = ScoreType::f32;
  void* scores = nullptr;
  int64_t* cols = nullptr;
  const int64_t* col_ids = nullptr;
  Rescore rescore;  // used by the last launch when rescore.keys is set
};

__device__ __forceinline__ float widen(__half h) { return __half2float(h); }
__device__ __forceinline__ float widen(__nv_bfloat16 h) { return __bfloat162float(h); }

// A warp's float32 dot products of up to kDots key rows (Half [*, dim]; rows[u] < 0: none)
// with the query q, each to every lane; the rows' loads are issued together, so that their
// latencies overlap.
constexpr int kDots = 4;
template <typename Half>
__device__ void warp_dots(const Half* keys, const int64_t (&rows)[kDots], int64_t dim, const float* q,
                          float (&out)[kDots]) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  float acc[kDots] = {};
  if (dim % 8 == 0 && reinterpret_cast<uintptr_t>(keys) % 16 == 0) {
    // 8 elements (16 bytes) per lane, row and step.
    for (int64_t j = 8 * lane; j < dim; j += 8 * 32) {
      union {
        uint4 v;
        Half h[8];
      } u[kDots];
#pragma unroll
      for (int d = 0; d < kDots; ++d)
        u[d].v = rows[d] >= 0 ? *reinterpret_cast<const uint4*>(keys + rows[d] * dim + j) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int d = 0; d < kDots; ++d) {
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[d] += widen(u[d].h[e]) * q[j + e];
      }
    }
  } else {
    for (int64_t j = lane; j < dim; j += 32) {
#pragma unroll
      for (int d = 0; d < kDots; ++d)
        if (rows[d] >= 0) acc[d] += widen(keys[rows[d] * dim + j]) * q[j];
    }
  }
#pragma unroll
  for (int d = 0; d < kDots; ++d) {
    for (int off = 16; off > 0; off >>= 1) acc[d] += __shfl_xor_sync(0xFFFFFFFFu, acc[d], off);
    out[d] = acc[d];
  }
}

// The last launch of a rescoring search: the row's k candidate words (s_words, columns = key
// rows) scored exactly, the r.k best written by rank (similarity descending, then lower row).
__device__ void rescore_row(const Rescore& r, ScoreType key_type, int64_t row, const uint64_t* s_words, int k,
                            float* s_exact) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  constexpr int kWarpsHere = kThreads / 32;
  const float* q = r.queries + row * r.dim;
  // Each warp candidates warp, warp + 8, … kDots at a time.
  for (int c0 = warp; c0 < k; c0 += kWarpsHere * kDots) {
    int64_t rows[kDots];
#pragma unroll
    for (int d = 0; d < kDots; ++d) {
      const int c = c0 + d * kWarpsHere;
      const uint64_t w = c < k ? s_words[c] : uint64_t{0};
      rows[d] = w ? static_cast<int64_t>(0xFFFFFFFFu - static_cast<uint32_t>(w)) : int64_t{-1};
    }
    float e[kDots];
    if (key_type == ScoreType::f16)
      warp_dots(static_cast<const __half*>(r.keys), rows, r.dim, q, e);
    else
      warp_dots(static_cast<const __nv_bfloat16*>(r.keys), rows, r.dim, q, e);
#pragma unroll
    for (int d = 0; d < kDots; ++d) {
      const int c = c0 + d * kWarpsHere;
      if (lane == 0 && c < k) s_exact[c] = rows[d] >= 0 ? e[d] : -INFINITY;
    }
  }
  __syncthreads();
  for (int c = static_cast<int>(threadIdx.x); c < k; c += kThreads) {
    const float ec = s_exact[c];
    const uint32_t rc = 0xFFFFFFFFu - static_cast<uint32_t>(s_words[c]);  // the key row, or ~0 for none
    int rank = 0;
    for (int j = 0; j < k; ++j) {
      const uint32_t rj = 0xFFFFFFFFu - static_cast<uint32_t>(s_words[j]);
      rank += s_exact[j] > ec || (s_exact[j] == ec && rj < rc);
    }
    if (rank < r.k) {
      const int64_t out = row * r.k + rank;
      r.out_sims[out] = ec;
      r.out_ids[out] = s_words[c] ? r.row_ids[rc] : int64_t{-1};
    }
  }
}

// The c-th largest (1 ≤ c ≤ 32) of the values of a warp's lanes, to every lane: a bitonic sort
// across the lanes by shuffles, no shared memory and no block barrier.
__device__ __forceinline__ uint32_t warp_cth_largest(uint32_t v, int c) {
  const int lane = static_cast<int>(threadIdx.x) & 31;
#pragma unroll
  for (int size = 2; size <= 32; size <<= 1) {
#pragma unroll
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      const uint32_t other = __shfl_xor_sync(0xFFFFFFFFu, v, stride);
      // The lower lane of a pair keeps the larger value in a decreasing run, the smaller in an
      // increasing one; the last run (size 32) decreases.
      const bool lower = (lane & stride) == 0;
      const bool decreasing = (lane & size) == 0;
      v = (lower == decreasing) ? max(v, other) : min(v, other);
    }
  }
  return __shfl_sync(0xFFFFFFFFu, v, c - 1);
}

template <typename Bits, int kVec, bool kFinal>
__global__ void __launch_bounds__(kThreads) select_kernel(Rows<Bits> src, int64_t n_rows, int k, Dest dst) {
  constexpr int kWarps = kThreads / 32;
  __shared__ uint64_t s_top[2][kMaxSelect];  // the running top-k (sorted) and the next one
  __shared__ uint64_t s_buf[kBuffer];        // one round's candidates
  __shared__ uint32_t s_warp[kWarps];
  __shared__ int s_count;
  __shared__ float s_exact[kFinal ? kMaxSelect : 1];  // the rescored similarities (last launch)
  const int t = static_cast<int>(threadIdx.x);
  const int64_t seg = blockIdx.x;
  const int64_t seg_begin = seg * kSegment;
  const int64_t m = min(static_cast<int64_t>(kSegment), src.len - seg_begin);
  for (int64_t row = blockIdx.y; row < n_rows; row += gridDim.y) {
    const Bits* seg_ptr = src.data + row * src.ld + seg_begin;
    uint32_t key[kItems];
    load_keys<Bits, kVec>(seg_ptr, m, t, key);
    uint32_t mx = 0;
#pragma unroll
    for (int i = 0; i < kItems; ++i) mx = max(mx, key[i]);
    // Each warp has c = ⌈k / kWarps⌉ lanes whose maximum is at least its c-th largest maximum,
    // so at least kWarps·c ≥ k scores are ≥ the smallest of the warps' values: a lower bound
    // of the k-th best score.
    const uint32_t warp_bound = warp_cth_largest(mx, (k + kWarps - 1) / kWarps);
    if ((t & 31) == 0) s_warp[t / 32] = warp_bound;
    for (int j = t; j < k; j += kThreads) s_top[0][j] = 0;
    if (t == 0) s_count = 0;
    __syncthreads();
    uint32_t bound = s_warp[0];
#pragma unroll
    for (int w = 1; w < kWarps; ++w) bound = min(bound, s_warp[w]);
    bound = max(bound, 1u);
    int cur = 0;     // s_top[cur] holds the best so far
    int cursor = 0;  // this thread's items before cursor are placed
    for (;;) {
      bool full = false;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        if (!full && i >= cursor && key[i] >= bound) {
          const int slot = atomicAdd(&s_count, 1);
          if (slot < kBuffer) {
            uint64_t word;
            if constexpr (sizeof(Bits) == 8) {
              word = seg_ptr[item_position<kVec>(t, i)];
            } else {
              word = pack(key[i], src.col_offset + seg_begin + item_position<kVec>(t, i));
            }
            s_buf[slot] = word;
          } else {
            full = true;
            cursor = i;
          }
        }
      }
      if (!full) cursor = kItems;
      for (int j = t; j < k; j += kThreads) s_top[cur ^ 1][j] = 0;
      __syncthreads();
      // The words are distinct (distinct columns), so each word's rank in the union of the best
      // so far and this round's candidates is its place; those ranked below k are the new best.
      const int n = min(s_count, kBuffer);
      for (int e = t; e < k + n; e += kThreads) {
        const uint64_t w = e < k ? s_top[cur][e] : s_buf[e - k];
        if (w == 0) continue;
        int rank = 0;
        for (int j = 0; j < k; ++j) rank += s_top[cur][j] > w;
        for (int j = 0; j < n; ++j) rank += s_buf[j] > w;
        if (rank < k) s_top[cur ^ 1][rank] = w;
      }
      cur ^= 1;
      __syncthreads();
      if (t == 0) s_count = 0;
      bound = max(bound, score_key(s_top[cur][k - 1]));
      if (!__syncthreads_or(full)) break;
    }
    if constexpr (kFinal) {
      if (dst.rescore.keys) {
        rescore_row(dst.rescore, dst.type, row, s_top[cur], k, s_exact);
        __syncthreads();
        continue;
      }
    }
    for (int j = t; j < k; j += kThreads) {
      const uint64_t w = s_top[cur][j];
      if constexpr (kFinal) {
        const int64_t out = row * k + j;
        const uint32_t wkey = score_key(w);
        if (dst.scores) {
          if (dst.type == ScoreType::f32) {
            static_cast<uint32_t*>(dst.scores)[out] = w ? key_bits32(wkey) : 0xFF800000u;  // −inf
          } else {
            const uint16_t neg_inf = dst.type == ScoreType::f16 ? 0xFC00u : 0xFF80u;
            static_cast<uint16_t*>(dst.scores)[out] = w ? key_bits16(wkey) : neg_inf;
          }
        }
        if (dst.cols) {
          int64_t col = -1;
          if (w) {
            col = static_cast<int64_t>(0xFFFFFFFFu - static_cast<uint32_t>(w));
            if (dst.col_ids) col = dst.col_ids[col];
          }
          dst.cols[out] = col;
        }
      } else {
        dst.cand[row * dst.cand_ld + dst.cand_offset + seg * k + j] = w;
      }
    }
    __syncthreads();  // s_top is read above before the next row overwrites it
  }
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <typename Bits, bool kFinal>
cudaError_t launch(const Rows<Bits>& src, int64_t n_rows, int k, const Dest& dst, cudaStream_t stream) {
  const int64_t n_seg = ceil_div(src.len, kSegment);
  if (n_rows == 0 || n_seg == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(n_seg), static_cast<unsigned>(std::min<int64_t>(n_rows, 65535)));
  constexpr int kVec = 16 / static_cast<int>(sizeof(Bits));
  const bool aligned = reinterpret_cast<uintptr_t>(src.data) % 16 == 0 &&
                       (src.ld * static_cast<int64_t>(sizeof(Bits))) % 16 == 0;
  if (aligned) {
    select_kernel<Bits, kVec, kFinal><<<grid, kThreads, 0, stream>>>(src, n_rows, k, dst);
  } else {
    select_kernel<Bits, 1, kFinal><<<grid, kThreads, 0, stream>>>(src, n_rows, k, dst);
  }
  return cudaGetLastError();
}

// Reduces packed words [n_rows, m] (row stride ld) by segments until one segment per row
// remains, ping-ponging through the workspace; returns the rows left (data, ld, len).
cudaError_t reduce_words(Rows<uint64_t>& words, int64_t n_rows, int k, uint64_t* ws, cudaStream_t stream) {
  uint64_t* buf[2] = {ws, ws + n_rows * ceil_div(words.len, kSegment) * k};
  int which = 0;
  while (words.len > kSegment) {
    const int64_t n_seg = ceil_div(words.len, kSegment);
    Dest d;
    d.cand = buf[which];
    d.cand_ld = n_seg * k;
    if (cudaError_t e = launch<uint64_t, false>(words, n_rows, k, d, stream); e != cudaSuccess) return e;
    words = Rows<uint64_t>{buf[which], n_seg * k, n_seg * k, 0};
    which ^= 1;
  }
  return cudaSuccess;
}

template <typename Bits>
cudaError_t candidates_of(const Bits* scores, int64_t n_rows, int64_t len, int64_t ld, int k,
                          int64_t col_offset, uint64_t* cand, int64_t cand_ld,
                          int64_t cand_offset, void* workspace, cudaStream_t stream) {
  const Rows<Bits> rows{scores, ld, len, col_offset};
  const int64_t n_seg = ceil_div(len, kSegment);
  Dest out;
  out.cand = cand;
  out.cand_ld = cand_ld;
  out.cand_offset = cand_offset;
  if (n_seg <= 1) return launch<Bits, false>(rows, n_rows, k, out, stream);
  // Segments' words to the workspace, reduced there, the last launch into cand.
  auto* ws = static_cast<uint64_t*>(workspace);
  const int64_t m = n_seg * k;
  Dest first;
  first.cand = ws;
  first.cand_ld = m;
  if (cudaError_t e = launch<Bits, false>(rows, n_rows, k, first, stream); e != cudaSuccess) return e;
  Rows<uint64_t> words{ws, m, m, 0};
  if (cudaError_t e = reduce_words(words, n_rows, k, ws + n_rows * m, stream); e != cudaSuccess) return e;
  return launch<uint64_t, false>(words, n_rows, k, out, stream);
}

bool valid_selection(ScoreType type, int k, const Rescore* rescore) {
  return k >= 1 && k <= kMaxSelect && (!rescore || (type != ScoreType::f32 && rescore->k >= 1 && rescore->k <= k));
}

// The last launch's destination: scores and columns (or ids), or the rescored results.
Dest final_dest(ScoreType type, void* out_scores, int64_t* out_cols, const int64_t* col_ids, const Rescore* rescore) {
  Dest out;
  out.type = type;
  out.scores = out_scores;
  out.cols = out_cols;
  out.col_ids = col_ids;
  if (rescore) out.rescore = *rescore;
  return out;
}

}  // namespace

int64_t select_workspace_bytes(int64_t n_rows, int64_t len, int k) {
  // The segments' words, then reduce_words' two buffers for them.
  const int64_t m = ceil_div(len, kSegment) * k;
  return 8 * n_rows * (m + 2 * ceil_div(m, kSegment) * k);
}

int64_t finish_workspace_bytes(int64_t n_rows, int64_t m, int k) {
  return 8 * n_rows * 2 * ceil_div(m, kSegment) * k;
}

cudaError_t select_candidates(ScoreType type, const void* scores, int64_t n_rows, int64_t len,
                              int64_t ld, int k, int64_t col_offset, uint64_t* cand,
                              int64_t cand_ld, int64_t cand_offset, void* workspace,
                              cudaStream_t stream) {
  if (!valid_selection(type, k, nullptr)) return cudaErrorInvalidValue;
  if (type == ScoreType::f32)
    return candidates_of(static_cast<const uint32_t*>(scores), n_rows, len, ld, k, col_offset, cand,
                         cand_ld, cand_offset, workspace, stream);
  return candidates_of(static_cast<const uint16_t*>(scores), n_rows, len, ld, k, col_offset, cand,
                       cand_ld, cand_offset, workspace, stream);
}

cudaError_t select_finish(ScoreType type, const uint64_t* cand, int64_t n_rows, int64_t m,
                          int64_t cand_ld, int k, const int64_t* col_ids, void* out_scores,
                          int64_t* out_cols, void* workspace, cudaStream_t stream, const Rescore* rescore) {
  if (!valid_selection(type, k, rescore)) return cudaErrorInvalidValue;
  Rows<uint64_t> words{cand, cand_ld, m, 0};
  if (cudaError_t e = reduce_words(words, n_rows, k, static_cast<uint64_t*>(workspace), stream);
      e != cudaSuccess)
    return e;
  return launch<uint64_t, true>(words, n_rows, k, final_dest(type, out_scores, out_cols, col_ids, rescore), stream);
}

cudaError_t select_topk(ScoreType type, const void* scores, int64_t n_rows, int64_t len, int64_t ld,
                        int k, const int64_t* col_ids, void* out_scores, int64_t* out_cols,
                        void* workspace, cudaStream_t stream, const Rescore* rescore) {
  if (!valid_selection(type, k, rescore)) return cudaErrorInvalidValue;
  if (len <= kSegment) {
    // One segment per row: the last launch reads the scores themselves.
    const Dest out = final_dest(type, out_scores, out_cols, col_ids, rescore);
    if (type == ScoreType::f32)
      return launch<uint32_t, true>(Rows<uint32_t>{static_cast<const uint32_t*>(scores), ld, len, 0},
                                    n_rows, k, out, stream);
    return launch<uint16_t, true>(Rows<uint16_t>{static_cast<const uint16_t*>(scores), ld, len, 0},
                                  n_rows, k, out, stream);
  }
  // The segments' words to the workspace, then reduced and written out by select_finish.
  const int64_t m = ceil_div(len, kSegment) * k;
  auto* ws = static_cast<uint64_t*>(workspace);
  Dest first;
  first.cand = ws;
  first.cand_ld = m;
  const cudaError_t e =
      type == ScoreType::f32
          ? launch<uint32_t, false>(Rows<uint32_t>{static_cast<const uint32_t*>(scores), ld, len, 0},
                                    n_rows, k, first, stream)
          : launch<uint16_t, false>(Rows<uint16_t>{static_cast<const uint16_t*>(scores), ld, len, 0},
                                    n_rows, k, first, stream);
  if (e != cudaSuccess) return e;
  return select_finish(type, ws, n_rows, m, m, k, col_ids, out_scores, out_cols, ws + n_rows * m, stream,
                       rescore);
}

namespace {

__global__ void __launch_bounds__(kThreads) normalize_kernel(const float* x, int64_t dim, float* out_f32,
                                                            ScoreType half_type, void* out_half) {
  __shared__ float s_part[kThreads / 32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * dim;
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) sum += xr[j] * xr[j];
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, off);
  if (threadIdx.x % 32 == 0) s_part[threadIdx.x / 32] = sum;
  __syncthreads();
  float total = 0.f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) total += s_part[w];
  const float norm = fmaxf(sqrtf(total), FLT_MIN);
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) {
    const float v = xr[j] / norm;
    if (out_f32) out_f32[row * dim + j] = v;
    if (out_half) {
      if (half_type == ScoreType::f16)
        static_cast<__half*>(out_half)[row * dim + j] = __float2half_rn(v);
      else
        static_cast<__nv_bfloat16*>(out_half)[row * dim + j] = __float2bfloat16_rn(v);
    }
  }
}

}  // namespace

cudaError_t normalize_rows(const float* x, int64_t n_rows, int64_t dim, float* out_f32,
                           ScoreType half_type, void* out_half, cudaStream_t stream) {
  if (n_rows == 0) return cudaSuccess;
  if (out_half && half_type == ScoreType::f32) return cudaErrorInvalidValue;
  normalize_kernel<<<static_cast<unsigned>(n_rows), kThreads, 0, stream>>>(x, dim, out_f32, half_type,
                                                                          out_half);
  return cudaGetLastError();
}

}  // namespace semskip::cuda
