#include "serve/block_manager.h"

#include "core/error.h"

namespace semskip::serve {

namespace {
const std::vector<int64_t> kNoBlocks;
}

BlockManager::BlockManager(int64_t num_blocks, int64_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  SEMSKIP_THROW_IF_NOT_MSG(num_blocks >= 1, "KV block pool: num_kv_blocks must be >= 1, got {}", num_blocks);
  SEMSKIP_THROW_IF_NOT_MSG(block_size >= 1, "KV block pool: block_size must be >= 1, got {}", block_size);
  for (int64_t b = 0; b < num_blocks; ++b) free_.push(b);
}

int64_t BlockManager::capacity(int64_t seq) const { return static_cast<int64_t>(table(seq).size()) * block_size_; }

bool BlockManager::can_grow(int64_t seq, int64_t n_slots) const {
  const int64_t have = static_cast<int64_t>(table(seq).size());
  return blocks_for(n_slots) - have <= n_free();
}

void BlockManager::grow(int64_t seq, int64_t n_slots) {
  SEMSKIP_ASSERT(can_grow(seq, n_slots));
  std::vector<int64_t>& t = tables_[seq];
  while (static_cast<int64_t>(t.size()) < blocks_for(n_slots)) {
    t.push_back(free_.top());
    free_.pop();
  }
}

void BlockManager::release(int64_t seq) {
  const auto it = tables_.find(seq);
  if (it == tables_.end()) return;
  for (int64_t b : it->second) free_.push(b);
  tables_.erase(it);
}

const std::vector<int64_t>& BlockManager::table(int64_t seq) const {
  const auto it = tables_.find(seq);
  return it == tables_.end() ? kNoBlocks : it->second;
}

int64_t BlockManager::pool_slot(int64_t seq, int64_t slot) const {
  const std::vector<int64_t>& t = table(seq);
  SEMSKIP_ASSERT(slot >= 0 && slot / block_size_ < static_cast<int64_t>(t.size()));
  return t[static_cast<size_t>(slot / block_size_)] * block_size_ + slot % block_size_;
}

}  // namespace semskip::serve
