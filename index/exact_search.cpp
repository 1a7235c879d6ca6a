#include "index/exact_search.h"

#include <algorithm>
#include <limits>

#include <ATen/ATen.h>

#include "core/error.h"

namespace semskip {

namespace {

constexpr int64_t kBlock = 16384;

at::Tensor unit_rows_f64(const float* x, int64_t n, int64_t dim) {
  at::Tensor t = at::from_blob(const_cast<float*>(x), {n, dim}, at::kFloat).to(at::kDouble);
  return t / t.norm(2, {1}, /*keepdim=*/true).clamp_min(std::numeric_limits<double>::min());
}

}  // namespace

void exact_search(int64_t n_keys, const float* keys, int64_t n_queries, const float* queries,
                  int64_t dim, int64_t k, int64_t* rows, double* similarities) {
  SEMSKIP_THROW_IF_NOT_MSG(n_keys >= 0 && n_queries >= 0 && dim > 0 && k >= 1,
                           "exact_search: bad sizes n_keys={} n_queries={} dim={} k={}", n_keys,
                           n_queries, dim, k);
  at::Tensor out_rows = at::full({n_queries, k}, int64_t{-1}, at::kLong);  // int64 [nq, k]
  at::Tensor out_sims = at::full({n_queries, k}, -std::numeric_limits<double>::infinity(), at::kDouble);
  if (n_queries > 0 && n_keys > 0) {
    at::Tensor q = unit_rows_f64(queries, n_queries, dim);  // float64 [nq, dim]
    at::Tensor best_sims, best_rows;                         // [nq, ≤k]
    for (int64_t start = 0; start < n_keys; start += kBlock) {
      const int64_t len = std::min(kBlock, n_keys - start);
      at::Tensor s = at::mm(q, unit_rows_f64(keys + start * dim, len, dim).t());  // [nq, len]
      if (best_sims.defined()) {
        s = at::cat({best_sims, s}, 1);
      }
      at::Tensor block_rows = at::arange(start, start + len, at::kLong).expand({n_queries, len});
      at::Tensor cand_rows = best_rows.defined() ? at::cat({best_rows, block_rows}, 1) : block_rows;
      auto top = s.topk(std::min(k, s.size(1)), 1, /*largest=*/true, /*sorted=*/true);
      best_sims = std::get<0>(top);
      best_rows = cand_rows.gather(1, std::get<1>(top));
    }
    const int64_t found = best_sims.size(1);
    out_rows.narrow(1, 0, found).copy_(best_rows);
    out_sims.narrow(1, 0, found).copy_(best_sims);
  }
  std::copy_n(out_rows.data_ptr<int64_t>(), n_queries * k, rows);
  if (similarities) std::copy_n(out_sims.data_ptr<double>(), n_queries * k, similarities);
}

}  // namespace semskip
