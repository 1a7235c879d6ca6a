#pragma once
// The one timing protocol (docs/conventions.md rule 13): warm-up untimed, the device synchronised before
// the clock starts and before it stops, timed repetitions, raw samples kept, and the derived
// figures (median, spread, rates) computed in one place. Every command that prints a rate
// measures through here.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <c10/core/Device.h>

namespace semskip {

// Waits until all work queued on `device` has finished (no-op on CPU).
void synchronize(const c10::Device& device);

// A host wall clock; read() after synchronize() when device work must be inside it.
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

// Summary of repeated measurements of one quantity (seconds).
struct TimingStats {
  std::vector<double> samples_s;  // every timed repetition, in order
  double median_s = 0.0;
  double min_s = 0.0;
  double max_s = 0.0;
  double mean_s = 0.0;
  double stddev_s = 0.0;          // sample standard deviation (0 for one sample)
  // Relative spread, (max − min) / median: how far apart the repetitions were.
  double spread() const { return median_s > 0 ? (max_s - min_s) / median_s : 0.0; }
  // `work` units (tokens, queries, bytes) per second at the median time.
  double rate(double work) const { return median_s > 0 ? work / median_s : 0.0; }
};

// Order statistics of `samples` (at least one).
TimingStats summarize_samples(std::vector<double> samples);

struct TimingProtocol {
  int warmup = 1;   // untimed runs first (module load, kernel selection, allocator warm-up)
  int reps = 5;     // timed runs
  c10::Device device = c10::Device(c10::kCPU);  // synchronised around every timed run
};

// Runs `fn` protocol.warmup times untimed, then protocol.reps times, each between two device
// synchronisations. semskip::Error when reps < 1 or warmup < 0.
TimingStats time_repeated(const std::function<void()>& fn, const TimingProtocol& protocol);

// "12.3 ms ± 4% (median of 5)" — for terminal output.
std::string format_timing(const TimingStats& t);

}  // namespace semskip
