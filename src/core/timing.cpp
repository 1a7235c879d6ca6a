#include "core/timing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace semskip {

double percentile(const std::vector<double>& sorted, double q) {
  SEMSKIP_THROW_IF_NOT_MSG(!sorted.empty(), "percentile of an empty set");
  SEMSKIP_THROW_IF_NOT_MSG(q >= 0 && q <= 100, "percentile {} is not in [0, 100]", q);
  const double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

TimingStats summarize_samples(std::vector<double> samples) {
  SEMSKIP_THROW_IF_NOT_MSG(!samples.empty(), "timing: no samples to summarise");
  TimingStats t;
  t.samples_s = samples;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  t.median_s = percentile(samples, 50);
  t.p90_s = percentile(samples, 90);
  t.p99_s = percentile(samples, 99);
  t.min_s = samples.front();
  t.max_s = samples.back();
  t.mean_s = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(n);
  if (n > 1) {
    double ss = 0.0;
    for (double s : samples) ss += (s - t.mean_s) * (s - t.mean_s);
    t.stddev_s = std::sqrt(ss / static_cast<double>(n - 1));
  }
  return t;
}

TimingStats time_repeated(const std::function<void()>& fn, int warmup, int reps,
                          const std::function<void()>& synchronize) {
  SEMSKIP_THROW_IF_NOT_MSG(reps >= 1, "timing: repetitions must be >= 1, got {}", reps);
  SEMSKIP_THROW_IF_NOT_MSG(warmup >= 0, "timing: warm-up runs must be >= 0, got {}", warmup);
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    if (synchronize) synchronize();
    const Stopwatch clock;
    fn();
    if (synchronize) synchronize();
    samples.push_back(clock.seconds());
  }
  return summarize_samples(std::move(samples));
}

}  // namespace semskip
