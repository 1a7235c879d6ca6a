#pragma once
// Row-wise top-k selection on the GPU for exact search (CUDA builds only; the torch:flat index
// calls it on a CUDA device, index/torch_flat_index.h).
//
// How it works. A search scores every stored key (one matmul), then needs the k best columns
// of each row of the [n_queries, n_keys] score matrix. Sorting or a general top-k reads that
// matrix several times; here one kernel reads it once:
//   - each block takes one segment of kSegment columns of one row, kItems per thread held in
//     registers as order-preserving unsigned keys;
//   - each warp sorts its lanes' maxima by shuffles; with c = ⌈k / 8⌉, the smallest of the 8
//     warps' c-th largest maxima is a lower bound of the segment's k-th largest score (8·c ≥ k
//     threads each hold a score ≥ it), so only scores at or above it can be among the k best:
//     usually a few dozen of the 8192 pass that test;
//   - those candidates go to shared memory, where each one's rank among them and the running
//     top-k is counted and the k best are placed by rank (no sort), in rounds when more than
//     the buffer holds (many equal scores), raising the bound after each round.
// A segment's k best leave as packed 64-bit words, (score key << 32) | ~column, so that one
// unsigned comparison orders by score and then by lower column; the next launch reduces the
// segments' words the same way until one segment per row remains, and the last launch writes
// scores (in the scores' type) and columns (or the ids a table maps them to). The result is
// exactly the k largest, sorted by decreasing score, ties by lower column.
//
// Everything runs on the given stream; nothing synchronises with the host. The functions
// return the CUDA error of the launches (cudaSuccess when all went well).

#include <cstdint>

#include <cuda_runtime_api.h>

namespace semskip::cuda {

enum class ScoreType : int { f32 = 0, f16 = 1, bf16 = 2 };

inline constexpr int kSelectThreads = 256;
inline constexpr int kSelectItems = 32;
inline constexpr int64_t kSegment = int64_t{kSelectThreads} * kSelectItems;  // 8192 columns
inline constexpr int kMaxSelect = 256;  // k ≤ kMaxSelect

// The exact stage of a reduced-precision search, done by the last launch of select_topk /
// select_finish: each row's k candidates (their columns are rows of keys: f16 or bf16, the
// scores' type, [*, dim] row-major) are rescored in float32 against the row's query (each key
// widened), and the `k` best of them (k ≤ the selection's k) written by decreasing similarity,
// ties by lower row: out_sims float32 [n_rows, k], out_ids int64 [n_rows, k] = row_ids[key row]
// (−inf / −1 for no candidate). out_scores / out_cols are then not written.
struct Rescore {
  const void* keys = nullptr;
  int64_t dim = 0;
  const float* queries = nullptr;  // float32 [n_rows, dim]
  int k = 0;
  const int64_t* row_ids = nullptr;
  float* out_sims = nullptr;
  int64_t* out_ids = nullptr;
};

// Bytes of workspace that select_topk / select_candidates need for n_rows rows of len
// columns, and that select_finish needs for n_rows rows of m candidate words.
int64_t select_workspace_bytes(int64_t n_rows, int64_t len, int k);
int64_t finish_workspace_bytes(int64_t n_rows, int64_t m, int k);

// select_candidates then select_finish in one: each row's k best scores, sorted descending,
// and their columns (or col_ids[column]); the outputs as for select_finish. Scores as for
// select_candidates (columns count from 0).
cudaError_t select_topk(ScoreType type, const void* scores, int64_t n_rows, int64_t len, int64_t ld,
                        int k, const int64_t* col_ids, void* out_scores, int64_t* out_cols,
                        void* workspace, cudaStream_t stream, const Rescore* rescore = nullptr);

// Scores: type, [n_rows, ld] row-major on the device, the first len columns of each row used
// (len < 2^31, ld ≥ len); 1 ≤ k ≤ kMaxSelect. Writes each row's k best as packed words to
// cand[row · cand_ld + cand_offset + j], j < k, sorted descending; their columns count from
// col_offset (a chunk's first key). A row with fewer than k columns pads with 0 (no
// candidate). col_offset + len must stay below 2^32.
cudaError_t select_candidates(ScoreType type, const void* scores, int64_t n_rows, int64_t len,
                              int64_t ld, int k, int64_t col_offset, uint64_t* cand,
                              int64_t cand_ld, int64_t cand_offset, void* workspace,
                              cudaStream_t stream);

// Packed words cand [n_rows, m] (row stride cand_ld), as select_candidates writes them: the k
// best of each row, sorted descending. out_scores: type, [n_rows, k], −inf where a row has
// fewer than k candidates; out_cols: int64 [n_rows, k], the column or, with col_ids (int64,
// indexed by column), col_ids[column]; −1 for no candidate. Either output may be null.
cudaError_t select_finish(ScoreType type, const uint64_t* cand, int64_t n_rows, int64_t m,
                          int64_t cand_ld, int k, const int64_t* col_ids, void* out_scores,
                          int64_t* out_cols, void* workspace, cudaStream_t stream,
                          const Rescore* rescore = nullptr);

// Rows of x (float32 [n_rows, dim], row-major) divided by their L2 norm (clamped below at the
// smallest normal float, so a zero row stays zero), to out_f32 (float32, may be null) and
// out_half (type f16 or bf16, may be null), in one pass.
cudaError_t normalize_rows(const float* x, int64_t n_rows, int64_t dim, float* out_f32,
                           ScoreType half_type, void* out_half, cudaStream_t stream);

}  // namespace semskip::cuda
