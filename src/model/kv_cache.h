#pragma once
// Keys and values of past tokens, per layer, for incremental decoding. Several sequences
// share the slot axis: shorter prompts are left-padded, and `key_valid` marks the padding so
// attention skips it. Each layer keeps its own length, so a forward split into layer ranges
// (start_at_layer / stop_at_layer) writes each layer once.
//
// Which slots a query may see can differ by layer: a row that skipped a block under an
// execution plan (model/layer_plan.h) with its keys hidden has no key at that layer, while it
// has keys at the layers it ran. A layer gets its own visibility only once a slot of it is
// hidden; until then it shares the padding mask.
//
// Storage is preallocated for `capacity` slots and zero-filled (slots written later, or never,
// hold finite values, so a hidden key times a zero probability stays zero). Each layer's K and
// V are separate [B, n_kv_heads, capacity, head_dim] tensors, so a sequence's slots of one layer
// are contiguous per head: a paged layout splits the slot axis into blocks without changing
// the attention code.

#include <cstdint>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

namespace semskip {

class KvCache {
 public:
  // Storage for `capacity` slots; grows (by doubling) when a write goes past it. batch may be
  // 0 (a step of no sequences still joins collectives).
  KvCache(int64_t n_layers, int64_t batch, int64_t n_kv_heads, int64_t head_dim, int64_t capacity,
          at::ScalarType dtype, at::Device device);

  int64_t n_layers() const { return static_cast<int64_t>(k_.size()); }
  int64_t batch() const { return batch_; }
  int64_t capacity() const { return capacity_; }
  int64_t length(int64_t layer) const;  // slots written at `layer`

  // Writes k, v [B, n_kv_heads, T, head_dim] at slots [length(layer), length(layer) + T) and
  // returns the keys and values of all slots up to them, [B, n_kv_heads, length + T, head_dim]
  // (views into the cache: valid until the next write that grows it).
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& k, const at::Tensor& v);

  // Writes the keys and values of some rows of a forward of T new tokens at `layer`, slots
  // [length(layer), length(layer) + T): rows int64 [m] index its [B·T] tokens (row-major),
  // k, v [m, n_kv_heads, head_dim]. The layer's length is unchanged until advance().
  void write_rows(int64_t layer, int64_t n_tokens, const at::Tensor& rows, const at::Tensor& k,
                  const at::Tensor& v);
  // Ends a write_rows forward at `layer`: its length grows by T, and of the new slots those of
  // `visible` bool [B, T] (and valid) may be attended to; undefined: all valid ones.
  void advance(int64_t layer, int64_t n_tokens, const at::Tensor& visible);
  // Keys and values of `layer` for slots [0, n), [B, n_kv_heads, n, head_dim] (views).
  at::Tensor keys(int64_t layer, int64_t n) const;
  at::Tensor values(int64_t layer, int64_t n) const;

  // Marks slots [start, start + T) valid or padding; valid bool [B, T] (undefined: all valid).
  // Idempotent, so every layer range of one forward may call it.
  void set_valid(int64_t start, int64_t n_tokens, const at::Tensor& valid);
  // bool [B, n] for slots [0, n).
  at::Tensor key_valid(int64_t n) const;
  // bool [B, n]: the slots [0, n) that queries of `layer` may see (valid and not hidden there).
  at::Tensor key_valid(int64_t layer, int64_t n) const;
  // Whether some slot of `layer` is hidden (its mask then differs from the padding mask).
  bool has_hidden(int64_t layer) const { return visible_[static_cast<size_t>(layer)].defined(); }
  // Whether any slot written so far is padding (then attention needs an explicit mask).
  bool has_padding() const { return has_padding_; }
  // int64 [B]: valid slots before `slot`, i.e. the RoPE position of the next valid token.
  at::Tensor n_valid_before(int64_t slot) const;

  // Fixed-shape decoding (model/fixed_decode.h), whose shapes never depend on the length:
  // writes k, v [B, n_kv_heads, 1, head_dim] at the slot `slot` names, int64 [1] on the
  // device (read by the kernel, not the host, so a captured CUDA graph replays it at the next
  // slot). Lengths are unchanged until extend().
  void write_slot(int64_t layer, const at::Tensor& slot, const at::Tensor& k, const at::Tensor& v);
  // Every layer's length grows by n (the slots write_slot filled); never past the capacity.
  void extend(int64_t n);
  // Hides slots [start, start + n) at `layer` from its queries (a layer the fixed-shape step
  // left out, as advance() with no visible row would).
  void hide(int64_t layer, int64_t start, int64_t n);
  // bool [B, capacity]: every slot's padding mark (true: valid), the storage itself.
  const at::Tensor& valid_slots() const { return valid_; }

  // Forgets everything (lengths to 0), keeping the storage.
  void clear();

 private:
  void grow(int64_t min_capacity);
  // Layer l's own visibility, created from valid_ the first time a layer's differs.
  at::Tensor& own_visibility(size_t l);

  int64_t batch_, n_kv_heads_, head_dim_, capacity_;
  std::vector<at::Tensor> k_;    // per layer: compute dtype [B, n_kv_heads, capacity, head_dim]
  std::vector<at::Tensor> v_;    // per layer: compute dtype [B, n_kv_heads, capacity, head_dim]
  std::vector<int64_t> length_;  // per layer: slots written
  at::Tensor valid_;             // bool [B, capacity]
  std::vector<at::Tensor> visible_;  // per layer: bool [B, capacity], undefined: as valid_
  bool has_padding_ = false;
};

}  // namespace semskip
