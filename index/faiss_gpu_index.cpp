#include "index/faiss_gpu_index.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <limits>
#include <string>
#include <typeinfo>
#include <utility>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/gpu/GpuCloner.h>
#include <faiss/gpu/GpuClonerOptions.h>
#include <faiss/gpu/GpuIndex.h>
#include <faiss/gpu/GpuIndexIVF.h>
#include <faiss/gpu/StandardGpuResources.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>

#include "core/error.h"
#include "core/strings.h"
#include "index/descriptor.h"
#include "index/lookup_cost.h"

namespace semskip {

namespace {

constexpr const char* kSupported = "Flat, IVF<nlist>,Flat, IVF<nlist>,SQ8, IVF<nlist>,PQ<M>";

// Runs a FAISS call, turning FAISS's exceptions into semskip::Error naming the index.
template <class F>
auto faiss_call(const std::string& descriptor, const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const faiss::FaissException& e) {
    SEMSKIP_THROW_MSG("index '{}': FAISS GPU {} failed: {}", descriptor, what, e.what());
  }
}

void check_cuda(cudaError_t rc, const std::string& descriptor, const char* what) {
  SEMSKIP_THROW_IF_NOT_MSG(rc == cudaSuccess, "index '{}': CUDA {} failed: {}", descriptor, what,
                           cudaGetErrorString(rc));
}

}  // namespace

FaissGpuIndex::FaissGpuIndex(IndexDescriptor desc, int64_t dim) : VectorIndex(desc.text(), dim) {
  int n_gpus = 0;
  const cudaError_t rc = cudaGetDeviceCount(&n_gpus);
  SEMSKIP_THROW_IF_NOT_MSG(rc == cudaSuccess && n_gpus > 0,
                           "index descriptor '{}': FAISS GPU needs a visible GPU ({})", describe(),
                           rc == cudaSuccess ? "none found" : cudaGetErrorString(rc));
  device_ = static_cast<int>(desc.take_int("device", 0, 0));
  SEMSKIP_THROW_IF_NOT_MSG(device_ < n_gpus,
                           "index descriptor '{}': device={} but only {} GPU(s) are visible",
                           describe(), device_, n_gpus);
  fp16_ = desc.take_int("fp16", 0, 0) != 0;
  const bool nprobe_given = std::any_of(desc.remaining().begin(), desc.remaining().end(),
                                        [](const auto& p) { return p.first == "nprobe"; });
  const int64_t nprobe = desc.take_int("nprobe", 1, 1);
  desc.check_all_taken("nprobe, device, fp16");

  std::unique_ptr<faiss::Index> cpu = faiss_call(describe(), "index_factory", [&] {
    return std::unique_ptr<faiss::Index>(faiss::index_factory(
        static_cast<int>(dim), desc.body().c_str(), faiss::METRIC_INNER_PRODUCT));
  });
  const faiss::Index* ix = cpu.get();
  const std::type_info& t = typeid(*ix);
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(ix)) {
    SEMSKIP_THROW_IF_NOT_MSG(dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer),
                             "index descriptor '{}': the coarse quantizer must be flat; FAISS GPU "
                             "backends: {}",
                             describe(), kSupported);
    nlist_ = static_cast<int64_t>(ivf->nlist);
    if (t == typeid(faiss::IndexIVFFlat)) {
      kind_ = Kind::ivf_flat;
    } else if (t == typeid(faiss::IndexIVFScalarQuantizer)) {
      kind_ = Kind::ivf_sq;
      const auto* sq = static_cast<const faiss::IndexIVFScalarQuantizer*>(ix);
      SEMSKIP_THROW_IF_NOT_MSG(sq->sq.qtype == faiss::ScalarQuantizer::QT_8bit,
                               "index descriptor '{}': FAISS GPU backends take SQ8 only; "
                               "supported: {}",
                               describe(), kSupported);
    } else if (t == typeid(faiss::IndexIVFPQ)) {
      kind_ = Kind::ivf_pq;
      const auto* pq = static_cast<const faiss::IndexIVFPQ*>(ix);
      pq_m_ = static_cast<int64_t>(pq->pq.M);
      pq_nbits_ = static_cast<int64_t>(pq->pq.nbits);
      SEMSKIP_THROW_IF_NOT_MSG(pq_nbits_ == 8,
                               "index descriptor '{}': FAISS GPU IVF-PQ takes 8-bit codes, got {}",
                               describe(), pq_nbits_);
    } else {
      SEMSKIP_THROW_MSG("index descriptor '{}': FAISS GPU has no such IVF index; supported: {}",
                        describe(), kSupported);
    }
    SEMSKIP_THROW_IF_NOT_MSG(nprobe <= nlist_,
                             "index descriptor '{}': nprobe={} must be in 1..nlist={}", describe(),
                             nprobe, nlist_);
    nprobe_ = nprobe;
  } else if (t == typeid(faiss::IndexFlatIP) || t == typeid(faiss::IndexFlat)) {
    kind_ = Kind::flat;
    SEMSKIP_THROW_IF_NOT_MSG(!nprobe_given,
                             "index descriptor '{}': nprobe applies to IVF indexes only",
                             describe());
  } else {
    SEMSKIP_THROW_MSG("index descriptor '{}': '{}' has no FAISS GPU form here; supported: {}",
                      describe(), desc.body(), kSupported);
  }

  resources_ = std::make_unique<faiss::gpu::StandardGpuResources>();
  faiss::gpu::GpuClonerOptions options;
  options.useFloat16 = fp16_;
  gpu_ = faiss_call(describe(), "index_cpu_to_gpu", [&] {
    return std::unique_ptr<faiss::Index>(
        faiss::gpu::index_cpu_to_gpu(resources_.get(), device_, cpu.get(), &options));
  });
  if (kind_ != Kind::flat) set_search_parameter("nprobe", nprobe_);
  row_ids_ = at::empty({0}, at::TensorOptions().device(device()).dtype(at::kLong));
}

