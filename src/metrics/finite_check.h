#pragma once
// Non-finite values (NaN, ±inf) in logits, hidden states, cache values and weights. A NaN
// compares unequal to everything, so left alone it turns into perfect agreement or an
// immediate end-of-text; these checks make it an error that names where it first appeared.
//
// The run-time check is cheap by construction: FiniteFlags folds isfinite(x).all() into one
// bool per slot on the tensor's own device without reading it back, and the one host read
// (first_bad) happens where the caller synchronises anyway, or once at the end.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>

namespace semskip {

class FiniteFlags {
 public:
  // bool [n_slots] on `device`, all true. Slots are the caller's (layers, then the logits).
  FiniteFlags(int64_t n_slots, at::Device device);

  // flags[slot] &= all(isfinite(x)) on x's device; no host synchronisation. Integer and bool
  // tensors are finite by definition and skipped.
  void fold(int64_t slot, const at::Tensor& x);
  // The first slot that saw a non-finite value, or -1 (one host read).
  int64_t first_bad() const;
  int64_t n_slots() const { return flags_.size(0); }

 private:
  at::Tensor flags_;  // bool [n_slots], on the device of the folded tensors
};

// One engine step's guard (semskip run): the output of every layer and the logits folded into
// FiniteFlags on the device, read once when the step's forward ends (SkipEngine::step, before
// the policy's end of step inserts into a semantic cache). A non-finite value is an Error
// naming the run ("the full model", "policy 'P'"), the step, the first layer (or the logits)
// and the requests whose logits are not finite (every request of the step when the logits
// are). `row_names`: one per batch row ("request 3 (chat.jsonl:4)").
class StepFiniteGuard {
 public:
  StepFiniteGuard(int64_t n_layers, at::Device device, std::string run, int64_t step,
                  std::vector<std::string> row_names);

  void fold_layer(int64_t layer, const at::Tensor& h) { flags_.fold(layer, h); }
  void fold_logits(const at::Tensor& logits) { flags_.fold(n_layers_, logits); }
  // One host read; throws when a layer or the logits saw a non-finite value. `logits`
  // [B, S, V] (or [B, 1, V]) of the step, for the rows to name; `prefill`: which kind of step.
  void check(const at::Tensor& logits, bool prefill) const;

 private:
  FiniteFlags flags_;  // bool [n_layers + 1]: layers, then the logits
  int64_t n_layers_;
  std::string run_;
  int64_t step_;
  std::vector<std::string> row_names_;
};

// NaN and ±inf counts of one tensor (host read; for diagnostics and weight checks).
struct NonFiniteCount {
  int64_t n_nan = 0;
  int64_t n_inf = 0;
  int64_t numel = 0;
  bool any() const { return n_nan + n_inf > 0; }
};
NonFiniteCount count_non_finite(const at::Tensor& t);

// "3 NaN, 1 inf of 4096 values"
std::string describe(const NonFiniteCount& c);

}  // namespace semskip
