#include "metrics/finite_check.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

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

StepFiniteGuard::StepFiniteGuard(int64_t n_layers, at::Device device, std::string run, int64_t step,
                                 std::vector<std::string> row_names)
    : flags_(n_layers + 1, device), n_layers_(n_layers), run_(std::move(run)), step_(step),
      row_names_(std::move(row_names)) {}

void StepFiniteGuard::check(const at::Tensor& logits, bool prefill) const {
  const int64_t bad = flags_.first_bad();
  if (bad < 0) return;
  // The error path only: which rows' logits are not finite (all rows when none are, as a
  // non-finite hidden state that a skip replaced never reaches the logits).
  std::vector<std::string> named;
  if (logits.defined() && logits.dim() >= 1 && logits.size(0) == static_cast<int64_t>(row_names_.size())) {
    const at::Tensor row_ok = at::isfinite(logits).flatten(1).all(1).cpu();
    for (int64_t b = 0; b < row_ok.size(0); ++b)
      if (!row_ok[b].item<bool>()) named.push_back(row_names_[static_cast<size_t>(b)]);
  }
  if (named.empty()) named = row_names_;
  const std::string where =
      bad < n_layers_ ? fmt::format("first at the output of layer {} of {}", bad, n_layers_) : "first in the logits";
  SEMSKIP_THROW_MSG("non-finite values (NaN or inf) in {} at step {} ({}), {}; {}: {}; `semskip info --model "
                    "<folder> --check-weights` names non-finite weights",
                    run_, step_, prefill ? "prefill" : "a decode step", where,
                    named.size() == 1 ? "request" : "requests", fmt::join(named, ", "));
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
