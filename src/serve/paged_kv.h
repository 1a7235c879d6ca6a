#pragma once
// The paged KV storage of the serving loop: per layer a pool of KV slots on the model's
// device, cut into the blocks serve/block_manager.h hands out. The model's forward stays the
// only implementation of attention: each step gathers its sequences' past K/V from their
// blocks into a dense KvCache (model/kv_cache.h), the step runs on it, and the step's new K/V
// are written back into the blocks.
//
// Layout of a step of B sequences, S = the most new tokens of any, P = the longest past:
// the dense cache has P + S slots per row; row b's P_b past slots sit right-aligned in
// [P − P_b, P) and its N_b new tokens right-aligned in the step's columns, so slots
// [P + S − N_b, P + S) (the step's ids are left-padded the same way). Every other slot is
// padding, marked invalid, so attention skips it, RoPE positions follow from the valid slots
// before each token (KvCache::n_valid_before), and each row's newest token is in the last
// column, as in left_pad / generate_greedy.
//
// Hidden keys (a skip with kv=mask): a pool layer keeps a visibility bit per slot once a
// hidden key was written there; the gather restores that layer's visibility into the dense
// cache and the write-back stores the step's.
//
// Cost per step and layer: one index_select of B·P slots of K and of V out of the pool (into
// the dense cache: a copy of the batch's past, padding included) and one index_copy of the
// step's Σ N_b new slots back; the index tensors are built once per step on the host and
// moved to the device in one copy each. The copy reads each past key once more than
// attention does; padding costs B·P − Σ P_b slots. A decoding step of the same sequences as
// the step before it skips the gather: the server keeps that step's dense cache, which holds
// exactly what a gather would give (serve/server.h), so steady decoding pays only the
// write-back.

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

#include "model/kv_cache.h"

namespace semskip {
class Transformer;
}

namespace semskip::serve {

// One sequence's slots in a step: where its past and its new tokens live in the pool.
struct PagedRow {
  std::vector<int64_t> past;  // pool slots of positions [0, P_b)
  std::vector<int64_t> next;  // pool slots of the step's new positions [P_b, P_b + N_b)
};

// A step's layout, as index tensors on the pool's device.
struct PagedStep {
  int64_t batch = 0, n_past = 0, n_step = 0;  // B, P, S
  at::Tensor past_src;    // int64 [B·P]: pool slot of each dense past slot (0 at padding)
  at::Tensor past_valid;  // bool [B, P]
  at::Tensor new_flat;    // int64 [Σ N_b]: the new tokens' places in the step's [B·S]
  at::Tensor new_dst;     // int64 [Σ N_b]: their pool slots
};

class PagedKvPool {
 public:
  // num_blocks × block_size slots per layer, zero-filled (finite), compute dtype on the
  // model's device.
  PagedKvPool(const Transformer& model, int64_t num_blocks, int64_t block_size);

  // semskip::Error naming the pool's options (--kv-cache-memory, --num-kv-blocks) when
  // num_blocks × block_size slots would exceed the memory of the model's device; the
  // constructor calls it, and the server before anything sized by the block count.
  static void check_fits(const Transformer& model, int64_t num_blocks, int64_t block_size);
  // Bytes of one block: K and V of every layer.
  static int64_t bytes_per_block(const Transformer& model, int64_t block_size);
  int64_t n_slots() const { return n_slots_; }

  // The index tensors of a step whose rows are `rows` and whose ids are [B, S]. With
  // n_past >= 0 the step runs on a dense cache that already holds n_past slots per row (the
  // previous step's, see Server::run): the rows' `past` are not read and past_src is left
  // undefined (nothing to gather), only the write-back indices are built.
  PagedStep layout(const std::vector<PagedRow>& rows, int64_t n_step, int64_t n_past = -1) const;
  // The step's dense cache: every layer holds the rows' pasts (length P); the forward then
  // appends the S new slots.
  KvCache gather(const PagedStep& step) const;
  // Writes the step's new K/V (and their visibility) from `dense` into the pool.
  void scatter(const KvCache& dense, const PagedStep& step);
  // Writes slot `slot` of every row of `dense` (a fixed-shape decoding step's keys, no key
  // hidden) to the pool slots `dst` int64 [B] on the pool's device.
  void write_slot(const KvCache& dense, int64_t slot, const at::Tensor& dst);

 private:
  const Transformer& model_;
  int64_t n_slots_;
  std::vector<at::Tensor> k_, v_;     // per layer: compute dtype [n_slots, n_kv_heads, head_dim]
  std::vector<at::Tensor> visible_;   // per layer: bool [n_slots]; undefined until a key is hidden
  int64_t visible_layers_ = 0;        // layers whose visible_ is defined
};

}  // namespace semskip::serve
