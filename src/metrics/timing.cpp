#include "metrics/timing.h"

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

TimingStats time_repeated(const std::function<void()>& fn, const TimingProtocol& protocol) {
  const c10::Device device = protocol.device;
  return time_repeated(fn, protocol.warmup, protocol.reps, [device] { synchronize(device); });
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
