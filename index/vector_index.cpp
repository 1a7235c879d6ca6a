#include "index/vector_index.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include <fmt/ranges.h>

#include "core/error.h"

namespace semskip {

namespace {

constexpr float kNoSimilarity = -std::numeric_limits<float>::infinity();

// Backends may report a missing result with their own filler similarity (FAISS: −FLT_MAX);
// the interface promises −inf.
void mark_missing(int64_t count, float* similarities, const int64_t* ids) {
  for (int64_t i = 0; i < count; ++i) {
    if (ids[i] < 0) similarities[i] = kNoSimilarity;
  }
}

}  // namespace

void l2_normalize_rows(int64_t n, int64_t dim, const float* x, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * dim;
    float* dst = out + i * dim;
    double sum_sq = 0;  // double: the norm of a 4096-wide fp32 row keeps full precision
    for (int64_t j = 0; j < dim; ++j) sum_sq += static_cast<double>(row[j]) * row[j];
    const float inv = sum_sq > 0 ? static_cast<float>(1.0 / std::sqrt(sum_sq)) : 0.0f;
    for (int64_t j = 0; j < dim; ++j) dst[j] = row[j] * inv;
  }
}

int64_t hash_container_bytes(int64_t n, int64_t elem_bytes, int64_t bucket_count) {
  const int64_t node = static_cast<int64_t>(sizeof(void*)) + elem_bytes + 8;
  return n * node + bucket_count * static_cast<int64_t>(sizeof(void*));
}

VectorIndex::VectorIndex(std::string descriptor, int64_t dim)
    : descriptor_(std::move(descriptor)), dim_(dim) {
  SEMSKIP_THROW_IF_NOT_MSG(dim_ > 0, "index '{}': dimension must be positive, got {}",
                           descriptor_, dim_);
}

void VectorIndex::do_train(int64_t, const float*) {}

bool VectorIndex::set_search_parameter(const std::string&, int64_t) { return false; }

int64_t VectorIndex::id_bookkeeping_bytes() const {
  return hash_container_bytes(size(), sizeof(int64_t), static_cast<int64_t>(ids_.bucket_count()));
}

void VectorIndex::check_new_ids(int64_t n, const int64_t* ids) const {
  std::unordered_set<int64_t> batch;
  batch.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    SEMSKIP_THROW_IF_NOT_MSG(ids[i] >= 0, "index '{}': add: id {} at position {} is negative",
                             descriptor_, ids[i], i);
    SEMSKIP_THROW_IF_NOT_MSG(ids_.count(ids[i]) == 0,
                             "index '{}': add: id {} is already present", descriptor_, ids[i]);
    SEMSKIP_THROW_IF_NOT_MSG(batch.insert(ids[i]).second,
                             "index '{}': add: id {} appears twice in one call", descriptor_,
                             ids[i]);
  }
}

void VectorIndex::train(int64_t n, const float* x) {
  SEMSKIP_THROW_IF_NOT_MSG(n >= 0, "index '{}': train: n must be ≥ 0, got {}", descriptor_, n);
  if (n == 0 || is_trained()) return;
  SEMSKIP_THROW_IF_NOT_MSG(x != nullptr, "index '{}': train: null vectors", descriptor_);
  std::vector<float> unit(static_cast<size_t>(n * dim_));  // float32 [n, dim]
  l2_normalize_rows(n, dim_, x, unit.data());
  do_train(n, unit.data());
}

void VectorIndex::add(int64_t n, const float* keys, const int64_t* ids) {
  SEMSKIP_THROW_IF_NOT_MSG(n >= 0, "index '{}': add: n must be ≥ 0, got {}", descriptor_, n);
  if (n == 0) return;
  SEMSKIP_THROW_IF_NOT_MSG(keys != nullptr && ids != nullptr, "index '{}': add: null keys or ids",
                           descriptor_);
  check_new_ids(n, ids);
  std::vector<float> unit(static_cast<size_t>(n * dim_));  // float32 [n, dim]
  l2_normalize_rows(n, dim_, keys, unit.data());
  do_add(n, unit.data(), ids);
  ids_.insert(ids, ids + n);
}

void VectorIndex::search(int64_t n, const float* queries, int64_t k, float* similarities,
                         int64_t* ids) const {
  SEMSKIP_THROW_IF_NOT_MSG(n >= 0, "index '{}': search: n must be ≥ 0, got {}", descriptor_, n);
  SEMSKIP_THROW_IF_NOT_MSG(k >= 1, "index '{}': search: k must be ≥ 1, got {}", descriptor_, k);
  if (n == 0) return;
  SEMSKIP_THROW_IF_NOT_MSG(queries != nullptr && similarities != nullptr && ids != nullptr,
                           "index '{}': search: null queries or outputs", descriptor_);
  if (size() == 0) {
    std::fill(similarities, similarities + n * k, kNoSimilarity);
    std::fill(ids, ids + n * k, int64_t{-1});
    return;
  }
  std::vector<float> unit(static_cast<size_t>(n * dim_));  // float32 [n, dim]
  l2_normalize_rows(n, dim_, queries, unit.data());
  do_search(n, unit.data(), k, similarities, ids);
  mark_missing(n * k, similarities, ids);
}

