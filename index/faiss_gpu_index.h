#pragma once
// FaissGpuIndex: "faiss-gpu:<factory>[|nprobe=<n>][|device=<i>][|fp16=0|1]", a FAISS GPU index:
// the CPU index that faiss::index_factory(d, factory, METRIC_INNER_PRODUCT) builds, cloned to
// the GPU by faiss::gpu::index_cpu_to_gpu. Compiled with SEMSKIP_WITH_FAISS_GPU, which the
// build sets when the FAISS that CMake finds was built with FAISS_ENABLE_GPU
// (faiss/gpu/GpuIndexFlat.h is installed).
//
// Factories FAISS GPU offers and index/lookup_cost.h has a formula for: Flat, IVF<nlist>,Flat,
// IVF<nlist>,SQ8, IVF<nlist>,PQ<M> (8-bit codes; FAISS GPU limits M and d/M). Others (HNSW,
// PQ and SQ without IVF) are refused by name.
//
// Parameters:
//   nprobe=<n>   IVF lists probed per query (1..nlist); FAISS default 1
//   device=<i>   the GPU (default 0)
//   fp16=1       half-precision storage (Flat, IVF-Flat) or look-up tables (IVF-PQ)
//
// IVF indexes must be trained (train()) before keys are added; FAISS GPU's k-means runs on the
// device. FAISS GPU (1.7.3) cannot remove entries, so the index keeps a host copy of the stored
// unit keys: removal compacts that copy (as the flat backends do) and re-adds every key to the
// GPU index, which IVF resets keep trained. Removal therefore costs O(N), which a cache that
// evicts rarely can afford; lookups are unaffected. FAISS stores row numbers as its labels and
// this class maps them to the caller's ids, on the device for device queries.
//
// Searches of device tensors pass device pointers to FAISS, so queries and results stay on the
// GPU; FAISS runs on its own stream, so the device is synchronised before the call and FAISS's
// stream after it. k is limited by FAISS GPU's selection (2048).
//
// Lookup cost: as the CPU FAISS index of the same factory (index/lookup_cost.h).
// memory_bytes(): the GPU data (vectors or codes, 8-byte ids, centroids, PQ codebook) plus the
// host copy and the id bookkeeping.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/row_table.h"
#include "index/vector_index.h"

namespace faiss {
struct Index;
namespace gpu {
class StandardGpuResources;
}
}  // namespace faiss

namespace semskip {

class IndexDescriptor;

class FaissGpuIndex final : public VectorIndex {
 public:
  static constexpr int64_t kMaxK = 2048;

  // semskip::Error naming the descriptor for a factory FAISS rejects, one FAISS GPU does not
  // offer, a bad parameter, or no visible GPU.
  FaissGpuIndex(IndexDescriptor desc, int64_t dim);
  ~FaissGpuIndex() override;

  bool is_trained() const override;
  at::Device device() const override;
  int64_t lookup_flops(int64_t n_queries) const override;
  int64_t memory_bytes() const override;
  bool set_search_parameter(const std::string& key, int64_t value) override;  // nprobe (IVF)

 protected:
  void do_train(int64_t n, const float* x_unit) override;
  void do_add(int64_t n, const float* keys_unit, const int64_t* ids) override;
  void do_search(int64_t n, const float* queries_unit, int64_t k, float* similarities,
                 int64_t* ids) const override;
  int64_t do_remove(int64_t n, const int64_t* ids) override;
  SearchResult do_search_tensor(const at::Tensor& queries, int64_t k) const override;

 private:
  enum class Kind { flat, ivf_flat, ivf_sq, ivf_pq };

  // Adds host unit keys [n, dim] to the GPU index as rows [first_row, first_row + n).
  void add_rows(int64_t n, const float* keys_unit, int64_t first_row);
  void check_k(int64_t k) const;

  Kind kind_ = Kind::flat;
  int device_ = 0;
  bool fp16_ = false;
  int64_t nlist_ = 0, nprobe_ = 1, pq_m_ = 0, pq_nbits_ = 0;  // IVF and PQ shape, for the cost
  std::unique_ptr<faiss::gpu::StandardGpuResources> resources_;
  std::unique_ptr<faiss::Index> gpu_;  // a faiss::gpu::GpuIndex; labels are rows of host_keys_
  std::vector<float> host_keys_;       // float32 [n_rows, dim], unit rows, for re-adding
  std::vector<int64_t> host_row_ids_;  // int64 [n_rows]: id of each row (host)
  at::Tensor row_ids_;                 // int64 [n_rows] on the GPU: id of each row
  RowTable rows_;                      // id <-> row
};

}  // namespace semskip
