#include "index/faiss_index.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <typeinfo>
#include <utility>
#include <vector>

#include <faiss/AutoTune.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include "core/error.h"
#include "core/strings.h"
#include "index/descriptor.h"
#include "index/lookup_cost.h"

namespace semskip {

namespace {

constexpr const char* kSupported =
    "Flat, IVF<nlist>,Flat, IVF<nlist>,SQ<b>, IVF<nlist>,PQ<M>[x<nbits>], HNSW<M>, "
    "HNSW<M>,SQ<b>, PQ<M>[x<nbits>], SQ<b>";

// Runs a FAISS call, turning FAISS's exceptions into semskip::Error naming the index.
template <class F>
auto faiss_call(const std::string& descriptor, const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const faiss::FaissException& e) {
    SEMSKIP_THROW_MSG("index '{}': FAISS {} failed: {}", descriptor, what, e.what());
  }
}

std::string demangle(const char* name) {
  int status = 0;
  char* s = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && s ? s : name;
  std::free(s);
  return out;
}

const faiss::IndexIVF* as_ivf(const faiss::Index* ix) {
  return dynamic_cast<const faiss::IndexIVF*>(ix);
}

}  // namespace

FaissIndex::FaissIndex(IndexDescriptor desc, int64_t dim) : VectorIndex(desc.text(), dim) {
  inner_ = faiss_call(describe(), "index_factory", [&] {
    return std::unique_ptr<faiss::Index>(
        faiss::index_factory(static_cast<int>(dim), desc.body().c_str(), faiss::METRIC_INNER_PRODUCT));
  });
  classify();
  train_size_ = desc.take_int("train_size", 0, 1);
  if (train_size_ > 0) {
    SEMSKIP_THROW_IF_NOT_MSG(!inner_->is_trained,
                             "index descriptor '{}': train_size is given but '{}' needs no "
                             "training",
                             describe(), desc.body());
    // FAISS's k-means needs at least as many points as centroids.
    int64_t min_train = 1;
    if (const auto* ivf = as_ivf(inner_.get())) min_train = static_cast<int64_t>(ivf->nlist);
    if (const auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(inner_.get()))
      min_train = std::max<int64_t>(min_train, static_cast<int64_t>(ivfpq->pq.ksub));
    if (const auto* pq = dynamic_cast<const faiss::IndexPQ*>(inner_.get()))
      min_train = static_cast<int64_t>(pq->pq.ksub);
    SEMSKIP_THROW_IF_NOT_MSG(train_size_ >= min_train,
                             "index descriptor '{}': train_size={} is too small, '{}' trains "
                             "{} centroids and needs at least that many keys",
                             describe(), train_size_, desc.body(), min_train);
  }
  set_parameters(desc);

  if (as_ivf(inner_.get())) {
    top_ = inner_.get();  // inverted lists store the ids and can remove them
  } else {
    id_map_ = std::make_unique<faiss::IndexIDMap2>(inner_.get());
    top_ = id_map_.get();
  }
  if (train_size_ > 0) {
    staging_flat_ = std::make_unique<faiss::IndexFlatIP>(dim);
    staging_ = std::make_unique<faiss::IndexIDMap2>(staging_flat_.get());
  }
}

FaissIndex::~FaissIndex() = default;

void FaissIndex::classify() {
  const faiss::Index* ix = inner_.get();
  const std::type_info& t = typeid(*ix);
  auto refuse = [&](const std::string& why) {
    SEMSKIP_THROW_MSG("index descriptor '{}': FAISS factory builds {}, {}; supported: {}",
                      describe(), demangle(t.name()), why, kSupported);
  };
  if (const auto* ivf = as_ivf(ix)) {
    if (!dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer))
      refuse("whose coarse quantizer is not flat (no lookup-cost formula)");
    if (t == typeid(faiss::IndexIVFFlat)) {
      kind_ = Kind::ivf_flat;
    } else if (t == typeid(faiss::IndexIVFScalarQuantizer)) {
      kind_ = Kind::ivf_sq;
    } else if (t == typeid(faiss::IndexIVFPQ)) {
      kind_ = Kind::ivf_pq;
      // Polysemous training only serves Hamming-threshold filtering (polysemous_ht), which
      // is not used here, and its annealing costs more than the k-means itself.
      static_cast<faiss::IndexIVFPQ*>(inner_.get())->do_polysemous_training = false;
    } else {
      refuse("an IVF variant without a lookup-cost formula");
    }
  } else if (t == typeid(faiss::IndexHNSWFlat) || t == typeid(faiss::IndexHNSWSQ)) {
    kind_ = Kind::hnsw;
  } else if (t == typeid(faiss::IndexPQ)) {
    kind_ = Kind::pq;
    static_cast<faiss::IndexPQ*>(inner_.get())->do_polysemous_training = false;  // as IVF-PQ
  } else if (t == typeid(faiss::IndexScalarQuantizer)) {
    kind_ = Kind::sq;
  } else if (t == typeid(faiss::IndexFlatIP) || t == typeid(faiss::IndexFlat)) {
    kind_ = Kind::flat;
  } else {
    refuse("which has no lookup-cost formula");
  }
}

