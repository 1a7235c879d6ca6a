#pragma once
// Adds the wall-clock time of a scope to a nanosecond counter: how the distributed caches
// account the time they spend in collectives (lookup timings leave it out).

#include <chrono>
#include <cstdint>

namespace semskip {

class CollectiveTimer {
 public:
  explicit CollectiveTimer(int64_t& total_ns) : total_ns_(total_ns), t0_(std::chrono::steady_clock::now()) {}
  ~CollectiveTimer() {
    total_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0_).count();
  }
  CollectiveTimer(const CollectiveTimer&) = delete;
  CollectiveTimer& operator=(const CollectiveTimer&) = delete;

 private:
  int64_t& total_ns_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace semskip
