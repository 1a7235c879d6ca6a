#pragma once
// Adds the wall-clock time of a scope to a nanosecond counter: how the distributed caches
// account the time they spend in collectives (lookup timings leave it out).

#include <cstdint>

#include "core/timing.h"

namespace semskip {

class CollectiveTimer {
 public:
  explicit CollectiveTimer(int64_t& total_ns) : total_ns_(total_ns) {}
  ~CollectiveTimer() { total_ns_ += clock_.nanoseconds(); }
  CollectiveTimer(const CollectiveTimer&) = delete;
  CollectiveTimer& operator=(const CollectiveTimer&) = delete;

 private:
  int64_t& total_ns_;
  Stopwatch clock_;
};

}  // namespace semskip
