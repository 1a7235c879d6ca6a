#pragma once
// Which rank of an expert-parallel group owns which routed experts: contiguous ranges, so the
// (token, expert) pairs that MoeBlock::dispatch sorts by expert are already sorted by owner.
// When the experts do not divide evenly, the first n_experts % n_ranks ranks own one more
// (8 experts over 3 ranks: [0,3) [3,6) [6,8)); with fewer experts than ranks the last ranks
// own none and only take part in the all-to-alls.

#include <cstdint>
#include <string>
#include <vector>

namespace semskip {

class ExpertPartition {
 public:
  // semskip::Error unless n_experts >= 1 and n_ranks >= 1.
  ExpertPartition(int64_t n_experts, int n_ranks);

  int64_t n_experts() const { return n_experts_; }
  int n_ranks() const { return n_ranks_; }
  int64_t first(int rank) const;  // first expert of `rank`
  int64_t count(int rank) const;  // experts of `rank`
  int owner(int64_t expert) const;
  std::vector<int64_t> counts() const;  // [n_ranks]: experts per rank
  bool even() const { return n_experts_ % n_ranks_ == 0; }
  // "8 experts over 3 ranks: [0,3) [3,6) [6,8)"
  std::string describe() const;

 private:
  int64_t n_experts_;
  int n_ranks_;
};

}  // namespace semskip
