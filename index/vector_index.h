#pragma once
// VectorIndex: the store behind the semantic cache (docs/architecture.md §1), in the manner of
// faiss::Index. Every backend (faiss:, torch:, kokkos:) gives the same answers:
//
//  - Similarity is the inner product of L2-normalised vectors (cosine). Keys, queries and
//    training vectors are normalised on entry, here, so callers pass raw activations. A zero
//    vector stays zero and is accepted: a zero query scores 0 against every key, on every
//    backend; a zero key scores 0 against every query where the backend keeps the vectors
//    (flat, IVF-Flat, HNSW), while quantisers (SQ, PQ) score the code they store for it,
//    near 0 only within their quantisation error.
//  - Ids are chosen by the caller: int64 ≥ 0, unique within the index (adding an id that is
//    present is an error; the semantic cache evicts by id). −1 means "no result".
//  - search() returns, per query, up to k results by decreasing similarity; where fewer than
//    k exist (small index, or an approximate index that found fewer) the tail is id −1 with
//    similarity −inf.
//  - Raw-pointer calls take host memory, row-major float32. The at::Tensor overloads take
//    float32, bf16 or fp16 on any device and convert on entry.
//  - Bad input throws semskip::Error naming the index (its descriptor) and the problem.
//
// An index is not thread-safe: call it from one thread at a time (backends parallelise
// inside a call: OpenMP for FAISS, LibTorch's intra-op threads, the Kokkos execution space).

#include <cstdint>
#include <string>
#include <unordered_set>

#include <ATen/ATen.h>

namespace semskip {

// Search results of the tensor API.
struct SearchResult {
  at::Tensor similarities;  // float32 [n, k], on the queries' device
  at::Tensor ids;           // int64 [n, k], on the queries' device; −1 where no result
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;
  VectorIndex(const VectorIndex&) = delete;
  VectorIndex& operator=(const VectorIndex&) = delete;

  // Dimension of keys and queries.
  int64_t dim() const { return dim_; }
  // Number of stored keys.
  int64_t size() const { return static_cast<int64_t>(ids_.size()); }
  // The descriptor this index was made from, exactly as given to make_index().
  const std::string& describe() const { return descriptor_; }
  // Whether the stored ids contain `id`.
  bool contains(int64_t id) const { return ids_.count(id) != 0; }

  // False while an index that needs training (FAISS IVF, PQ) has not been trained.
  virtual bool is_trained() const { return true; }
  // False where the backend cannot delete entries (FAISS HNSW); remove() then throws.
  virtual bool supports_remove() const { return true; }
  // Where the keys live and the search runs (CPU for FAISS and host Kokkos).
  virtual at::Device device() const { return at::Device(at::kCPU); }
  // FLOPs that one search of n_queries queries is charged (docs/architecture.md §5), with the index's
  // current size and search parameters. The formula of each backend is documented at its
  // class and in index/lookup_cost.h.
  virtual int64_t lookup_flops(int64_t n_queries) const = 0;
  // Bytes held by the index: keys or codes, ids, graphs, staging, id bookkeeping. Container
  // overheads (hash-table nodes) are estimated, so this is approximate.
  virtual int64_t memory_bytes() const = 0;
  // Sets a search-time parameter of a built index (IVF `nprobe`, HNSW `efSearch`) to value,
  // as the descriptor parameter of that name would; the stored keys stay as they are. False
  // where the backend has no such parameter; semskip::Error for a value out of range.
  // describe() keeps the descriptor the index was made from.
  virtual bool set_search_parameter(const std::string& key, int64_t value);

  // Trains an index that needs it (FAISS IVF, PQ). x: float32 [n, dim]. Training happens
  // once: on a trained index, and on backends that need no training, this is a no-op.
  void train(int64_t n, const float* x);
  // Adds n keys. keys: float32 [n, dim]; ids: int64 [n], each ≥ 0 and not yet present.
  void add(int64_t n, const float* keys, const int64_t* ids);
  // k nearest stored keys of each query. queries: float32 [n, dim]; k ≥ 1;
  // similarities: float32 [n, k] and ids: int64 [n, k], written by this call.
  void search(int64_t n, const float* queries, int64_t k, float* similarities,
              int64_t* ids) const;
  // Removes the keys with these ids. ids: int64 [n]; ids not present are ignored, repeats
  // count once. Returns how many keys were removed.
  int64_t remove(int64_t n, const int64_t* ids);

  // Tensor overloads. x, keys, queries: [n, dim] float32/bf16/fp16 on any device;
  // ids: int64 [n] on any device.
  void train(const at::Tensor& x);
  void add(const at::Tensor& keys, const at::Tensor& ids);
  SearchResult search(const at::Tensor& queries, int64_t k) const;
  int64_t remove(const at::Tensor& ids);

 protected:
  VectorIndex(std::string descriptor, int64_t dim);

  // Backend hooks. Arguments have been checked; vectors are unit-norm float32 on the host,
  // ids of do_add are new and unique, ids of do_remove are present and unique.
  virtual void do_train(int64_t n, const float* x_unit);
  virtual void do_add(int64_t n, const float* keys_unit, const int64_t* ids) = 0;
  // Called only on a non-empty index. Writes every [n, k] slot; unused ones get id −1.
  virtual void do_search(int64_t n, const float* queries_unit, int64_t k, float* similarities,
                         int64_t* ids) const = 0;
  // Returns how many were removed (must equal n).
  virtual int64_t do_remove(int64_t n, const int64_t* ids) = 0;

  // Tensor hooks; the defaults move the data to the host and normalise there. keys and
  // queries are float32 [n, dim] (not yet normalised) on their original device; ids_host is
  // int64 [n] on the CPU, checked as for do_add. do_search_tensor is called only on a
  // non-empty index and returns results on the queries' device.
  virtual void do_add_tensor(const at::Tensor& keys, const at::Tensor& ids_host);
  virtual SearchResult do_search_tensor(const at::Tensor& queries, int64_t k) const;
  // True when do_search_tensor already gives kNoSimilarity wherever it gives id −1, so that
  // search() need not mark those slots again (two launches less per search on a GPU).
  virtual bool search_marks_missing() const { return false; }

  // Estimated bytes of the id set kept here, for memory_bytes().
  int64_t id_bookkeeping_bytes() const;

 private:
  void check_new_ids(int64_t n, const int64_t* ids) const;
  void check_tensor_rows(const at::Tensor& x, const char* what) const;

  std::string descriptor_;
  int64_t dim_;
  std::unordered_set<int64_t> ids_;  // ids of the stored keys; size() and duplicate checks
};

// Writes unit-norm copies of the n rows of x (float32 [n, dim]) into out (float32 [n, dim]);
// a zero row stays zero. out may equal x.
void l2_normalize_rows(int64_t n, int64_t dim, const float* x, float* out);

// Estimated bytes of a node-based hash container with n elements of elem_bytes and
// bucket_count buckets (libstdc++: one node of next-pointer + element + cached hash each).
int64_t hash_container_bytes(int64_t n, int64_t elem_bytes, int64_t bucket_count);

}  // namespace semskip
