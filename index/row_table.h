#pragma once
// RowTable: the host-side id ↔ row bookkeeping of the flat backends, whose keys sit in the
// rows [0, n_rows) of a dense array. Removal keeps the rows dense: the holes it leaves below
// the new end are filled by the surviving rows above it, and the backend moves its own key
// and id rows (on its device) as the returned Compaction says.

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace semskip {

class RowTable {
 public:
  // Rows to move, one for one: holes[i] (below the new end) receives fillers[i] (above it).
  struct Compaction {
    std::vector<int64_t> holes;    // int64 [m]
    std::vector<int64_t> fillers;  // int64 [m]
  };

  int64_t n_rows() const { return static_cast<int64_t>(row_ids_.size()); }
  // Records ids [n] as rows [n_rows, n_rows + n); the ids are new (the caller checked).
  void append(int64_t n, const int64_t* ids);
  // Forgets ids [n] (present and unique) and returns the moves that keep the rows dense;
  // the table already reflects them.
  Compaction remove(int64_t n, const int64_t* ids);
  // Estimated host bytes of the table.
  int64_t memory_bytes() const;

 private:
  std::vector<int64_t> row_ids_;                 // int64 [n_rows]: id of each stored row
  std::unordered_map<int64_t, int64_t> row_of_;  // id -> row
};

}  // namespace semskip
