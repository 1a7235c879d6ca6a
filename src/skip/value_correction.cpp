#include "skip/value_correction.h"

#include "core/error.h"
#include "metrics/flop_counter.h"
#include "skip/state_io.h"

namespace semskip {

ValueCorrection::ValueCorrection(int64_t rank, double ridge, int64_t input_dim, int64_t value_dim)
    : rank_(rank), ridge_(ridge), d_(input_dim), D_(value_dim) {
  SEMSKIP_THROW_IF_NOT_MSG(rank_ >= 0 && rank_ <= std::min(d_, D_),
                           "value correction of rank {}: must be in 0..{} (the smaller of the state and value widths)",
                           rank_, std::min(d_, D_));
  SEMSKIP_THROW_IF_NOT_MSG(ridge_ > 0.0, "value correction: ridge must be > 0, got {}", ridge_);
}

void ValueCorrection::fit(const at::Tensor& x, const at::Tensor& y) {
  if (!enabled()) return;
  SEMSKIP_THROW_IF_NOT_MSG(x.dim() == 2 && y.dim() == 2 && x.size(0) == y.size(0) && x.size(1) == d_ &&
                               y.size(1) == D_ && x.size(0) >= 1,
                           "value correction: calibration states [N, {}] and values [N, {}] needed", d_, D_);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  at::Tensor X = x.to(at::kCPU, at::kDouble);
  at::Tensor Y = y.to(at::kCPU, at::kDouble);
  X = X - X.mean(0, true);
  Y = Y - Y.mean(0, true);
  at::Tensor G = at::matmul(X.t(), X);  // [d, d]
  const double lambda = ridge_ * std::max(G.trace().item<double>() / static_cast<double>(d_), 1e-30);
  G = G + lambda * at::eye(d_, f64);
  const at::Tensor L = at::linalg_cholesky(G);  // G = L Lᵀ
  const at::Tensor B = at::cholesky_solve(at::matmul(X.t(), Y), L);  // [d, D]
  const at::Tensor C = at::matmul(L.t(), B);                           // [d, D]; CᵀC = Bᵀ G B
  auto eig = at::linalg_eigh(at::matmul(C, C.t()));                    // ascending, [d], [d, d]
  const at::Tensor s2 = std::get<0>(eig).slice(0, d_ - rank_, d_).flip({0});
  const at::Tensor uc = std::get<1>(eig).slice(1, d_ - rank_, d_).flip({1});  // [d, q]
  // Right singular vectors: W = Cᵀ u / σ (directions with σ ≈ 0 carry no fitted value).
  const at::Tensor sigma = s2.clamp_min(0).sqrt();
  const at::Tensor inv = at::where(sigma.gt(sigma.max() * 1e-12), sigma.reciprocal(), at::zeros_like(sigma));
  const at::Tensor W = at::matmul(C.t(), uc) * inv.unsqueeze(0);  // [D, q]
  u_ = at::matmul(B, W).to(at::kFloat).contiguous();               // [d, q]
  wt_ = W.t().to(at::kFloat).contiguous();                          // [q, D]
}

at::Tensor ValueCorrection::apply(const at::Tensor& h, FlopCounter* flops, int layer) const {
  SEMSKIP_ASSERT(enabled());
  SEMSKIP_THROW_IF_NOT_MSG(ready(), "value correction used before it was fitted on calibration states");
  SEMSKIP_THROW_IF_NOT_MSG(h.dim() == 2 && h.size(1) == d_, "value correction: expected [M, {}] states", d_);
  const at::Tensor u = u_.to(h.device(), h.scalar_type());
  const at::Tensor wt = wt_.to(h.device(), h.scalar_type());
  if (flops) {
    flops->add_matmul(layer, OpGroup::correction, h.size(0), rank_, d_);
    flops->add_matmul(layer, OpGroup::correction, h.size(0), D_, rank_);
  }
  return at::matmul(at::matmul(h, u), wt);
}

int64_t ValueCorrection::fit_flops(int64_t n) const {
  if (!enabled()) return 0;
  const int64_t d = d_, D = D_, q = rank_;
  return 2 * n * d * d + 2 * n * d * D + d * d * d / 3 + 2 * d * d * D + d * d * D + 2 * d * d * D + 9 * d * d * d +
         4 * d * D * q;
}

void ValueCorrection::save_state(StateWriter& w) const {
  w.tag("value_correction");
  w.i64s({rank_, d_, D_});
  w.tensor(u_);
  w.tensor(wt_);
}

void ValueCorrection::load_state(StateReader& r) {
  r.expect_tag("value_correction");
  const std::vector<int64_t> v = r.i64s();
  SEMSKIP_THROW_IF_NOT_MSG(v.size() == 3 && v[0] == rank_ && v[1] == d_ && v[2] == D_,
                           "{}: the saved value correction is of another rank or size than rank {} [{}, {}]", r.what(),
                           rank_, d_, D_);
  at::Tensor u = r.tensor();
  at::Tensor wt = r.tensor();
  SEMSKIP_THROW_IF_NOT_MSG(u.defined() == wt.defined() &&
                               (!u.defined() || (u.dim() == 2 && u.size(0) == d_ && u.size(1) == rank_ &&
                                                 wt.dim() == 2 && wt.size(0) == rank_ && wt.size(1) == D_ &&
                                                 u.scalar_type() == at::kFloat && wt.scalar_type() == at::kFloat)),
                           "{}: the saved value correction is damaged", r.what());
  u_ = u;
  wt_ = wt;
}

}  // namespace semskip
