#pragma once
// Communication of a stretch of a run, by collective kind, over the communicators it used
// (the world, an expert-parallel group): the difference of two snapshots of their CommStats.
// With the expert-parallel work of the same stretch, it is what /per_rank and /steps report.

#include <array>
#include <cstdint>
#include <vector>

#include "comm/comm_stats.h"
#include "comm/communicator.h"
#include "comm/expert_parallel.h"

namespace semskip {

struct CommTotals {
  std::array<CollectiveCounters, kNumCollectiveKinds> by_kind{};

  // The counters of `comms` added together (null entries are skipped).
  static CommTotals snapshot(const std::vector<Communicator*>& comms);
  const CollectiveCounters& operator[](CollectiveKind k) const { return by_kind[static_cast<size_t>(k)]; }
  CollectiveCounters total() const;
  CommTotals& operator+=(const CommTotals& o);
  // What happened between snapshot `before` and this one.
  CommTotals operator-(const CommTotals& before) const;
};

EpStats ep_stats_between(const EpStats& after, const EpStats& before);
void add_ep_stats(EpStats& into, const EpStats& o);

}  // namespace semskip