void FaissIndex::set_parameters(IndexDescriptor& desc) {
  faiss::ParameterSpace space;
  if (auto nprobe = desc.take("nprobe")) {
    SEMSKIP_THROW_IF_NOT_MSG(as_ivf(inner_.get()),
                             "index descriptor '{}': nprobe applies to IVF indexes only",
                             describe());
    set_nprobe(parse_int(*nprobe, fmt::format("index descriptor '{}': nprobe", describe())));
  }
  if (auto ef = desc.take("efSearch")) {
    SEMSKIP_THROW_IF_NOT_MSG(kind_ == Kind::hnsw,
                             "index descriptor '{}': efSearch applies to HNSW indexes only",
                             describe());
    set_ef_search(parse_int(*ef, fmt::format("index descriptor '{}': efSearch", describe())));
  }
  for (const auto& [key, value] : desc.remaining()) {
    const double v = parse_double(value, fmt::format("index descriptor '{}': {}", describe(), key));
    try {
      space.set_index_parameter(inner_.get(), key, v);
    } catch (const faiss::FaissException& e) {
      SEMSKIP_THROW_MSG("index descriptor '{}': unknown parameter '{}' (accepted: nprobe, "
                        "efSearch, train_size, or a FAISS ParameterSpace name that this index "
                        "takes; FAISS said: {})",
                        describe(), key, e.what());
    }
  }
}

void FaissIndex::set_nprobe(int64_t v) {
  const auto* ivf = as_ivf(inner_.get());
  SEMSKIP_ASSERT(ivf != nullptr);
  SEMSKIP_THROW_IF_NOT_MSG(v >= 1 && v <= static_cast<int64_t>(ivf->nlist),
                           "index descriptor '{}': nprobe={} must be in 1..nlist={}", describe(),
                           v, ivf->nlist);
  faiss::ParameterSpace().set_index_parameter(inner_.get(), "nprobe", static_cast<double>(v));
}

void FaissIndex::set_ef_search(int64_t v) {
  SEMSKIP_THROW_IF_NOT_MSG(v >= 1, "index descriptor '{}': efSearch={} must be ≥ 1", describe(), v);
  faiss::ParameterSpace().set_index_parameter(inner_.get(), "efSearch", static_cast<double>(v));
}

bool FaissIndex::set_search_parameter(const std::string& key, int64_t value) {
  if (key == "nprobe" && as_ivf(inner_.get())) {
    set_nprobe(value);
    return true;
  }
  if (key == "efSearch" && kind_ == Kind::hnsw) {
    set_ef_search(value);
    return true;
  }
  return false;
}

bool FaissIndex::is_trained() const { return top_->is_trained; }

bool FaissIndex::supports_remove() const { return kind_ != Kind::hnsw; }

int64_t FaissIndex::n_staged() const { return staging_ ? staging_->ntotal : 0; }

void FaissIndex::train_and_flush_staging(int64_t n_train) {
  const float* xb = staging_flat_->get_xb();  // float32 [n_staged, dim], arrival order
  const int64_t n = staging_->ntotal;
  SEMSKIP_ASSERT(n_train <= n);
  faiss_call(describe(), "train", [&] { top_->train(n_train, xb); });
  faiss_call(describe(), "add", [&] { top_->add_with_ids(n, xb, staging_->id_map.data()); });
  staging_.reset();
  staging_flat_.reset();
}

void FaissIndex::do_train(int64_t n, const float* x_unit) {
  const int64_t n_train = train_size_ > 0 ? std::min(n, train_size_) : n;
  faiss_call(describe(), "train", [&] { top_->train(n_train, x_unit); });
  if (staging_) {
    const float* xb = staging_flat_->get_xb();
    faiss_call(describe(), "add",
               [&] { top_->add_with_ids(staging_->ntotal, xb, staging_->id_map.data()); });
    staging_.reset();
    staging_flat_.reset();
  }
}