int64_t VectorIndex::remove(int64_t n, const int64_t* ids) {
  SEMSKIP_THROW_IF_NOT_MSG(n >= 0, "index '{}': remove: n must be ≥ 0, got {}", descriptor_, n);
  SEMSKIP_THROW_IF_NOT_MSG(supports_remove(),
                           "index '{}' cannot remove entries: the backend has no removal "
                           "(use a flat or IVF index for a cache that evicts)",
                           descriptor_);
  if (n == 0) return 0;
  SEMSKIP_THROW_IF_NOT_MSG(ids != nullptr, "index '{}': remove: null ids", descriptor_);
  std::vector<int64_t> present;  // int64 [≤ n], unique
  std::unordered_set<int64_t> seen;
  for (int64_t i = 0; i < n; ++i) {
    if (ids_.count(ids[i]) && seen.insert(ids[i]).second) present.push_back(ids[i]);
  }
  if (present.empty()) return 0;
  const int64_t removed = do_remove(static_cast<int64_t>(present.size()), present.data());
  SEMSKIP_ASSERT(removed == static_cast<int64_t>(present.size()));
  for (int64_t id : present) ids_.erase(id);
  return removed;
}

void VectorIndex::check_tensor_rows(const at::Tensor& x, const char* what) const {
  SEMSKIP_THROW_IF_NOT_MSG(x.defined(), "index '{}': {}: undefined tensor", descriptor_, what);
  const auto st = x.scalar_type();
  SEMSKIP_THROW_IF_NOT_MSG(st == at::kFloat || st == at::kBFloat16 || st == at::kHalf,
                           "index '{}': {}: dtype {} is not float32, bf16 or fp16", descriptor_,
                           what, c10::toString(st));
  SEMSKIP_THROW_IF_NOT_MSG(x.dim() == 2 && x.size(1) == dim_,
                           "index '{}': {}: expected shape [n, {}], got {}", descriptor_, what,
                           dim_, fmt::format("[{}]", fmt::join(x.sizes(), ", ")));
}

void VectorIndex::train(const at::Tensor& x) {
  check_tensor_rows(x, "train");
  at::Tensor host = x.to(at::kCPU, at::kFloat).contiguous();  // float32 [n, dim]
  train(host.size(0), host.data_ptr<float>());
}

void VectorIndex::add(const at::Tensor& keys, const at::Tensor& ids) {
  check_tensor_rows(keys, "add");
  SEMSKIP_THROW_IF_NOT_MSG(ids.defined() && ids.dim() == 1 && ids.scalar_type() == at::kLong &&
                               ids.size(0) == keys.size(0),
                           "index '{}': add: ids must be int64 [{}] to match the keys",
                           descriptor_, keys.size(0));
  const int64_t n = keys.size(0);
  if (n == 0) return;
  at::Tensor ids_host = ids.to(at::kCPU).contiguous();  // int64 [n]
  check_new_ids(n, ids_host.data_ptr<int64_t>());
  do_add_tensor(keys.to(at::kFloat), ids_host);
  ids_.insert(ids_host.data_ptr<int64_t>(), ids_host.data_ptr<int64_t>() + n);
}

SearchResult VectorIndex::search(const at::Tensor& queries, int64_t k) const {
  check_tensor_rows(queries, "search");
  SEMSKIP_THROW_IF_NOT_MSG(k >= 1, "index '{}': search: k must be ≥ 1, got {}", descriptor_, k);
  const int64_t n = queries.size(0);
  const auto on_queries = at::TensorOptions().device(queries.device());
  if (size() == 0 || n == 0) {
    return {at::full({n, k}, kNoSimilarity, on_queries.dtype(at::kFloat)),
            at::full({n, k}, int64_t{-1}, on_queries.dtype(at::kLong))};
  }
  SearchResult r = do_search_tensor(queries.to(at::kFloat), k);
  if (!search_marks_missing()) r.similarities.masked_fill_(r.ids.lt(0), kNoSimilarity);
  return r;
}

int64_t VectorIndex::remove(const at::Tensor& ids) {
  SEMSKIP_THROW_IF_NOT_MSG(ids.defined() && ids.dim() == 1 && ids.scalar_type() == at::kLong,
                           "index '{}': remove: ids must be a 1-D int64 tensor", descriptor_);
  at::Tensor host = ids.to(at::kCPU).contiguous();  // int64 [n]
  return remove(host.size(0), host.data_ptr<int64_t>());
}

void VectorIndex::do_add_tensor(const at::Tensor& keys, const at::Tensor& ids_host) {
  at::Tensor host = keys.to(at::kCPU).contiguous();  // float32 [n, dim]
  const int64_t n = host.size(0);
  std::vector<float> unit(static_cast<size_t>(n * dim_));  // float32 [n, dim]
  l2_normalize_rows(n, dim_, host.data_ptr<float>(), unit.data());
  do_add(n, unit.data(), ids_host.data_ptr<int64_t>());
}

SearchResult VectorIndex::do_search_tensor(const at::Tensor& queries, int64_t k) const {
  at::Tensor host = queries.to(at::kCPU).contiguous();  // float32 [n, dim]
  const int64_t n = host.size(0);
  std::vector<float> unit(static_cast<size_t>(n * dim_));  // float32 [n, dim]
  l2_normalize_rows(n, dim_, host.data_ptr<float>(), unit.data());
  at::Tensor sims = at::empty({n, k}, at::kFloat);  // float32 [n, k], host
  at::Tensor ids = at::empty({n, k}, at::kLong);    // int64 [n, k], host
  do_search(n, unit.data(), k, sims.data_ptr<float>(), ids.data_ptr<int64_t>());
  return {sims.to(queries.device()), ids.to(queries.device())};
}

}  // namespace semskip
