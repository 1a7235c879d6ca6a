#include "model/kv_cache.h"

#include <algorithm>

#include "core/error.h"

#ifdef SEMSKIP_MODEL_CUDA_KERNELS
#include <optional>

#include <c10/cuda/CUDAGuard.h>

#include "model/cuda/fused_dispatch.h"
#endif

namespace semskip {

namespace {

#ifdef SEMSKIP_MODEL_CUDA_KERNELS
// K and V at the slot in one launch (model/cuda/fused_ops.h); false where it does not apply.
// SEMSKIP_FUSED_KV=0 turns it off.
bool write_slot_cuda(at::Tensor& kc, at::Tensor& vc, const at::Tensor& slot, const at::Tensor& k, const at::Tensor& v) {
  static const bool enabled = cuda::fused_enabled("SEMSKIP_FUSED_KV");
  const auto st = kc.scalar_type();
  const std::optional<cuda::ElemType> type = cuda::elem_type(st);
  if (!enabled || !type || !kc.is_cuda() || !kc.is_contiguous() || !vc.is_contiguous() || k.scalar_type() != st ||
      v.scalar_type() != st || vc.scalar_type() != st || k.stride(3) != 1 || v.stride(3) != 1 ||
      slot.scalar_type() != at::kLong || !slot.is_cuda())
    return false;
  const int64_t k_stride[2] = {k.stride(0), k.stride(1)};
  const int64_t v_stride[2] = {v.stride(0), v.stride(1)};
  const c10::cuda::CUDAGuard guard(kc.device());
  cuda::check(cuda::kv_write_slot(*type, kc.data_ptr(), vc.data_ptr(), kc.size(0), kc.size(1), kc.size(2), kc.size(3),
                                  slot.data_ptr<int64_t>(), k.data_ptr(), k_stride, v.data_ptr(), v_stride,
                                  cuda::stream_of(kc.device())),
              "KV cache: write at the slot");
  return true;
}
#endif

}  // namespace

KvCache::KvCache(int64_t n_layers, int64_t batch, int64_t n_kv_heads, int64_t head_dim, int64_t capacity,
                 at::ScalarType dtype, at::Device device)
    : batch_(batch), n_kv_heads_(n_kv_heads), head_dim_(head_dim), capacity_(std::max<int64_t>(capacity, 1)) {
  SEMSKIP_THROW_IF_NOT_MSG(n_layers > 0 && batch >= 0 && n_kv_heads > 0 && head_dim > 0,
                           "KV cache: layers, heads and head_dim must be > 0 and batch >= 0");
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < n_layers; ++l) {
    k_.push_back(at::zeros({batch_, n_kv_heads_, capacity_, head_dim_}, opts));
    v_.push_back(at::zeros({batch_, n_kv_heads_, capacity_, head_dim_}, opts));
  }
  length_.assign(static_cast<size_t>(n_layers), 0);
  visible_.resize(static_cast<size_t>(n_layers));
  valid_ = at::ones({batch_, capacity_}, opts.dtype(at::kBool));
}

int64_t KvCache::length(int64_t layer) const {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers());
  return length_[static_cast<size_t>(layer)];
}

void KvCache::grow(int64_t min_capacity) {
  int64_t cap = capacity_;
  while (cap < min_capacity) cap *= 2;
  const auto copy_into = [&](at::Tensor& t, int64_t used) {
    at::Tensor bigger = at::zeros({batch_, n_kv_heads_, cap, head_dim_}, t.options());
    bigger.narrow(2, 0, used).copy_(t.narrow(2, 0, used));
    t = bigger;
  };
  for (size_t l = 0; l < k_.size(); ++l) {
    copy_into(k_[l], length_[l]);
    copy_into(v_[l], length_[l]);
  }
  at::Tensor valid = at::ones({batch_, cap}, valid_.options());
  valid.narrow(1, 0, capacity_).copy_(valid_);
  valid_ = valid;
  for (at::Tensor& vis : visible_) {
    if (!vis.defined()) continue;
    at::Tensor bigger = at::ones({batch_, cap}, vis.options());
    bigger.narrow(1, 0, capacity_).copy_(vis);
    vis = bigger;
  }
  capacity_ = cap;
}

std::pair<at::Tensor, at::Tensor> KvCache::append(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers());
  SEMSKIP_ASSERT(k.dim() == 4 && k.size(0) == batch_ && k.size(1) == n_kv_heads_ && k.size(3) == head_dim_);
  const size_t l = static_cast<size_t>(layer);
  const int64_t start = length_[l];
  const int64_t n = k.size(2);
  if (start + n > capacity_) grow(start + n);
  k_[l].narrow(2, start, n).copy_(k);
  v_[l].narrow(2, start, n).copy_(v);
  length_[l] = start + n;
  if (visible_[l].defined()) visible_[l].narrow(1, start, n).copy_(valid_.narrow(1, start, n));
  return {k_[l].narrow(2, 0, start + n), v_[l].narrow(2, 0, start + n)};
}

