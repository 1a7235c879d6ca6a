#include "index/row_table.h"

#include "core/error.h"
#include "index/vector_index.h"

namespace semskip {

void RowTable::append(int64_t n, const int64_t* ids) {
  const int64_t first = n_rows();
  for (int64_t i = 0; i < n; ++i) {
    row_of_[ids[i]] = first + i;
    row_ids_.push_back(ids[i]);
  }
}

RowTable::Compaction RowTable::remove(int64_t n, const int64_t* ids) {
  const int64_t old_rows = n_rows();
  const int64_t new_rows = old_rows - n;
  std::vector<char> gone(static_cast<size_t>(old_rows), 0);  // [old_rows] 1 = removed
  for (int64_t i = 0; i < n; ++i) {
    auto it = row_of_.find(ids[i]);
    SEMSKIP_ASSERT(it != row_of_.end());
    gone[static_cast<size_t>(it->second)] = 1;
    row_of_.erase(it);
  }
  Compaction c;
  for (int64_t r = 0; r < new_rows; ++r)
    if (gone[static_cast<size_t>(r)]) c.holes.push_back(r);
  for (int64_t r = new_rows; r < old_rows; ++r)
    if (!gone[static_cast<size_t>(r)]) c.fillers.push_back(r);
  SEMSKIP_ASSERT(c.holes.size() == c.fillers.size());
  for (size_t i = 0; i < c.holes.size(); ++i) {
    const int64_t id = row_ids_[static_cast<size_t>(c.fillers[i])];
    row_ids_[static_cast<size_t>(c.holes[i])] = id;
    row_of_[id] = c.holes[i];
  }
  row_ids_.resize(static_cast<size_t>(new_rows));
  return c;
}

int64_t RowTable::memory_bytes() const {
  return static_cast<int64_t>(row_ids_.capacity()) * 8 +
         hash_container_bytes(static_cast<int64_t>(row_of_.size()), 16,
                              static_cast<int64_t>(row_of_.bucket_count()));
}

}  // namespace semskip
