#include "index/torch_flat_index.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <ATen/detail/CUDAHooksInterface.h>

#include "core/error.h"
#include "core/strings.h"
#include "index/descriptor.h"
#include "index/lookup_cost.h"

#ifdef SEMSKIP_INDEX_CUDA_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "index/cuda/reduced_gemm.h"
#include "index/cuda/select_topk.h"
#include "index/cuda/small_search.h"
#endif

namespace semskip {

namespace {

#ifdef SEMSKIP_INDEX_CUDA_KERNELS
// One device allocation carved into the tensors of a search (each a view that keeps the
// allocation alive): at the sizes of a cache step (16k keys, 128 queries) the search is a few
// tens of microseconds, and a caching-allocator call per tensor is a visible part of it.
class DeviceArena {
 public:
  static constexpr int64_t kAlign = 256;
  static int64_t span(int64_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }
  DeviceArena(int64_t bytes, const at::TensorOptions& o) : buf_(at::empty({std::max<int64_t>(bytes, 1)}, o.dtype(at::kByte))) {}
  at::Tensor take(at::IntArrayRef sizes, at::ScalarType st) {
    int64_t numel = 1;
    for (int64_t s : sizes) numel *= s;
    const int64_t bytes = numel * static_cast<int64_t>(c10::elementSize(st));
    SEMSKIP_ASSERT(used_ + bytes <= buf_.numel());
    void* p = static_cast<char*>(buf_.data_ptr()) + used_;
    used_ += span(bytes);
    at::Tensor keep = buf_;
    return at::from_blob(p, sizes, [keep](void*) {}, buf_.options().dtype(st));
  }

