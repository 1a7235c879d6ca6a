#include "index/torch_flat_index.h"

#include <algorithm>
#include <limits>
#include <utility>

#include <ATen/detail/CUDAHooksInterface.h>

#include "core/error.h"
#include "index/descriptor.h"
#include "index/lookup_cost.h"

namespace semskip {

namespace {

at::Device parse_device(const std::string& descriptor, const std::string& text) {
  SEMSKIP_THROW_IF_NOT_MSG(text == "cpu" || text == "cuda" || text.rfind("cuda:", 0) == 0,
                           "index descriptor '{}': device '{}' is not cpu, cuda or cuda:<i>",
                           descriptor, text);
  at::Device device(at::kCPU);
  try {
    device = at::Device(text);
  } catch (const c10::Error&) {
    SEMSKIP_THROW_MSG("index descriptor '{}': device '{}' is not cpu, cuda or cuda:<i>",
                      descriptor, text);
  }
  if (device.is_cuda()) {
    SEMSKIP_THROW_IF_NOT_MSG(at::hasCUDA(),
                             "index descriptor '{}': device={} needs a CUDA build of LibTorch "
                             "and a visible GPU",
                             descriptor, text);
    const int64_t n_gpus = at::detail::getCUDAHooks().getNumGPUs();
    SEMSKIP_THROW_IF_NOT_MSG(!device.has_index() || device.index() < n_gpus,
                             "index descriptor '{}': device={} but only {} GPU(s) are visible",
                             descriptor, text, n_gpus);
  }
  return device;
}

}  // namespace

TorchFlatIndex::TorchFlatIndex(IndexDescriptor desc, int64_t dim)
    : VectorIndex(desc.text(), dim), device_(at::kCPU), chunk_(kDefaultChunk) {
  SEMSKIP_THROW_IF_NOT_MSG(desc.body() == "flat",
                           "index descriptor '{}': the torch backend has only 'flat' (got '{}')",
                           describe(), desc.body());
  if (auto dev = desc.take("device")) device_ = parse_device(describe(), *dev);
  chunk_ = desc.take_int("chunk", kDefaultChunk, 1);
  desc.check_all_taken("device, chunk");
  const auto opts = at::TensorOptions().device(device_);
  keys_ = at::empty({0, dim}, opts.dtype(at::kFloat));
  row_ids_ = at::empty({0}, opts.dtype(at::kLong));
}

at::Tensor TorchFlatIndex::normalized(const at::Tensor& x) const {
  at::Tensor xf = x.to(device_, at::kFloat);
  // clamp_min keeps a zero row at zero, as l2_normalize_rows does on the host.
  return xf / xf.norm(2, {1}, /*keepdim=*/true).clamp_min(std::numeric_limits<float>::min());
}

void TorchFlatIndex::append(const at::Tensor& keys_unit, const int64_t* ids) {
  const int64_t n = keys_unit.size(0);
  const int64_t n_rows = rows_.n_rows();
  const int64_t capacity = keys_.size(0);
  if (n_rows + n > capacity) {
    // Doubling keeps a stream of small adds (one per decode step) amortised O(1) per key.
    const int64_t new_capacity = std::max({n_rows + n, 2 * capacity, int64_t{1024}});
    at::Tensor keys = at::empty({new_capacity, dim()}, keys_.options());
    at::Tensor row_ids = at::empty({new_capacity}, row_ids_.options());
    keys.narrow(0, 0, n_rows).copy_(keys_.narrow(0, 0, n_rows));
    row_ids.narrow(0, 0, n_rows).copy_(row_ids_.narrow(0, 0, n_rows));
    keys_ = std::move(keys);
    row_ids_ = std::move(row_ids);
  }
  keys_.narrow(0, n_rows, n).copy_(keys_unit);
  at::Tensor ids_host = at::from_blob(const_cast<int64_t*>(ids), {n}, at::kLong);
  row_ids_.narrow(0, n_rows, n).copy_(ids_host);
  rows_.append(n, ids);
}

void TorchFlatIndex::do_add(int64_t n, const float* keys_unit, const int64_t* ids) {
  at::Tensor host = at::from_blob(const_cast<float*>(keys_unit), {n, dim()}, at::kFloat);
  append(host.to(device_), ids);
}

void TorchFlatIndex::do_add_tensor(const at::Tensor& keys, const at::Tensor& ids_host) {
  append(normalized(keys), ids_host.data_ptr<int64_t>());
}

SearchResult TorchFlatIndex::search_unit(const at::Tensor& queries_unit, int64_t k) const {
  const int64_t n = queries_unit.size(0);
  const int64_t n_rows = rows_.n_rows();
  at::Tensor best_sims;  // float32 [n, ≤k] on device_, sorted descending
  at::Tensor best_rows;  // int64 [n, ≤k] on device_, rows of keys_
  for (int64_t start = 0; start < n_rows; start += chunk_) {
    const int64_t len = std::min(chunk_, n_rows - start);
    at::Tensor sims = at::mm(queries_unit, keys_.narrow(0, start, len).t());  // [n, len]
    auto top = sims.topk(std::min(k, len), 1, /*largest=*/true, /*sorted=*/true);
    at::Tensor rows = std::get<1>(top).add_(start);
    if (!best_sims.defined()) {
      best_sims = std::get<0>(top);
      best_rows = rows;
      continue;
    }
    at::Tensor cat_sims = at::cat({best_sims, std::get<0>(top)}, 1);
    at::Tensor cat_rows = at::cat({best_rows, rows}, 1);
    auto merged = cat_sims.topk(std::min(k, cat_sims.size(1)), 1, true, true);
    best_sims = std::get<0>(merged);
    best_rows = cat_rows.gather(1, std::get<1>(merged));
  }
  const int64_t found = best_sims.size(1);
  at::Tensor ids = row_ids_.index_select(0, best_rows.reshape({-1})).view({n, found});
  if (found < k) {
    best_sims = at::cat({best_sims, at::full({n, k - found}, -std::numeric_limits<float>::infinity(),
                                             best_sims.options())}, 1);
    ids = at::cat({ids, at::full({n, k - found}, int64_t{-1}, ids.options())}, 1);
  }
  return {best_sims, ids};
}

void TorchFlatIndex::do_search(int64_t n, const float* queries_unit, int64_t k,
                               float* similarities, int64_t* ids) const {
  at::Tensor q = at::from_blob(const_cast<float*>(queries_unit), {n, dim()}, at::kFloat);
  SearchResult r = search_unit(q.to(device_), k);
  at::from_blob(similarities, {n, k}, at::kFloat).copy_(r.similarities);
  at::from_blob(ids, {n, k}, at::kLong).copy_(r.ids);
}

SearchResult TorchFlatIndex::do_search_tensor(const at::Tensor& queries, int64_t k) const {
  SearchResult r = search_unit(normalized(queries), k);
  return {r.similarities.to(queries.device()), r.ids.to(queries.device())};
}

int64_t TorchFlatIndex::do_remove(int64_t n, const int64_t* ids) {
  RowTable::Compaction c = rows_.remove(n, ids);
  if (!c.holes.empty()) {
    const int64_t m = static_cast<int64_t>(c.holes.size());
    at::Tensor dst = at::from_blob(c.holes.data(), {m}, at::kLong).to(device_);
    at::Tensor src = at::from_blob(c.fillers.data(), {m}, at::kLong).to(device_);
    keys_.index_copy_(0, dst, keys_.index_select(0, src));
    row_ids_.index_copy_(0, dst, row_ids_.index_select(0, src));
  }
  return n;
}

int64_t TorchFlatIndex::lookup_flops(int64_t n_queries) const {
  return flat_lookup_flops(dim(), size(), n_queries);
}

int64_t TorchFlatIndex::memory_bytes() const {
  return keys_.numel() * 4 + row_ids_.numel() * 8 +
         rows_.memory_bytes() + id_bookkeeping_bytes();
}

}  // namespace semskip
