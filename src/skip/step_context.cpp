#include "skip/step_context.h"

#include "core/error.h"

namespace semskip {

StepContext::StepContext(int64_t n_layers, int64_t hidden, at::Tensor valid, std::vector<int64_t> rows,
                         bool prefill)
    : n_layers_(n_layers),
      hidden_(hidden),
      valid_(std::move(valid)),
      rows_(std::move(rows)),
      prefill_(prefill),
      skip_block_(n_layers),
      skip_mlp_(n_layers),
      mlp_replacement_(n_layers),
      jump_(n_layers),
      skipped_by_all_(static_cast<size_t>(n_layers), false) {
  SEMSKIP_ASSERT(valid_.dim() == 2 && valid_.scalar_type() == at::kBool);
  SEMSKIP_ASSERT(static_cast<int64_t>(rows_.size()) == valid_.size(0));
}

void StepContext::set_skipped_by_all(int64_t layer) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers_);
  skipped_by_all_[static_cast<size_t>(layer)] = true;
}

at::Tensor& StepContext::skip_block(int64_t layer) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers_);
  at::Tensor& t = skip_block_[layer];
  if (!t.defined()) t = at::zeros_like(valid_);
  return t;
}

at::Tensor& StepContext::skip_mlp(int64_t layer) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers_);
  at::Tensor& t = skip_mlp_[layer];
  if (!t.defined()) t = at::zeros_like(valid_);
  return t;
}

at::Tensor& StepContext::mlp_replacement(int64_t layer, const at::TensorOptions& opts) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers_);
  at::Tensor& t = mlp_replacement_[layer];
  if (!t.defined()) t = at::zeros({batch(), n_step_tokens(), hidden_}, opts);
  return t;
}

at::Tensor& StepContext::jump(int64_t layer, const at::TensorOptions& opts) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers_);
  at::Tensor& t = jump_[layer];
  if (!t.defined()) t = at::zeros({batch(), n_step_tokens(), hidden_}, opts);
  return t;
}

}  // namespace semskip
