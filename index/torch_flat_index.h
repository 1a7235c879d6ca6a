#pragma once
// TorchFlatIndex: "torch:flat[|device=cpu|cuda|cuda:<i>][|dtype=fp32|fp16|bf16][|chunk=<rows>]
// [|group=<rows>][|fused=auto|0|1]". Exact search written as matmul + top-k in LibTorch, so it runs wherever
// LibTorch does: the GPU index of choice where FAISS has no GPU build. The stored keys are
// scored `chunk` rows at a time and the running top-k merged, so one search holds at most
// [n_queries, chunk] similarities however large the index grows.
//
// dtype=fp32 (the default) scores in float32 and agrees with the other exact backends to 1e-5.
// On GPUs the scores are float32 matmuls under LibTorch's TF32 setting, off for matmul by
// default since 1.12.
//
// dtype=fp16 or bf16 stores the keys in that type (half the memory) and runs the tensor-core
// matmul. Its scores are rounded to the type (fp16: ~2.4e-4 at cosine 0.5), too coarse to
// rank neighbours whose cosines differ by less, so the search selects in two stages:
//   1. per chunk, the [n, chunk] reduced-precision scores are cut into groups of `group`
//      consecutive rows (default 64); the best group maxima pick the candidate groups, whose
//      scores alone are ranked (the full-width top-k is the slow part of matmul + top-k, and
//      the k' best rows lie in the k' groups of highest maximum, so this loses nothing);
//      without an explicit `group`, chunks narrower than kGroupedMinRows rows take the plain
//      top-k of their scores;
//   2. the k' = k + kRescoreSlack best candidates are rescored in float32 (the stored key,
//      widened, against the float32 query) and the top k of those returned.
// Similarities are then exact for the stored (rounded) keys: the difference to float32
// search is the key's rounding (≲ 1e-3 for bf16, ≲ 1e-4 for fp16 at d ≥ 32), and a true
// neighbour is lost only if rounding pushes it below the k'-th candidate. Without `chunk`,
// reduced-precision chunks are sized so that one chunk's scores take at most
// kScoreBudgetBytes. A dtype this LibTorch cannot multiply on this device (fp16 on CPU before
// LibTorch 2.x) is refused when the index is made.
//
// On a CUDA device (CUDA builds) the selection is index/cuda/select_topk.h instead: one kernel
// reads each chunk's scores once and keeps each row's k best (fp32) or k' best (fp16/bf16),
// with no group stage; stage 2 is one kernel too, and the queries are normalised (and rounded
// to dtype) by one: a search is a matmul and four launches. The results are the same k best
// (ties may pick another of equal scores). A half-precision search for k ≤ 16 (k' ≤ 32) whose
// candidates fit one selection segment (for k = 10, up to about 640k keys;
// d ≤ 1024, a multiple of 16) is two launches instead: index/cuda/small_search.h normalises,
// scores with tensor cores and keeps each slice of keys' k' best in one, and the selection's
// last launch reduces and rescores them. fused=auto (the default) takes it where it measured
// faster than the matmul path (searches_small says where), fused=1 wherever it fits, fused=0
// never.
//
// Lookup cost: flat, 2·d·N per query (index/lookup_cost.h); the rescoring of stage 2
// (2·d·k' per query) is not charged, like the top-k selection. Removal moves the last rows
// into the holes, so storage stays dense and removal costs O(removed) rows.

#include <cstdint>

#include "index/row_table.h"
#include "index/vector_index.h"

namespace semskip {

class IndexDescriptor;
#ifdef SEMSKIP_INDEX_CUDA_KERNELS
namespace cuda {
struct Rescore;
}
#endif

class TorchFlatIndex final : public VectorIndex {
 public:
  static constexpr int64_t kDefaultChunk = 65536;      // float32 chunks
  static constexpr int64_t kDefaultGroup = 64;
  static constexpr int64_t kRescoreSlack = 16;          // extra candidates rescored in float32
  // Narrower chunks take the plain top-k: there it is cheap and the group stage's extra
  // kernel launches are what a small search's latency is made of.
  static constexpr int64_t kGroupedMinRows = 32768;
  static constexpr int64_t kScoreBudgetBytes = int64_t{1} << 30;  // reduced-precision chunk
  // Storage grows in whole multiples of this many rows, so a chunk whose length is rounded up
  // to a whole group still lies inside the buffer; group must divide it (a power of two).
  static constexpr int64_t kRowAlign = 1024;

  // semskip::Error naming the descriptor for a body other than "flat", an unknown
  // parameter, a device that is not cpu/cuda, or cuda without a CUDA build and GPU.
  TorchFlatIndex(IndexDescriptor desc, int64_t dim);