void KvCache::write_rows(int64_t layer, int64_t n_tokens, const at::Tensor& rows, const at::Tensor& k,
                         const at::Tensor& v) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers());
  SEMSKIP_ASSERT(k.dim() == 3 && k.size(0) == rows.size(0) && k.size(1) == n_kv_heads_ && k.size(2) == head_dim_);
  const size_t l = static_cast<size_t>(layer);
  const int64_t start = length_[l];
  if (start + n_tokens > capacity_) grow(start + n_tokens);
  if (rows.size(0) == 0) return;
  const at::Tensor b = rows.div(n_tokens, "floor");
  const at::Tensor slot = rows.remainder(n_tokens) + start;
  // (b, :, slot, :) of [B, H, cap, hd] is (b, slot) of its [B, cap, H, hd] view.
  k_[l].permute({0, 2, 1, 3}).index_put_({b, slot}, k);
  v_[l].permute({0, 2, 1, 3}).index_put_({b, slot}, v);
}

void KvCache::advance(int64_t layer, int64_t n_tokens, const at::Tensor& visible) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers());
  const size_t l = static_cast<size_t>(layer);
  const int64_t start = length_[l];
  if (start + n_tokens > capacity_) grow(start + n_tokens);
  length_[l] = start + n_tokens;
  if (!visible.defined()) {
    if (visible_[l].defined()) visible_[l].narrow(1, start, n_tokens).copy_(valid_.narrow(1, start, n_tokens));
    return;
  }
  SEMSKIP_ASSERT(visible.dim() == 2 && visible.size(0) == batch_ && visible.size(1) == n_tokens);
  own_visibility(l).narrow(1, start, n_tokens).copy_(visible.logical_and(valid_.narrow(1, start, n_tokens)));
}

at::Tensor& KvCache::own_visibility(size_t l) {
  if (!visible_[l].defined()) visible_[l] = valid_.clone();
  return visible_[l];
}

at::Tensor KvCache::keys(int64_t layer, int64_t n) const {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers() && n <= capacity_);
  return k_[static_cast<size_t>(layer)].narrow(2, 0, n);
}

at::Tensor KvCache::values(int64_t layer, int64_t n) const {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers() && n <= capacity_);
  return v_[static_cast<size_t>(layer)].narrow(2, 0, n);
}

void KvCache::set_valid(int64_t start, int64_t n_tokens, const at::Tensor& valid) {
  if (start + n_tokens > capacity_) grow(start + n_tokens);
  if (!valid.defined()) {
    valid_.narrow(1, start, n_tokens).fill_(true);
    return;
  }
  SEMSKIP_ASSERT(valid.dim() == 2 && valid.size(0) == batch_ && valid.size(1) == n_tokens);
  valid_.narrow(1, start, n_tokens).copy_(valid);
  if (!has_padding_) has_padding_ = !valid.all().item<bool>();
}

at::Tensor KvCache::key_valid(int64_t n) const {
  SEMSKIP_ASSERT(n <= capacity_);
  return valid_.narrow(1, 0, n);
}

at::Tensor KvCache::key_valid(int64_t layer, int64_t n) const {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers() && n <= capacity_);
  const at::Tensor& vis = visible_[static_cast<size_t>(layer)];
  return (vis.defined() ? vis : valid_).narrow(1, 0, n);
}

at::Tensor KvCache::n_valid_before(int64_t slot) const {
  if (slot == 0) return at::zeros({batch_}, valid_.options().dtype(at::kLong));
  return valid_.narrow(1, 0, slot).sum(1);  // int64 [B]
}

void KvCache::write_slot(int64_t layer, const at::Tensor& slot, const at::Tensor& k, const at::Tensor& v) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers());
  SEMSKIP_ASSERT(k.dim() == 4 && k.size(0) == batch_ && k.size(1) == n_kv_heads_ && k.size(2) == 1 &&
                 k.size(3) == head_dim_ && slot.numel() == 1);
  const size_t l = static_cast<size_t>(layer);
#ifdef SEMSKIP_MODEL_CUDA_KERNELS
  if (write_slot_cuda(k_[l], v_[l], slot, k, v)) return;
#endif
  k_[l].index_copy_(2, slot, k);
  v_[l].index_copy_(2, slot, v);
}

void KvCache::hide(int64_t layer, int64_t start, int64_t n) {
  SEMSKIP_ASSERT(layer >= 0 && layer < n_layers() && start >= 0 && n >= 0 && start + n <= capacity_);
  const size_t l = static_cast<size_t>(layer);
  own_visibility(l).narrow(1, start, n).fill_(false);
}

void KvCache::extend(int64_t n) {
  for (int64_t& len : length_) {
    SEMSKIP_ASSERT(n >= 0 && len + n <= capacity_);
    len += n;
  }
}

void KvCache::clear() {
  std::fill(length_.begin(), length_.end(), 0);
  valid_.fill_(true);
  for (at::Tensor& vis : visible_) vis = at::Tensor();
  has_padding_ = false;
}

}  // namespace semskip