FaissGpuIndex::~FaissGpuIndex() {
  gpu_.reset();  // before the resources it runs on
  resources_.reset();
}

bool FaissGpuIndex::set_search_parameter(const std::string& key, int64_t value) {
  if (key != "nprobe" || kind_ == Kind::flat) return false;
  SEMSKIP_THROW_IF_NOT_MSG(value >= 1 && value <= nlist_,
                           "index descriptor '{}': nprobe={} must be in 1..nlist={}", describe(),
                           value, nlist_);
  auto* ivf = dynamic_cast<faiss::gpu::GpuIndexIVF*>(gpu_.get());
  SEMSKIP_ASSERT(ivf != nullptr);
  faiss_call(describe(), "setNumProbes", [&] { ivf->setNumProbes(static_cast<int>(value)); });
  nprobe_ = value;
  return true;
}

bool FaissGpuIndex::is_trained() const { return gpu_->is_trained; }

at::Device FaissGpuIndex::device() const {
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_));
}

void FaissGpuIndex::check_k(int64_t k) const {
  SEMSKIP_THROW_IF_NOT_MSG(k <= kMaxK, "index '{}': search: k={} exceeds FAISS GPU's limit of {}",
                           describe(), k, kMaxK);
}

void FaissGpuIndex::do_train(int64_t n, const float* x_unit) {
  faiss_call(describe(), "train", [&] { gpu_->train(n, x_unit); });
}

void FaissGpuIndex::add_rows(int64_t n, const float* keys_unit, int64_t first_row) {
  if (kind_ == Kind::flat) {
    // GpuIndexFlat labels keys by their position, which is the row: rows are added in order.
    faiss_call(describe(), "add", [&] { gpu_->add(n, keys_unit); });
    return;
  }
  std::vector<int64_t> labels(static_cast<size_t>(n));  // int64 [n]: the rows
  for (int64_t i = 0; i < n; ++i) labels[i] = first_row + i;
  faiss_call(describe(), "add", [&] { gpu_->add_with_ids(n, keys_unit, labels.data()); });
}

void FaissGpuIndex::do_add(int64_t n, const float* keys_unit, const int64_t* ids) {
  SEMSKIP_THROW_IF_NOT_MSG(gpu_->is_trained,
                           "index '{}' is not trained: call train() with representative keys "
                           "first",
                           describe());
  const int64_t first = rows_.n_rows();
  add_rows(n, keys_unit, first);
  host_keys_.insert(host_keys_.end(), keys_unit, keys_unit + n * dim());
  host_row_ids_.insert(host_row_ids_.end(), ids, ids + n);
  rows_.append(n, ids);
  if (first + n > row_ids_.size(0)) {
    // Doubling keeps one add per decode step amortised O(1) per id.
    const int64_t capacity = std::max({first + n, 2 * row_ids_.size(0), int64_t{1024}});
    at::Tensor grown = at::empty({capacity}, row_ids_.options());
    grown.narrow(0, 0, first).copy_(row_ids_.narrow(0, 0, first));
    row_ids_ = std::move(grown);
  }
  at::Tensor ids_host = at::from_blob(const_cast<int64_t*>(ids), {n}, at::kLong);
  row_ids_.narrow(0, first, n).copy_(ids_host);
}

