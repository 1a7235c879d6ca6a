#include "comm/expert_partition.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"

namespace semskip {

ExpertPartition::ExpertPartition(int64_t n_experts, int n_ranks) : n_experts_(n_experts), n_ranks_(n_ranks) {
  SEMSKIP_THROW_IF_NOT_MSG(n_experts >= 1, "expert partition: needs at least one expert, got {}", n_experts);
  SEMSKIP_THROW_IF_NOT_MSG(n_ranks >= 1, "expert partition: needs at least one rank, got {}", n_ranks);
}

int64_t ExpertPartition::count(int rank) const {
  SEMSKIP_ASSERT(rank >= 0 && rank < n_ranks_);
  return n_experts_ / n_ranks_ + (rank < n_experts_ % n_ranks_ ? 1 : 0);
}

int64_t ExpertPartition::first(int rank) const {
  SEMSKIP_ASSERT(rank >= 0 && rank <= n_ranks_);
  const int64_t base = n_experts_ / n_ranks_, extra = n_experts_ % n_ranks_;
  return rank * base + std::min<int64_t>(rank, extra);
}

int ExpertPartition::owner(int64_t expert) const {
  SEMSKIP_ASSERT(expert >= 0 && expert < n_experts_);
  const int64_t base = n_experts_ / n_ranks_, extra = n_experts_ % n_ranks_;
  // The first `extra` ranks own base + 1 experts each.
  const int64_t big = extra * (base + 1);
  return static_cast<int>(expert < big ? expert / (base + 1) : extra + (expert - big) / base);
}

std::vector<int64_t> ExpertPartition::counts() const {
  std::vector<int64_t> c(static_cast<size_t>(n_ranks_));
  for (int r = 0; r < n_ranks_; ++r) c[static_cast<size_t>(r)] = count(r);
  return c;
}

std::string ExpertPartition::describe() const {
  std::string s = fmt::format("{} experts over {} ranks:", n_experts_, n_ranks_);
  for (int r = 0; r < n_ranks_; ++r) s += fmt::format(" [{},{})", first(r), first(r) + count(r));
  return s;
}

}  // namespace semskip