void FaissIndex::do_add(int64_t n, const float* keys_unit, const int64_t* ids) {
  if (top_->is_trained) {
    faiss_call(describe(), "add", [&] { top_->add_with_ids(n, keys_unit, ids); });
    return;
  }
  SEMSKIP_THROW_IF_NOT_MSG(staging_,
                           "index '{}' is not trained: call train() with representative keys "
                           "first, or add |train_size=<n> to the descriptor to train on the "
                           "first n keys added",
                           describe());
  faiss_call(describe(), "add", [&] { staging_->add_with_ids(n, keys_unit, ids); });
  if (staging_->ntotal < train_size_) return;
  try {
    train_and_flush_staging(train_size_);
  } catch (...) {
    // Leave the index as before this call: the caller did not get these ids added.
    faiss::IDSelectorBatch sel(static_cast<size_t>(n), ids);
    staging_->remove_ids(sel);
    throw;
  }
}

void FaissIndex::do_search(int64_t n, const float* queries_unit, int64_t k, float* similarities,
                           int64_t* ids) const {
  const faiss::Index* searched = staging_ ? staging_.get() : top_;
  faiss_call(describe(), "search",
             [&] { searched->search(n, queries_unit, k, similarities, ids); });
}

int64_t FaissIndex::do_remove(int64_t n, const int64_t* ids) {
  faiss::IDSelectorBatch sel(static_cast<size_t>(n), ids);
  faiss::Index* target = staging_ ? staging_.get() : top_;
  return static_cast<int64_t>(faiss_call(describe(), "remove_ids", [&] { return target->remove_ids(sel); }));
}

int64_t FaissIndex::lookup_flops(int64_t n_queries) const {
  const int64_t d = dim();
  const int64_t n_keys = size();
  if (staging_) return flat_lookup_flops(d, n_keys, n_queries);
  const faiss::Index* ix = inner_.get();
  switch (kind_) {
    case Kind::flat:
    case Kind::sq:
      return flat_lookup_flops(d, n_keys, n_queries);
    case Kind::ivf_flat:
    case Kind::ivf_sq: {
      const auto* ivf = as_ivf(ix);
      return ivf_lookup_flops(d, n_keys, ivf->nlist, ivf->nprobe, n_queries);
    }
    case Kind::ivf_pq: {
      const auto* ivfpq = static_cast<const faiss::IndexIVFPQ*>(ix);
      return ivfpq_lookup_flops(d, n_keys, ivfpq->nlist, ivfpq->nprobe, ivfpq->pq.M,
                                ivfpq->pq.nbits, n_queries);
    }
    case Kind::pq: {
      const auto* pq = static_cast<const faiss::IndexPQ*>(ix);
      return pq_lookup_flops(d, n_keys, pq->pq.M, pq->pq.nbits, n_queries);
    }
    case Kind::hnsw: {
      const auto* hnsw = static_cast<const faiss::IndexHNSW*>(ix);
      return hnsw_lookup_flops(d, n_keys, hnsw->hnsw.nb_neighbors(1), hnsw->hnsw.efSearch,
                               n_queries);
    }
  }
  SEMSKIP_ASSERT(false);
  return 0;
}

int64_t FaissIndex::memory_bytes() const {
  // The serialised index is exactly its data arrays (vectors or codes, ids, lists, graph).
  auto serialised = [&](const faiss::Index* ix) {
    faiss::VectorIOWriter writer;
    faiss_call(describe(), "write_index", [&] { faiss::write_index(ix, &writer); });
    return static_cast<int64_t>(writer.data.size());
  };
  int64_t bytes = serialised(top_) + id_bookkeeping_bytes();
  if (id_map_) {
    bytes += hash_container_bytes(static_cast<int64_t>(id_map_->rev_map.size()), 16,
                                  static_cast<int64_t>(id_map_->rev_map.bucket_count()));
  }
  if (staging_) {
    bytes += serialised(staging_.get()) +
             hash_container_bytes(static_cast<int64_t>(staging_->rev_map.size()), 16,
                                  static_cast<int64_t>(staging_->rev_map.bucket_count()));
  }
  return bytes;
}

}  // namespace semskip
