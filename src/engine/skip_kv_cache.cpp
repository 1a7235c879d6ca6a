#include "engine/skip_kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace semskip {

SkipKvCache::SkipKvCache(int64_t n_layers, int64_t batch, int64_t n_kv_heads, int64_t head_dim,
                         int64_t capacity, at::ScalarType dtype, at::Device device)
    : n_layers_(n_layers), batch_(batch), n_kv_heads_(n_kv_heads), head_dim_(head_dim), capacity_(0) {
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < n_layers_; ++l) {
    k_.push_back(at::zeros({batch_, n_kv_heads_, 0, head_dim_}, opts));
    v_.push_back(at::zeros({batch_, n_kv_heads_, 0, head_dim_}, opts));
    visible_.push_back(at::zeros({batch_, 0}, opts.dtype(at::kBool)));
  }
  n_valid_ = at::zeros({batch_}, opts.dtype(at::kLong));
  grow(std::max<int64_t>(capacity, 1));
}

void SkipKvCache::grow(int64_t min_capacity) {
  if (min_capacity <= capacity_) return;
  const int64_t cap = std::max(min_capacity, 2 * capacity_);
  for (int64_t l = 0; l < n_layers_; ++l) {
    at::Tensor k = at::zeros({batch_, n_kv_heads_, cap, head_dim_}, k_[l].options());
    at::Tensor v = at::zeros({batch_, n_kv_heads_, cap, head_dim_}, v_[l].options());
    at::Tensor vis = at::zeros({batch_, cap}, visible_[l].options());
    k.slice(2, 0, capacity_).copy_(k_[l]);
    v.slice(2, 0, capacity_).copy_(v_[l]);
    vis.slice(1, 0, capacity_).copy_(visible_[l]);
    k_[l] = k, v_[l] = v, visible_[l] = vis;
  }
  capacity_ = cap;
}

at::Tensor SkipKvCache::begin_step(const at::Tensor& valid) {
  SEMSKIP_ASSERT(valid.dim() == 2 && valid.size(0) == batch_);
  step_len_ = valid.size(1);
  grow(length_ + step_len_);
  at::Tensor v = valid.to(n_valid_.device(), at::kLong);
  // Position of each token: valid tokens before it in its sequence (padding gets the next
  // position too; it is never attended to).
  at::Tensor positions = n_valid_.unsqueeze(1) + v.cumsum(1) - v;  // [B, n]
  n_valid_ += v.sum(1);
  return positions;
}

void SkipKvCache::write(int64_t layer, const at::Tensor& rows, const at::Tensor& k, const at::Tensor& v) {
  if (rows.numel() == 0) return;
  at::Tensor r = rows.to(k_[layer].device());
  at::Tensor b = r.div(step_len_, "floor");
  at::Tensor slot = r.remainder(step_len_) + length_;
  // k_[layer] is [B, H, cap, hd]: index (b, :, slot, :) as a [B·cap] view of heads-last data.
  at::Tensor kk = k_[layer].permute({0, 2, 1, 3});  // [B, cap, H, hd] view
  at::Tensor vv = v_[layer].permute({0, 2, 1, 3});
  kk.index_put_({b, slot}, k.to(kk.scalar_type()));
  vv.index_put_({b, slot}, v.to(vv.scalar_type()));
  visible_[layer].index_put_({b, slot}, at::ones({r.size(0)}, visible_[layer].options()));
}

at::Tensor SkipKvCache::k(int64_t layer, int64_t b) const {
  return k_[layer].slice(0, b, b + 1).slice(2, 0, length_ + step_len_);
}

at::Tensor SkipKvCache::v(int64_t layer, int64_t b) const {
  return v_[layer].slice(0, b, b + 1).slice(2, 0, length_ + step_len_);
}

at::Tensor SkipKvCache::key_valid(int64_t layer, int64_t b) const {
  return visible_[layer].slice(0, b, b + 1).slice(1, 0, length_ + step_len_);
}

void SkipKvCache::end_step() {
  length_ += step_len_;
  step_len_ = 0;
}

}  // namespace semskip