 private:
  at::Tensor buf_;
  int64_t used_ = 0;
};
#endif

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

at::ScalarType parse_dtype(const std::string& descriptor, const std::string& text) {
  if (text == "fp32") return at::kFloat;
  if (text == "fp16") return at::kHalf;
  if (text == "bf16") return at::kBFloat16;
  SEMSKIP_THROW_MSG("index descriptor '{}': dtype '{}' is not fp32, fp16 or bf16", descriptor,
                    text);
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Results of fewer than k columns padded to k with (−inf, −1).
SearchResult pad_to_k(at::Tensor sims, at::Tensor ids, int64_t k) {
  const int64_t n = sims.size(0);
  const int64_t found = sims.size(1);
  if (found < k) {
    sims = at::cat({sims, at::full({n, k - found}, -std::numeric_limits<float>::infinity(),
                                   sims.options())}, 1);
    ids = at::cat({ids, at::full({n, k - found}, int64_t{-1}, ids.options())}, 1);
  }
  return {sims, ids};
}

#ifdef SEMSKIP_INDEX_CUDA_KERNELS
cuda::ScoreType score_type(at::ScalarType t) {
  if (t == at::kHalf) return cuda::ScoreType::f16;
  if (t == at::kBFloat16) return cuda::ScoreType::bf16;
  return cuda::ScoreType::f32;
}

void check_cuda(cudaError_t e, const std::string& descriptor, const char* what) {
  SEMSKIP_THROW_IF_NOT_MSG(e == cudaSuccess, "index '{}': {}: CUDA error: {}", descriptor, what,
                           cudaGetErrorString(e));
}
#endif

}  // namespace

TorchFlatIndex::TorchFlatIndex(IndexDescriptor desc, int64_t dim)
    : VectorIndex(desc.text(), dim), device_(at::kCPU), dtype_(at::kFloat), chunk_(kDefaultChunk),
      group_(kDefaultGroup) {
  SEMSKIP_THROW_IF_NOT_MSG(desc.body() == "flat",
                           "index descriptor '{}': the torch backend has only 'flat' (got '{}')",
                           describe(), desc.body());
  if (auto dev = desc.take("device")) device_ = parse_device(describe(), *dev);
  if (auto dt = desc.take("dtype")) dtype_ = parse_dtype(describe(), *dt);
  const bool reduced = dtype_ != at::kFloat;
  chunk_ = desc.take_int("chunk", reduced ? 0 : kDefaultChunk, 1);
  const std::optional<std::string> group_text = desc.take("group");
  group_given_ = group_text.has_value();
  if (group_text) {
    SEMSKIP_THROW_IF_NOT_MSG(reduced,
                             "index descriptor '{}': group applies to dtype=fp16 or bf16 only",
                             describe());
    group_ = parse_int(*group_text, fmt::format("index descriptor '{}': parameter group", describe()));
    SEMSKIP_THROW_IF_NOT_MSG(group_ >= 1 && group_ <= kRowAlign && (group_ & (group_ - 1)) == 0,
                             "index descriptor '{}': group={} must be a power of two in 1..{}",
                             describe(), group_, kRowAlign);
  }
  if (const std::optional<std::string> fused = desc.take("fused")) {
    SEMSKIP_THROW_IF_NOT_MSG(*fused == "auto" || *fused == "0" || *fused == "1",
                             "index descriptor '{}': fused={} must be auto, 0 or 1", describe(), *fused);
    SEMSKIP_THROW_IF_NOT_MSG(*fused == "auto" || (reduced && device_.is_cuda()),
                             "index descriptor '{}': fused={} applies to dtype=fp16 or bf16 on a CUDA device",
                             describe(), *fused);
    fused_ = *fused == "auto" ? Fused::kAuto : *fused == "1" ? Fused::kOn : Fused::kOff;
  }
  desc.check_all_taken("device, dtype, chunk, group, fused");
  // A chunk is a whole number of groups, so stage 1 never splits a group between chunks.
  if (reduced && chunk_ > 0) chunk_ = round_up(chunk_, group_);
  const auto opts = at::TensorOptions().device(device_);
  keys_ = at::empty({0, dim}, opts.dtype(dtype_));
  row_ids_ = at::empty({0}, opts.dtype(at::kLong));
  if (reduced) {
    // Refused here rather than at the first search: LibTorch 1.13 has no fp16 matmul on CPU.
    try {
      at::Tensor probe = at::zeros({2, 8}, opts.dtype(dtype_));
      (void)at::mm(probe, probe.t()).topk(1, 1);
      (void)probe.view({2, 2, 4}).amax(2);
    } catch (const c10::Error&) {
      SEMSKIP_THROW_MSG("index descriptor '{}': this LibTorch cannot multiply {} tensors on {} "
                        "(use dtype=bf16 or fp32 there)",
                        describe(), c10::toString(dtype_), device_.str());
    }
  }
}

at::Tensor TorchFlatIndex::normalized(const at::Tensor& x, at::Tensor* reduced, void* arena) const {
  at::Tensor xf = x.to(device_, at::kFloat);
#ifdef SEMSKIP_INDEX_CUDA_KERNELS
  if (device_.is_cuda()) {
    // One kernel for norm, clamp and division (and the rounding to dtype_).
    xf = xf.contiguous();
    const c10::cuda::CUDAGuard guard(device_);
    auto* a = static_cast<DeviceArena*>(arena);
    at::Tensor out = a ? a->take(xf.sizes(), at::kFloat) : at::empty_like(xf);
    void* out_reduced = nullptr;
    if (reduced && dtype_ != at::kFloat) {
      *reduced = a ? a->take(xf.sizes(), dtype_) : at::empty(xf.sizes(), xf.options().dtype(dtype_));
      out_reduced = reduced->data_ptr();
    }
    check_cuda(cuda::normalize_rows(xf.data_ptr<float>(), xf.size(0), xf.size(1), out.data_ptr<float>(),
                                    score_type(dtype_), out_reduced,
                                    c10::cuda::getCurrentCUDAStream(device_.index()).stream()),
               describe(), "normalising queries");
    return out;
  }
#endif
  // clamp_min keeps a zero row at zero, as l2_normalize_rows does on the host.
  return xf / xf.norm(2, {1}, /*keepdim=*/true).clamp_min(std::numeric_limits<float>::min());
}

void TorchFlatIndex::append(const at::Tensor& keys_unit, const int64_t* ids) {
  const int64_t n = keys_unit.size(0);
  const int64_t n_rows = rows_.n_rows();
  const int64_t capacity = keys_.size(0);
  if (n_rows + n > capacity) {
    // Doubling keeps a stream of small adds (one per decode step) amortised O(1) per key.
    const int64_t new_capacity = round_up(std::max({n_rows + n, 2 * capacity, kRowAlign}), kRowAlign);
    at::Tensor keys = at::empty({new_capacity, dim()}, keys_.options());
    at::Tensor row_ids = at::empty({new_capacity}, row_ids_.options());
    keys.narrow(0, 0, n_rows).copy_(keys_.narrow(0, 0, n_rows));
    row_ids.narrow(0, 0, n_rows).copy_(row_ids_.narrow(0, 0, n_rows));
    keys_ = std::move(keys);
    row_ids_ = std::move(row_ids);
  }
  keys_.narrow(0, n_rows, n).copy_(keys_unit);  // rounds to dtype_ on the way in
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
#ifdef SEMSKIP_INDEX_CUDA_KERNELS
  if (selects_on_gpu(k)) return search_cuda(queries_unit, at::Tensor(), k);
#endif
  if (dtype_ != at::kFloat) return search_reduced(queries_unit, k);
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
  return pad_to_k(best_sims, row_ids_.index_select(0, best_rows.reshape({-1})).view({n, found}), k);
}

int64_t TorchFlatIndex::selection_width(int64_t k) const {
  return std::min(dtype_ != at::kFloat ? k + kRescoreSlack : k, rows_.n_rows());
}

int64_t TorchFlatIndex::reduced_chunk(int64_t n_queries) const {
  if (chunk_ > 0) return chunk_;
  const int64_t elem = static_cast<int64_t>(c10::elementSize(dtype_));
  return std::max(group_, kScoreBudgetBytes / (std::max<int64_t>(n_queries, 1) * elem) / group_ * group_);
}

SearchResult TorchFlatIndex::search_reduced(const at::Tensor& queries_unit, int64_t k) const {
  const int64_t n = queries_unit.size(0);
  const int64_t n_rows = rows_.n_rows();
  const float no_similarity = -std::numeric_limits<float>::infinity();
  const int64_t n_cand = selection_width(k);  // k'
  const int64_t chunk = reduced_chunk(n);
  at::Tensor q = queries_unit.to(dtype_);  // dtype_ [n, dim]
  at::Tensor best_scores;                  // dtype_ [n, ≤k'] on device_, stage-1 scores
  at::Tensor best_rows;                    // int64 [n, ≤k'] on device_, rows of keys_
  for (int64_t start = 0; start < n_rows; start += chunk) {
    const int64_t len = std::min(chunk, n_rows - start);
    // Whole groups: the rows past n_rows (inside the buffer, kRowAlign) are scored and then
    // masked, which is cheaper than copying the chunk into a padded one.
    const int64_t padded = round_up(len, group_);
    at::Tensor scores = at::mm(q, keys_.narrow(0, start, padded).t());  // dtype_ [n, padded]
    if (padded > len) scores.narrow(1, len, padded - len).fill_(no_similarity);
    const int64_t take = std::min(n_cand, len);
    const int64_t n_groups = padded / group_;
    at::Tensor top_scores, top_rows;  // [n, take]
    if (group_ > 1 && n_groups > take && (group_given_ || padded >= kGroupedMinRows)) {
      at::Tensor group_max = scores.view({n, n_groups, group_}).amax(2);       // [n, n_groups]
      at::Tensor groups = std::get<1>(group_max.topk(take, 1, true, false));  // [n, take]
      at::Tensor cols = (groups.unsqueeze(2) * group_ +
                         at::arange(group_, groups.options()).view({1, 1, group_}))
                            .view({n, take * group_});                         // [n, take·group]
      auto top = scores.gather(1, cols).topk(take, 1, true, false);
      top_scores = std::get<0>(top);
      top_rows = cols.gather(1, std::get<1>(top));
    } else {
      auto top = scores.topk(take, 1, true, false);
      top_scores = std::get<0>(top);
      top_rows = std::get<1>(top);
    }
    top_rows.add_(start);
    if (!best_scores.defined()) {
      best_scores = top_scores;
      best_rows = top_rows;
      continue;
    }
    at::Tensor cat_scores = at::cat({best_scores, top_scores}, 1);
    at::Tensor cat_rows = at::cat({best_rows, top_rows}, 1);
    auto merged = cat_scores.topk(std::min(n_cand, cat_scores.size(1)), 1, true, false);
    best_scores = std::get<0>(merged);
    best_rows = cat_rows.gather(1, std::get<1>(merged));
  }
  return rescore(queries_unit, best_rows, k);
}

SearchResult TorchFlatIndex::rescore(const at::Tensor& queries_unit, const at::Tensor& cand_rows,
                                     int64_t k) const {
  // Stage 2: the candidates' keys, widened, against the float32 queries.
  const int64_t n = queries_unit.size(0);
  const int64_t found_cand = cand_rows.size(1);
  at::Tensor cand_keys = keys_.index_select(0, cand_rows.reshape({-1}))
                             .view({n, found_cand, dim()})
                             .to(at::kFloat);                              // float32 [n, k', dim]
  at::Tensor exact = at::bmm(cand_keys, queries_unit.unsqueeze(2)).squeeze(2);  // [n, k']
  const int64_t found = std::min(k, found_cand);
  auto top = exact.topk(found, 1, true, true);
  at::Tensor rows = cand_rows.gather(1, std::get<1>(top));
  return pad_to_k(std::get<0>(top), row_ids_.index_select(0, rows.reshape({-1})).view({n, found}), k);
}

#ifdef SEMSKIP_INDEX_CUDA_KERNELS
bool TorchFlatIndex::selects_on_gpu(int64_t k) const {
  return device_.is_cuda() && selection_width(k) <= cuda::kMaxSelect;
}

int64_t TorchFlatIndex::gpu_chunk(int64_t n_queries) const {
  return dtype_ != at::kFloat ? reduced_chunk(n_queries) : chunk_;
}

int64_t TorchFlatIndex::score_stride(int64_t start, int64_t len) const {
  return std::min(round_up(len, 8), keys_.size(0) - start);
}

SearchResult TorchFlatIndex::search_cuda(const at::Tensor& queries_unit, const at::Tensor& queries_reduced,
                                         int64_t k, void* arena) const {
  const c10::cuda::CUDAGuard guard(device_);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
  const int64_t n = queries_unit.size(0);
  const int64_t n_rows = rows_.n_rows();
  const bool reduced = dtype_ != at::kFloat;
  const int64_t take = selection_width(k);  // k' or k
  const int sel = static_cast<int>(take);
  const cuda::ScoreType type = score_type(dtype_);
  const int64_t chunk = gpu_chunk(n);
  const int64_t n_chunks = (n_rows + chunk - 1) / chunk;
  const at::Tensor q = !reduced ? queries_unit
                                : queries_reduced.defined() ? queries_reduced : queries_unit.to(dtype_);
  const auto on_device = queries_unit.options();
  // fp32: the k best similarities and their ids from the selection; reduced: the k' best rows
  // rescored in float32 by the selection's last launch, the k best of them.
  const int64_t found = std::min(k, take);  // = take for fp32
  auto* a = n_chunks == 1 ? static_cast<DeviceArena*>(arena) : nullptr;
  at::Tensor sims = a ? a->take({n, found}, at::kFloat) : at::empty({n, found}, on_device.dtype(at::kFloat));
  at::Tensor ids = a ? a->take({n, found}, at::kLong) : at::empty({n, found}, on_device.dtype(at::kLong));
  const at::Tensor qf = queries_unit.contiguous();
  const cuda::Rescore rescore = reduced ? rescore_into(qf, sims, ids) : cuda::Rescore{};
  const cuda::Rescore* stage2 = reduced ? &rescore : nullptr;
  void* out_sims = reduced ? nullptr : sims.data_ptr();
  int64_t* out_ids = reduced ? nullptr : ids.data_ptr<int64_t>();
  const int64_t* col_ids = row_ids_.data_ptr<int64_t>();
  // A chunk's scores [n, len] are laid out with a row stride of whole 16-byte vectors (the
  // extra keys scored lie inside the buffer, past the chunk, and are not selected).
  auto score_chunk = [&](int64_t start, int64_t len) {
    return at::mm(q, keys_.narrow(0, start, score_stride(start, len)).t());  // dtype_ [n, ld]
  };
  if (n_chunks == 1) {
    at::Tensor scores;
    at::Tensor ws;
    if (a) {
      const int64_t ld = score_stride(0, n_rows);
      scores = a->take({n, ld}, dtype_);
      // Half precision: cuBLAS straight (index/cuda/reduced_gemm.h), else through LibTorch.
      // SEMSKIP_INDEX_DIRECT_GEMM=0: always through LibTorch (to measure what this saves).
      static const bool direct = [] {
        const char* v = std::getenv("SEMSKIP_INDEX_DIRECT_GEMM");
        return v == nullptr || std::string(v) != "0";
      }();
      if (!direct || !reduced || !q.is_contiguous() || !keys_.is_contiguous() ||
          !cuda::reduced_gemm(at::cuda::getCurrentCUDABlasHandle(), type, keys_.data_ptr(), q.data_ptr(), n, ld,
                              dim(), scores.data_ptr()))
        at::mm_out(scores, q, keys_.narrow(0, 0, ld).t());
      ws = a->take({cuda::select_workspace_bytes(n, n_rows, sel)}, at::kByte);
    } else {
      scores = score_chunk(0, n_rows);
      ws = at::empty({cuda::select_workspace_bytes(n, n_rows, sel)}, on_device.dtype(at::kByte));
    }
    check_cuda(cuda::select_topk(type, scores.data_ptr(), n, n_rows, scores.size(1), sel, col_ids, out_sims,
                                 out_ids, ws.data_ptr(), stream, stage2),
               describe(), "search");
  } else {
    // Each chunk's k best into its columns of cand, then the k best of those.
    const int64_t m = n_chunks * take;
    at::Tensor cand = at::empty({n, m}, on_device.dtype(at::kLong));  // packed words
    auto* words = reinterpret_cast<uint64_t*>(cand.data_ptr<int64_t>());
    at::Tensor ws = at::empty({std::max(cuda::select_workspace_bytes(n, chunk, sel),
                                        cuda::finish_workspace_bytes(n, m, sel))},
                              on_device.dtype(at::kByte));
    for (int64_t c = 0; c < n_chunks; ++c) {
      const int64_t start = c * chunk;
      const int64_t len = std::min(chunk, n_rows - start);
      const at::Tensor scores = score_chunk(start, len);
      check_cuda(cuda::select_candidates(type, scores.data_ptr(), n, len, scores.size(1), sel, start, words,
                                         m, c * take, ws.data_ptr(), stream),
                 describe(), "search");
    }
    check_cuda(cuda::select_finish(type, words, n, m, m, sel, col_ids, out_sims, out_ids, ws.data_ptr(), stream,
                                   stage2),
               describe(), "search");
  }
  return pad_to_k(sims, ids, k);
}
#endif

void TorchFlatIndex::do_search(int64_t n, const float* queries_unit, int64_t k,
                               float* similarities, int64_t* ids) const {
  at::Tensor q = at::from_blob(const_cast<float*>(queries_unit), {n, dim()}, at::kFloat);
  SearchResult r = search_unit(q.to(device_), k);
  at::from_blob(similarities, {n, k}, at::kFloat).copy_(r.similarities);
  at::from_blob(ids, {n, k}, at::kLong).copy_(r.ids);
}

#ifdef SEMSKIP_INDEX_CUDA_KERNELS
cuda::Rescore TorchFlatIndex::rescore_into(const at::Tensor& queries_unit, at::Tensor& sims, at::Tensor& ids) const {
  cuda::Rescore r;
  r.keys = keys_.data_ptr();
  r.dim = dim();
  r.queries = queries_unit.data_ptr<float>();
  r.k = static_cast<int>(sims.size(1));
  r.row_ids = row_ids_.data_ptr<int64_t>();
  r.out_sims = sims.data_ptr<float>();
  r.out_ids = ids.data_ptr<int64_t>();
  return r;
}

bool TorchFlatIndex::searches_small(int64_t n, int64_t k) const {
  const int64_t n_rows = rows_.n_rows();
  const int take = static_cast<int>(selection_width(k));
  if (fused_ == Fused::kOff || n <= 0 || n_rows <= 0 || !cuda::small_search_fits(score_type(dtype_), dim(), take) ||
      cuda::small_candidate_width(n_rows, n, take) > cuda::kSegment)
    return false;
  if (fused_ == Fused::kOn) return true;
  // auto: where the two-launch path was the faster of the two in the H200 sweep of
  // bench/results/gpu_index.md (1k–512k keys, d 64–896, 1–128 queries, k = 10): one group of
  // queries against up to 2^25 key elements, or up to 2^19 (query, key) pairs and 2^23 key
  // elements × query groups. Beyond, re-reading the keys per group of 16 queries and
  // selecting per slice cost more than the matmul path's launches.
  const int64_t groups = (n + cuda::kTileQueries - 1) / cuda::kTileQueries;
  const int64_t key_elements = n_rows * dim();
  return (groups == 1 && key_elements <= (int64_t{1} << 25)) ||
         (n_rows * n <= (int64_t{1} << 19) && key_elements * groups <= (int64_t{1} << 23));
}

SearchResult TorchFlatIndex::search_small(const at::Tensor& queries, int64_t k) const {
  const c10::cuda::CUDAGuard guard(device_);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_.index()).stream();
  const at::Tensor x = queries.to(device_, at::kFloat).contiguous();  // float32 [n, dim]
  const int64_t n = x.size(0);
  const int64_t n_rows = rows_.n_rows();
  const int sel = static_cast<int>(selection_width(k));  // k'
  const int64_t found = std::min<int64_t>(k, sel);
  const int64_t m = cuda::small_candidate_width(n_rows, n, sel);
  const int64_t ws_bytes = cuda::finish_workspace_bytes(n, m, sel);
  DeviceArena a(DeviceArena::span(n * dim() * 4) + DeviceArena::span(n * m * 8) + DeviceArena::span(n * found * 4) +
                    DeviceArena::span(n * found * 8) + DeviceArena::span(ws_bytes),
                keys_.options());
  at::Tensor unit = a.take({n, dim()}, at::kFloat);  // the normalised queries, for the rescoring
  at::Tensor cand = a.take({n, m}, at::kLong);        // packed words
  at::Tensor sims = a.take({n, found}, at::kFloat);
  at::Tensor ids = a.take({n, found}, at::kLong);
  at::Tensor ws = a.take({ws_bytes}, at::kByte);
  auto* words = reinterpret_cast<uint64_t*>(cand.data_ptr<int64_t>());
  const cuda::ScoreType type = score_type(dtype_);
  check_cuda(cuda::small_candidates(type, x.data_ptr<float>(), n, dim(), keys_.data_ptr(), n_rows, sel,
                                    unit.data_ptr<float>(), words, stream),
             describe(), "search");
  const cuda::Rescore rescore = rescore_into(unit, sims, ids);
  check_cuda(cuda::select_finish(type, words, n, m, m, sel, rescore.row_ids, nullptr, nullptr, ws.data_ptr(), stream,
                                 &rescore),
             describe(), "search");
  return pad_to_k(sims, ids, k);
}
#endif

SearchResult TorchFlatIndex::do_search_tensor(const at::Tensor& queries, int64_t k) const {
#ifdef SEMSKIP_INDEX_CUDA_KERNELS
  if (selects_on_gpu(k)) {
    if (searches_small(queries.size(0), k)) {
      SearchResult r = search_small(queries, k);
      return {r.similarities.to(queries.device()), r.ids.to(queries.device())};
    }
    // A search whose keys are scored in one chunk takes all its buffers from one allocation:
    // the normalised queries (and their dtype_ rounding), the scores, the selection's
    // workspace and the results.
    const int64_t n = queries.size(0), n_rows = rows_.n_rows();
    const bool reduced_type = dtype_ != at::kFloat;
    // SEMSKIP_INDEX_ARENA=0: a caching-allocator call per buffer (to measure what this saves).
    static const bool use_arena = [] {
      const char* v = std::getenv("SEMSKIP_INDEX_ARENA");
      return v == nullptr || std::string(v) != "0";
    }();
    std::optional<DeviceArena> arena;
    if (use_arena && n > 0 && n_rows > 0 && n_rows <= gpu_chunk(n)) {
      const int64_t take = selection_width(k), found = std::min(k, take);
      const int64_t elem = static_cast<int64_t>(c10::elementSize(dtype_));
      const int64_t ld = score_stride(0, n_rows);
      const int64_t bytes = DeviceArena::span(n * dim() * 4) + (reduced_type ? DeviceArena::span(n * dim() * elem) : 0) +
                            DeviceArena::span(n * found * 4) + DeviceArena::span(n * found * 8) +
                            DeviceArena::span(n * ld * elem) +
                            DeviceArena::span(cuda::select_workspace_bytes(n, n_rows, static_cast<int>(take)));
      const c10::cuda::CUDAGuard guard(device_);
      arena.emplace(bytes, keys_.options());
    }
    at::Tensor reduced;
    const at::Tensor unit = normalized(queries, &reduced, arena ? &*arena : nullptr);
    SearchResult r = search_cuda(unit, reduced, k, arena ? &*arena : nullptr);
    return {r.similarities.to(queries.device()), r.ids.to(queries.device())};
  }
#endif
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
  return keys_.numel() * static_cast<int64_t>(keys_.element_size()) + row_ids_.numel() * 8 +
         rows_.memory_bytes() + id_bookkeeping_bytes();
}

}  // namespace semskip
