#pragma once
// The first stage of a small half-precision exact search in one launch (CUDA builds only; the
// torch:flat index uses it on a CUDA device with dtype=fp16|bf16, index/torch_flat_index.h).
//
// Why. At the sizes of a semantic-cache step (16k keys, 128 queries) the matmul path of an
// exact search is four launches in a row (normalisation, the matmul through LibTorch and
// cuBLAS, two selection launches), each small enough to leave most of the GPU idle and each
// paying its own dispatch and ramp (bench/bench_small_search.cpp times the stages). Here the
// normalisation, the scores and each slice's best candidates are one kernel; select_finish
// (index/cuda/select_topk.h) then reduces the slices' candidates and rescores the best in
// float32, so a search is two launches.
//
// How it works. Block (x, y) takes slice x of the keys (a few tiles of kTileKeys keys: as few
// as still give about 256 blocks, so that other blocks' work hides each one's load latency,
// and keep a query's candidates within one selection segment, up to 16)
// and the group of kTileQueries queries starting at y·kTileQueries. It
//   - normalises the queries (each warp two: the norm by a lane-strided sum and shuffles, the
//     division in float32), rounds them to the keys' type into shared memory and, in the blocks
//     of slice 0, writes them in float32 for the rescoring;
//   - per tile, lets each of its 8 warps accumulate the scores of its 16 keys with tensor cores
//     (WMMA 16×16×16, float32 accumulation), the keys' fragments read straight from global
//     memory 8 column steps at a time (their loads in flight together), the queries' from
//     shared memory; each score is rounded to the keys' type, as the matmul's output would
//     be, and becomes a 32-bit word (its key above the complement of its column in the
//     slice), so that larger words are better scores, ties by lower column;
//   - keeps, per query, the running k best words in one warp, one per lane in decreasing
//     order: the first tile's 128 words sorted by a bitonic network over the lanes, each later
//     word that beats the k-th best inserted in place (ballot, shuffles);
//   - writes the k best as packed words (index/cuda/score_words.cuh), decreasing; keys past
//     n_keys give 0 (no candidate).
// Everything runs on the given stream; nothing synchronises with the host.

#include <cstdint>

#include <cuda_runtime_api.h>

#include "index/cuda/select_topk.h"

namespace semskip::cuda {

inline constexpr int kTileKeys = 128;
inline constexpr int kTileQueries = 16;
inline constexpr int64_t kSmallMaxDim = 1024;  // wider keys take the matmul path
inline constexpr int kSmallMaxTake = 32;        // candidates per query and slice: one per lane

// Whether small_candidates takes this search: keys fp16 or bf16, dim a multiple of 16 in
// 16..kSmallMaxDim, 1 ≤ k ≤ kSmallMaxTake.
bool small_search_fits(ScoreType type, int64_t dim, int k);

// Candidate words per query (m): k per slice of the keys, the slices sized for n_queries.
int64_t small_candidate_width(int64_t n_keys, int64_t n_queries, int k);

// queries: float32 [n_queries, dim] (not normalised); keys: type, [*, dim] row-major with at
// least ⌈n_keys / 16⌉·16 rows readable (the rows past n_keys are read and not selected).
// Writes cand[q · m + slice · k + j], j < k, for m = small_candidate_width(n_keys, n_queries, k):
// each slice's k best, decreasing, columns counted from 0 (a slice with fewer keys pads with
// 0); and, when unit is not null, the normalised queries in float32 [n_queries, dim]. Returns
// cudaErrorInvalidValue where small_search_fits is false.
cudaError_t small_candidates(ScoreType type, const float* queries, int64_t n_queries, int64_t dim,
                             const void* keys, int64_t n_keys, int k, float* unit, uint64_t* cand,
                             cudaStream_t stream);

}  // namespace semskip::cuda