  at::Device device() const override { return device_; }
  int64_t lookup_flops(int64_t n_queries) const override;
  int64_t memory_bytes() const override;
  // Rows scored at once: the descriptor's chunk, else kDefaultChunk for float32; for
  // reduced precision 0 until a search sizes it from kScoreBudgetBytes.
  int64_t chunk() const { return chunk_; }
  at::ScalarType key_dtype() const { return dtype_; }

 protected:
  void do_add(int64_t n, const float* keys_unit, const int64_t* ids) override;
  void do_search(int64_t n, const float* queries_unit, int64_t k, float* similarities,
                 int64_t* ids) const override;
  int64_t do_remove(int64_t n, const int64_t* ids) override;
  void do_add_tensor(const at::Tensor& keys, const at::Tensor& ids_host) override;
  SearchResult do_search_tensor(const at::Tensor& queries, int64_t k) const override;
  bool search_marks_missing() const override { return true; }

 private:
  // keys_unit: float32 [n, dim] on device_; ids: int64 [n] on the host.
  void append(const at::Tensor& keys_unit, const int64_t* ids);
  // queries_unit: float32 [n, dim] on device_. Results on device_, padded to k.
  SearchResult search_unit(const at::Tensor& queries_unit, int64_t k) const;
  // Two-stage search of the reduced-precision keys (the class comment).
  SearchResult search_reduced(const at::Tensor& queries_unit, int64_t k) const;
  // Stage 2: the candidate rows (int64 [n, k'] of keys_) rescored in float32, the k best.
  SearchResult rescore(const at::Tensor& queries_unit, const at::Tensor& cand_rows, int64_t k) const;
  // Candidates a search for k results selects per query: k' = k + kRescoreSlack in reduced
  // precision, k in float32, at most the stored rows.
  int64_t selection_width(int64_t k) const;
  // Rows scored at once by a reduced-precision search of n queries.
  int64_t reduced_chunk(int64_t n_queries) const;
#ifdef SEMSKIP_INDEX_CUDA_KERNELS
  // Whether a search for k results takes the GPU selection kernels (on CUDA, k or k' ≤ 256).
  bool selects_on_gpu(int64_t k) const;
  // Rows of keys_ scored at once by a GPU search of n queries.
  int64_t gpu_chunk(int64_t n_queries) const;
  // Row stride of the scores of len keys from row start: whole 16-byte vectors, within keys_.
  int64_t score_stride(int64_t start, int64_t len) const;
  // The search with the GPU selection kernels; queries_reduced: the queries in dtype_ when
  // already converted (else undefined). arena (a DeviceArena of the .cpp, or null): where a
  // one-chunk search takes its buffers from.
  SearchResult search_cuda(const at::Tensor& queries_unit, const at::Tensor& queries_reduced, int64_t k,
                           void* arena = nullptr) const;
  // The float32 rescoring of the selection's last launch (index/cuda/select_topk.h): the
  // stored keys against queries_unit (float32 [n, dim], contiguous), the sims.size(1) best
  // into sims (float32) and ids (int64), both [n, found] on device_.
  cuda::Rescore rescore_into(const at::Tensor& queries_unit, at::Tensor& sims, at::Tensor& ids) const;
  // Whether a search of n queries for k results takes search_small (the class comment).
  bool searches_small(int64_t n, int64_t k) const;
  // queries: float32 [n, dim], not normalised. The two-launch search; results on device_.
  SearchResult search_small(const at::Tensor& queries, int64_t k) const;
#endif
  // float32 [n, dim] on device_; on CUDA also, where reduced is given, the rows in dtype_;
  // arena (CUDA, or null) as search_cuda's.
  at::Tensor normalized(const at::Tensor& x, at::Tensor* reduced = nullptr, void* arena = nullptr) const;

  at::Device device_;
  at::ScalarType dtype_;
  int64_t chunk_;
  int64_t group_;                      // rows per group of stage 1 (reduced precision), ≤ kRowAlign
  bool group_given_ = false;           // group= in the descriptor: grouped at every chunk width
  enum class Fused { kAuto, kOn, kOff };
  Fused fused_ = Fused::kAuto;         // fused=: small half-precision GPU searches in two launches
  at::Tensor keys_;                    // dtype_ [capacity, dim] on device_; rows [0, n_rows) used;
                                       // capacity a multiple of kRowAlign
  at::Tensor row_ids_;                 // int64 [capacity] on device_; id of each row
  RowTable rows_;                      // host mirror of row_ids_: id <-> row
};

}  // namespace semskip
