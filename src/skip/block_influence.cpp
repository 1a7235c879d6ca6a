#include "skip/block_influence.h"

#include "core/error.h"

namespace semskip {

at::Tensor block_influence(const at::Tensor& states) {
  SEMSKIP_THROW_IF_NOT_MSG(states.dim() == 3 && states.size(0) >= 2,
                           "block_influence: states must be [n_layers + 1, N, d]");
  at::Tensor s = states.to(at::kDouble);
  at::Tensor h_in = s.slice(0, 0, s.size(0) - 1);   // [L, N, d]
  at::Tensor h_out = s.slice(0, 1, s.size(0));      // [L, N, d]
  at::Tensor cos = at::cosine_similarity(h_in, h_out, /*dim=*/-1, /*eps=*/1e-12);  // [L, N]
  return (1.0 - cos).mean(1).cpu();
}

at::Tensor relative_update(const at::Tensor& states) {
  SEMSKIP_THROW_IF_NOT_MSG(states.size(0) >= 2, "relative_update: need at least two states");
  at::Tensor s = states.to(at::kFloat);
  at::Tensor h_in = s.slice(0, 0, s.size(0) - 1);
  at::Tensor h_out = s.slice(0, 1, s.size(0));
  return (h_out - h_in).norm(2, -1) / h_in.norm(2, -1).clamp_min(1e-12);
}

}  // namespace semskip
