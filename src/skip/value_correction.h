#pragma once
// A cheap low-rank correction of cached values (residual:...,corr=<q>): a cache hit reuses
// the value v_c stored for a neighbour whose probe state h_c is close to the token's h_p, not
// equal to it. The correction adds the first-order change of the value with the state,
// estimated once from the calibration tokens by reduced-rank ridge regression:
//
//     v̂(h_p) = v_c + A (h_p − h_c),   A = U·Wᵀ of rank q,  U = B·W [d, q],  W [D, q]
//
// B [d, D] is the ridge regression of the centred values on the centred probe states
// (B = (XᵀX + λI)⁻¹ XᵀY, λ = ridge · trace(XᵀX) / d), and W spans the q leading right
// singular vectors of the fitted values X·B (computed from the d × d problem: with
// XᵀX + λI = LLᵀ, the right singular vectors of LᵀB). A is the rank-q map whose fitted
// values are closest to Y's in the training metric; q ≪ d keeps it cheap.
//
// The cache stores v_c − A h_c (computed at insertion), so a hit adds A h_p to the
// (similarity-weighted) stored value: exact for k > 1 too, the weights summing to one, and
// nothing else (no state h_c) is kept per entry. Per token, A h costs 2·d·q + 2·q·D FLOPs;
// the policy charges it for every hit and every inserted miss (group correction) and the fit
// once (group train, fit_flops()).

#include <cstdint>

#include <ATen/ATen.h>

namespace semskip {

class FlopCounter;
class StateWriter;
class StateReader;

class ValueCorrection {
 public:
  // rank 0: no correction (apply() is never called). ridge > 0.
  ValueCorrection(int64_t rank, double ridge, int64_t input_dim, int64_t value_dim);

  int64_t rank() const { return rank_; }
  bool enabled() const { return rank_ > 0; }
  bool ready() const { return !enabled() || u_.defined(); }

  // x: [N, d] probe states, y: [N, D] their values (any float dtype; fitted in fp64 on the
  // CPU). N ≥ 1.
  void fit(const at::Tensor& x, const at::Tensor& y);
  // A·h for h [M, d]: [M, D] in h's dtype and device. Charges 2·M·(d·q + q·D) to `flops`
  // under `layer` (group correction) when given.
  at::Tensor apply(const at::Tensor& h, FlopCounter* flops, int layer) const;

  // The fit's FLOPs on n samples: XᵀX 2·n·d², XᵀY 2·n·d·D, the Cholesky factor d³/3, the
  // solve for B 2·d²·D, LᵀB d²·D, its Gram matrix 2·d²·D, the d × d eigendecomposition 9·d³
  // (an estimate, as for the PCA key projection), W and U 2·d·D·q each.
  int64_t fit_flops(int64_t n_samples) const;

  void save_state(StateWriter& w) const;
  void load_state(StateReader& r);

 private:
  int64_t rank_;
  double ridge_;
  int64_t d_, D_;
  at::Tensor u_;   // fp32 [d, q]
  at::Tensor wt_;  // fp32 [q, D]
};

}  // namespace semskip
