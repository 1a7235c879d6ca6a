#include "metrics/timing.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#ifdef SEMSKIP_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include "core/error.h"

namespace semskip {

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) {
#ifdef SEMSKIP_CUDA
    c10::cuda::device_synchronize();
#else
    SEMSKIP_THROW_MSG("synchronize: this build has no CUDA support (device {})", device.str());
#endif
  }
}

TimingStats summarize_samples(std::vector<double> samples) {
  SEMSKIP_THROW_IF_NOT_MSG(!samples.empty(), "timing: no samples to summarise");
  TimingStats t;
  t.samples_s = samples;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  t.median_s = n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
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

TimingStats time_repeated(const std::function<void()>& fn, const TimingProtocol& protocol) {
  SEMSKIP_THROW_IF_NOT_MSG(protocol.reps >= 1, "timing: repetitions must be >= 1, got {}", protocol.reps);
  SEMSKIP_THROW_IF_NOT_MSG(protocol.warmup >= 0, "timing: warm-up runs must be >= 0, got {}", protocol.warmup);
  for (int i = 0; i < protocol.warmup; ++i) fn();
  std::vector<double> samples;
  samples.reserve(static_cast<size_t>(protocol.reps));
  for (int i = 0; i < protocol.reps; ++i) {
    synchronize(protocol.device);
    const Stopwatch clock;
    fn();
    synchronize(protocol.device);
    samples.push_back(clock.seconds());
  }
  return summarize_samples(std::move(samples));
}

std::string format_timing(const TimingStats& t) {
  const auto scaled = [](double s) {
    if (s >= 1.0) return fmt::format("{:.3f} s", s);
    if (s >= 1e-3) return fmt::format("{:.3f} ms", s * 1e3);
    return fmt::format("{:.1f} us", s * 1e6);
  };
  return fmt::format("{} (median of {}, min {}, max {})", scaled(t.median_s), t.samples_s.size(), scaled(t.min_s),
                     scaled(t.max_s));
}

}  // namespace semskip
