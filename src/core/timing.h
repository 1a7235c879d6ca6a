#pragma once
// The device-independent half of semskip's one timing protocol (docs/conventions.md rule 13):
// a host stopwatch, order statistics of repeated measurements, and the repetition loop —
// warm-up runs untimed, every timed run between two calls of `synchronize`, raw samples kept.
// metrics/timing.h adds the device synchronisation (CUDA) for code that has a Torch device;
// index/ and workloads/, which know no device, time through here directly.

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace semskip {

// A host wall clock. Where device work must be inside the interval, synchronise the device
// before starting it and before reading it.
class Stopwatch {
 public:
  Stopwatch() : t0_(std::chrono::steady_clock::now()) {}
  void restart() { t0_ = std::chrono::steady_clock::now(); }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  int64_t nanoseconds() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// Nanoseconds on the monotonic clock Stopwatch reads: differences of two readings time a
// region that has several inner marks.
inline int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The q-th percentile (q in [0, 100]) of ascending `sorted`, interpolated linearly between the
// closest ranks (numpy.percentile's default). semskip::Error when empty or q is out of range.
double percentile(const std::vector<double>& sorted, double q);

// Summary of repeated measurements of one quantity (seconds).
struct TimingStats {
  std::vector<double> samples_s;  // every timed repetition, in run order
  double median_s = 0.0;
  double min_s = 0.0;
  double max_s = 0.0;
  double mean_s = 0.0;
  double stddev_s = 0.0;          // sample standard deviation (0 for one sample)
  double p90_s = 0.0;
  double p99_s = 0.0;
  // Relative spread, (max − min) / median: how far apart the repetitions were.
  double spread() const { return median_s > 0 ? (max_s - min_s) / median_s : 0.0; }
  // `work` units (tokens, queries, bytes) per second at the median time.
  double rate(double work) const { return median_s > 0 ? work / median_s : 0.0; }
};

// Order statistics of `samples` (at least one).
TimingStats summarize_samples(std::vector<double> samples);

// Runs `fn` `warmup` times untimed, then `reps` times, each timed between two calls of
// `synchronize` (may be empty: host work only). semskip::Error when reps < 1 or warmup < 0.
TimingStats time_repeated(const std::function<void()>& fn, int warmup, int reps,
                          const std::function<void()>& synchronize);

}  // namespace semskip
