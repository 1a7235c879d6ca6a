#include "metrics/finite_check.h"

#include <fmt/format.h>

#include "core/error.h"

namespace semskip {

FiniteFlags::FiniteFlags(int64_t n_slots, at::Device device)
    : flags_(at::ones({n_slots}, at::TensorOptions().dtype(at::kBool).device(device))) {
  SEMSKIP_THROW_IF_NOT_MSG(n_slots >= 1, "FiniteFlags: needs at least one slot, got {}", n_slots);
}

void FiniteFlags::fold(int64_t slot, const at::Tensor& x) {
  SEMSKIP_THROW_IF_NOT_MSG(slot >= 0 && slot < flags_.size(0), "FiniteFlags: slot {} outside [0, {})", slot,
                           flags_.size(0));
  if (!x.defined() || x.numel() == 0 || !at::isFloatingType(x.scalar_type())) return;
  at::Tensor ok = at::isfinite(x).all();
  if (ok.device() != flags_.device()) ok = ok.to(flags_.device(), /*non_blocking=*/true);
  flags_[slot].logical_and_(ok);
}

int64_t FiniteFlags::first_bad() const {
  const at::Tensor bad = flags_.logical_not().cpu();
  const bool* p = bad.data_ptr<bool>();
  for (int64_t i = 0; i < bad.size(0); ++i)
    if (p[i]) return i;
  return -1;
}

NonFiniteCount count_non_finite(const at::Tensor& t) {
  NonFiniteCount c;
  c.numel = t.numel();
  if (c.numel == 0 || !at::isFloatingType(t.scalar_type())) return c;
  c.n_nan = at::isnan(t).sum().item<int64_t>();
  c.n_inf = at::isinf(t).sum().item<int64_t>();
  return c;
}

std::string describe(const NonFiniteCount& c) {
  return fmt::format("{} NaN, {} inf of {} values", c.n_nan, c.n_inf, c.numel);
}

}  // namespace semskip