void FaissGpuIndex::do_search(int64_t n, const float* queries_unit, int64_t k,
                              float* similarities, int64_t* ids) const {
  check_k(k);
  faiss_call(describe(), "search",
             [&] { gpu_->search(n, queries_unit, k, similarities, ids); });
  for (int64_t i = 0; i < n * k; ++i)
    ids[i] = ids[i] >= 0 ? host_row_ids_[static_cast<size_t>(ids[i])] : -1;
}

SearchResult FaissGpuIndex::do_search_tensor(const at::Tensor& queries, int64_t k) const {
  check_k(k);
  const int64_t n = queries.size(0);
  at::Tensor q = queries.to(device(), at::kFloat);
  // As l2_normalize_rows on the host: a zero row stays zero.
  q = (q / q.norm(2, {1}, /*keepdim=*/true).clamp_min(std::numeric_limits<float>::min()))
          .contiguous();  // float32 [n, dim] on the GPU
  const auto on_gpu = at::TensorOptions().device(device());
  at::Tensor sims = at::empty({n, k}, on_gpu.dtype(at::kFloat));  // float32 [n, k]
  at::Tensor rows = at::empty({n, k}, on_gpu.dtype(at::kLong));   // int64 [n, k]: rows or −1
  // LibTorch's stream has written q; FAISS reads it on its own stream.
  check_cuda(cudaDeviceSynchronize(), describe(), "synchronise before search");
  faiss_call(describe(), "search", [&] {
    gpu_->search(n, q.data_ptr<float>(), k, sims.data_ptr<float>(), rows.data_ptr<int64_t>());
    resources_->getResources()->syncDefaultStream(device_);
  });
  at::Tensor missing = rows.lt(0);
  at::Tensor ids = row_ids_.index_select(0, rows.clamp_min(0).reshape({-1})).view({n, k});
  ids.masked_fill_(missing, int64_t{-1});
  return {sims.to(queries.device()), ids.to(queries.device())};
}

int64_t FaissGpuIndex::do_remove(int64_t n, const int64_t* ids) {
  RowTable::Compaction c = rows_.remove(n, ids);
  const int64_t d = dim();
  for (size_t i = 0; i < c.holes.size(); ++i) {
    std::copy_n(host_keys_.begin() + c.fillers[i] * d, d, host_keys_.begin() + c.holes[i] * d);
    host_row_ids_[static_cast<size_t>(c.holes[i])] = host_row_ids_[static_cast<size_t>(c.fillers[i])];
  }
  const int64_t n_rows = rows_.n_rows();
  host_keys_.resize(static_cast<size_t>(n_rows * d));
  host_row_ids_.resize(static_cast<size_t>(n_rows));
  // FAISS GPU has no remove_ids: start again from the compacted rows (IVF stays trained).
  faiss_call(describe(), "reset", [&] { gpu_->reset(); });
  if (n_rows > 0) {
    add_rows(n_rows, host_keys_.data(), 0);
    row_ids_.narrow(0, 0, n_rows)
        .copy_(at::from_blob(host_row_ids_.data(), {n_rows}, at::kLong));
  }
  return n;
}

int64_t FaissGpuIndex::lookup_flops(int64_t n_queries) const {
  const int64_t d = dim();
  const int64_t n_keys = size();
  switch (kind_) {
    case Kind::flat:
      return flat_lookup_flops(d, n_keys, n_queries);
    case Kind::ivf_flat:
    case Kind::ivf_sq:
      return ivf_lookup_flops(d, n_keys, nlist_, nprobe_, n_queries);
    case Kind::ivf_pq:
      return ivfpq_lookup_flops(d, n_keys, nlist_, nprobe_, pq_m_, pq_nbits_, n_queries);
  }
  SEMSKIP_ASSERT(false);
  return 0;
}

int64_t FaissGpuIndex::memory_bytes() const {
  const int64_t n = size();
  const int64_t d = dim();
  const int64_t centroids = nlist_ * d * 4;
  int64_t gpu = 0;
  switch (kind_) {
    case Kind::flat:
      gpu = n * d * (fp16_ ? 2 : 4);
      break;
    case Kind::ivf_flat:
      gpu = n * d * (fp16_ ? 2 : 4) + n * 8 + centroids;
      break;
    case Kind::ivf_sq:
      gpu = n * d + n * 8 + centroids + 2 * d * 4;  // codes, ids, centroids, trained range
      break;
    case Kind::ivf_pq:
      gpu = n * pq_m_ + n * 8 + centroids + d * (int64_t{1} << pq_nbits_) * 4;
      break;
  }
  const int64_t host = static_cast<int64_t>(host_keys_.capacity()) * 4 +
                       static_cast<int64_t>(host_row_ids_.capacity()) * 8 + rows_.memory_bytes();
  return gpu + row_ids_.numel() * 8 + host + id_bookkeeping_bytes();
}

}  // namespace semskip
