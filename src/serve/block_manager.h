#pragma once
// The KV block pool of the serving loop, on the host: a fixed number of blocks of
// `block_size` slots (the memory budget), a block table per sequence that grows on demand as
// the sequence's computed tokens grow, and blocks returned to the pool when the sequence
// finishes or is pre-empted. Slot s of a sequence lives in block table[s / block_size] at
// offset s % block_size; serve/paged_kv.h keeps the tensors those numbers index.
//
// Free blocks are handed out lowest number first (a min-heap), so a run is deterministic
// whatever order sequences free their blocks in.

#include <cstdint>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

namespace semskip::serve {

class BlockManager {
 public:
  // semskip::Error unless num_blocks >= 1 and block_size >= 1.
  BlockManager(int64_t num_blocks, int64_t block_size);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  int64_t n_free() const { return static_cast<int64_t>(free_.size()); }
  int64_t n_used() const { return num_blocks_ - n_free(); }
  // Blocks that hold `n_slots` slots.
  int64_t blocks_for(int64_t n_slots) const { return (n_slots + block_size_ - 1) / block_size_; }

  // Slots the sequence's blocks hold now (0 for an unknown sequence).
  int64_t capacity(int64_t seq) const;
  // Whether the pool can grow `seq` to hold `n_slots` slots.
  bool can_grow(int64_t seq, int64_t n_slots) const;
  // Grows `seq`'s table to hold `n_slots` slots (never shrinks). A broken invariant aborts
  // when the pool cannot (callers ask can_grow first).
  void grow(int64_t seq, int64_t n_slots);
  // Returns every block of `seq` to the pool (nothing for an unknown sequence).
  void release(int64_t seq);

  // The block numbers of `seq`, in slot order (empty for an unknown sequence).
  const std::vector<int64_t>& table(int64_t seq) const;
  // The pool slot (block · block_size + offset) of the sequence's slot `slot`.
  int64_t pool_slot(int64_t seq, int64_t slot) const;

 private:
  int64_t num_blocks_, block_size_;
  std::priority_queue<int64_t, std::vector<int64_t>, std::greater<int64_t>> free_;
  std::unordered_map<int64_t, std::vector<int64_t>> tables_;
};

}  // namespace semskip::serve
