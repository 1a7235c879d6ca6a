#pragma once
// Traffic and time of a Communicator, per collective kind, for the report (/per_rank) and the
// communication share of a step.
//
// Bytes are counted as the payload a rank would send to and receive from *other* ranks if
// every collective were direct point-to-point exchanges (self copies excluded), whatever
// algorithm the library picks: allgather(v) sends its piece to each other rank and receives
// theirs; alltoallv moves the rows addressed to other ranks (plus the int64 counts when they
// are exchanged); broadcast: root sends (n−1) copies, the others receive one; allreduce counts
// the 2(n−1)/n·bytes each way of a ring, nccl-tests' "bus bandwidth" convention.

#include <array>
#include <cstdint>

#include "core/timing.h"

namespace semskip {

enum class CollectiveKind { allreduce, allgather, allgatherv, alltoallv, broadcast, barrier, kCount };

constexpr size_t kNumCollectiveKinds = static_cast<size_t>(CollectiveKind::kCount);

const char* collective_name(CollectiveKind k);

struct CollectiveCounters {
  int64_t n_calls = 0;
  int64_t bytes_sent = 0;  // to other ranks, see above
  int64_t bytes_recv = 0;  // from other ranks
  int64_t t_ns = 0;        // wall-clock inside the call, host staging copies included
};

class CommStats {
 public:
  void add(CollectiveKind k, int64_t bytes_sent, int64_t bytes_recv, int64_t t_ns);
  const CollectiveCounters& operator[](CollectiveKind k) const { return by_kind_[static_cast<size_t>(k)]; }
  CollectiveCounters total() const;
  void merge(const CommStats& other);
  void reset() { by_kind_ = {}; }

 private:
  std::array<CollectiveCounters, kNumCollectiveKinds> by_kind_{};
};

// Times one collective of a Communicator implementation and adds it to `stats` with the bytes
// given to bytes(); a collective that throws before bytes() counts nothing.
class TimedCollective {
 public:
  TimedCollective(CommStats& stats, CollectiveKind kind) : stats_(stats), kind_(kind) {}
  ~TimedCollective() {
    if (done_) stats_.add(kind_, sent_, recv_, clock_.nanoseconds());
  }
  TimedCollective(const TimedCollective&) = delete;
  TimedCollective& operator=(const TimedCollective&) = delete;
  void bytes(int64_t sent, int64_t recv) {
    sent_ = sent;
    recv_ = recv;
    done_ = true;
  }

 private:
  CommStats& stats_;
  CollectiveKind kind_;
  Stopwatch clock_;
  int64_t sent_ = 0, recv_ = 0;
  bool done_ = false;
};

}  // namespace semskip
