#pragma once
// TorchFlatIndex: "torch:flat[|device=cpu|cuda|cuda:<i>][|chunk=<rows>]". Exact search written
// as matmul + top-k in LibTorch, so it runs wherever LibTorch does: the GPU index of choice
// where FAISS has no GPU build. The stored keys are scored `chunk` rows at a time (default
// 65536) and the running top-k merged, so one search holds at most [n_queries, chunk]
// similarities however large the index grows.
//
// Lookup cost: flat, 2·d·N per query (index/lookup_cost.h). Removal moves the last rows into
// the holes, so storage stays dense and removal costs O(removed) rows. On GPUs the scores are
// float32 matmuls under LibTorch's TF32 setting, off for matmul by default since 1.12; turning
// it on trades the 1e-5 agreement with the other exact backends for speed.

#include <cstdint>

#include "index/row_table.h"
#include "index/vector_index.h"

namespace semskip {

class IndexDescriptor;

class TorchFlatIndex final : public VectorIndex {
 public:
  static constexpr int64_t kDefaultChunk = 65536;

  // semskip::Error naming the descriptor for a body other than "flat", an unknown
  // parameter, a device that is not cpu/cuda, or cuda without a CUDA build and GPU.
  TorchFlatIndex(IndexDescriptor desc, int64_t dim);

  at::Device device() const override { return device_; }
  int64_t lookup_flops(int64_t n_queries) const override;
  int64_t memory_bytes() const override;
  int64_t chunk() const { return chunk_; }

 protected:
  void do_add(int64_t n, const float* keys_unit, const int64_t* ids) override;
  void do_search(int64_t n, const float* queries_unit, int64_t k, float* similarities,
                 int64_t* ids) const override;
  int64_t do_remove(int64_t n, const int64_t* ids) override;
  void do_add_tensor(const at::Tensor& keys, const at::Tensor& ids_host) override;
  SearchResult do_search_tensor(const at::Tensor& queries, int64_t k) const override;

 private:
  // keys_unit: float32 [n, dim] on device_; ids: int64 [n] on the host.
  void append(const at::Tensor& keys_unit, const int64_t* ids);
  // queries_unit: float32 [n, dim] on device_. Results on device_, padded to k.
  SearchResult search_unit(const at::Tensor& queries_unit, int64_t k) const;
  at::Tensor normalized(const at::Tensor& x) const;  // float32 [n, dim] on device_

  at::Device device_;
  int64_t chunk_;
  at::Tensor keys_;                    // float32 [capacity, dim] on device_; rows [0, n_rows) used
  at::Tensor row_ids_;                 // int64 [capacity] on device_; id of each row
  RowTable rows_;                      // host mirror of row_ids_: id <-> row
};

}  // namespace semskip
