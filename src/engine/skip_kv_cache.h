#pragma once
// The KV cache of a skipping run. Unlike the model's KvCache, which slots are visible differs
// by layer: a token that skipped layer l under kv=mask has no key at l, while it has keys at
// the layers it ran. Sequences share the slot axis (left padding, as in KvCache).

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace semskip {

class SkipKvCache {
 public:
  SkipKvCache(int64_t n_layers, int64_t batch, int64_t n_kv_heads, int64_t head_dim, int64_t capacity,
              at::ScalarType dtype, at::Device device);

  int64_t batch() const { return batch_; }
  int64_t length() const { return length_; }  // slots in use (the same at every layer)

  // Opens slots [length, length + n) for a step whose tokens are valid bool [B, n] (padding
  // false) and returns their RoPE positions, int64 [B, n]. Grows storage as needed.
  at::Tensor begin_step(const at::Tensor& valid);
  // Writes keys/values of some of the step's tokens at `layer`: rows int64 [m] index the
  // step's [B·n] tokens; k, v [m, n_kv_heads, head_dim].
  void write(int64_t layer, const at::Tensor& rows, const at::Tensor& k, const at::Tensor& v);
  // Keys and values of sequence b at `layer` for slots [0, length): [1, n_kv_heads, length, hd]
  // and the bool [1, length] of which of them may be attended to.
  at::Tensor k(int64_t layer, int64_t b) const;
  at::Tensor v(int64_t layer, int64_t b) const;
  at::Tensor key_valid(int64_t layer, int64_t b) const;
  // Ends the step: its slots count from now on.
  void end_step();

 private:
  void grow(int64_t min_capacity);

  int64_t n_layers_, batch_, n_kv_heads_, head_dim_, capacity_;
  int64_t length_ = 0;      // slots of finished steps
  int64_t step_len_ = 0;    // slots of the step in progress
  std::vector<at::Tensor> k_, v_;    // per layer: [B, n_kv_heads, capacity, head_dim]
  std::vector<at::Tensor> visible_;  // per layer: bool [B, capacity]
  at::Tensor n_valid_;               // int64 [B]: valid tokens so far (the next RoPE position)
};

}  // namespace semskip
