#pragma once
// FaissIndex: "faiss:<factory>[|param=value…]", a FAISS CPU index built by
// faiss::index_factory(d, factory, METRIC_INNER_PRODUCT). Compiled with SEMSKIP_WITH_FAISS.
//
// Factories with a lookup-cost formula (index/lookup_cost.h) are accepted: Flat,
// IVF<nlist>,Flat, IVF<nlist>,SQ<b>, IVF<nlist>,PQ<M>[x<nbits>], HNSW<M>, HNSW<M>,SQ<b>,
// PQ<M>[x<nbits>], SQ<b> (IVF with a flat coarse quantizer). Others are refused by name.
//
// Parameters:
//   nprobe=<n>      IVF lists probed per query (1..nlist); FAISS default 1
//   efSearch=<n>    HNSW search breadth; FAISS default 16
//   train_size=<n>  for an index that needs training (IVF, PQ): training uses n keys. Keys
//                   added before training are held in an exact staging index (searched and
//                   removed there); the add() that brings the count to n trains on the first n
//                   keys in arrival order and moves every staged key into the index. train(m, x)
//                   uses the first min(m, n) rows of x. Without train_size, an untrained index
//                   refuses add() until train() has been called, and train() uses all of x.
//   any other FAISS ParameterSpace name (ht, max_codes, quantizer_efSearch, …) is set through
//   faiss::ParameterSpace; a name FAISS rejects is an error naming the descriptor.
//
// Ids: IVF indexes store ids in their inverted lists and remove with their own remove_ids;
// Flat, PQ, SQ and HNSW are wrapped in IndexIDMap2. HNSW cannot remove (supports_remove()
// is false, remove() throws).

#include <cstdint>
#include <memory>
#include <string>

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>

#include "index/vector_index.h"

namespace semskip {

class IndexDescriptor;

class FaissIndex final : public VectorIndex {
 public:
  // Builds the index of `desc` (backend "faiss"); semskip::Error naming the descriptor for
  // a factory string FAISS rejects, an unsupported index type or a bad parameter.
  FaissIndex(IndexDescriptor desc, int64_t dim);
  ~FaissIndex() override;

  bool is_trained() const override;
  bool supports_remove() const override;
  int64_t lookup_flops(int64_t n_queries) const override;
  int64_t memory_bytes() const override;
  bool set_search_parameter(const std::string& key, int64_t value) override;

  // Keys waiting in the staging index for training (train_size, above).
  int64_t n_staged() const;
  // The FAISS index searched once trained (an IndexIDMap2 or the IVF index itself).
  const faiss::Index& faiss_index() const { return *top_; }

 protected:
  void do_train(int64_t n, const float* x_unit) override;
  void do_add(int64_t n, const float* keys_unit, const int64_t* ids) override;
  void do_search(int64_t n, const float* queries_unit, int64_t k, float* similarities,
                 int64_t* ids) const override;
  int64_t do_remove(int64_t n, const int64_t* ids) override;

 private:
  enum class Kind { flat, ivf_flat, ivf_sq, ivf_pq, hnsw, pq, sq };

  void classify();
  void set_parameters(IndexDescriptor& desc);
  void set_nprobe(int64_t v);
  void set_ef_search(int64_t v);
  void train_and_flush_staging(int64_t n_train);

  Kind kind_ = Kind::flat;
  int64_t train_size_ = 0;                       // 0: no staging, train() required
  std::unique_ptr<faiss::Index> inner_;          // what index_factory built (owned)
  std::unique_ptr<faiss::IndexIDMap2> id_map_;   // wraps inner_ where it has no ids (non-IVF)
  faiss::Index* top_ = nullptr;                  // id_map_ or inner_: what add/search use
  std::unique_ptr<faiss::IndexFlat> staging_flat_;  // IndexFlatIP, keys before training
  std::unique_ptr<faiss::IndexIDMap2> staging_;  // ids of staging_flat_
};

}  // namespace semskip
