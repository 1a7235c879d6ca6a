// Arrival times of a serving benchmark (see arrivals.h).
#include "serve/arrivals.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "core/error.h"
#include "core/strings.h"

namespace semskip::serve {

std::string ArrivalOptions::describe() const {
  switch (kind) {
    case ArrivalKind::all_at_once: return "inf";
    case ArrivalKind::trace: return "trace";
    case ArrivalKind::gamma: return fmt::format("rate={},burstiness={},seed={}", request_rate, burstiness, seed);
  }
  return "";
}

double parse_request_rate(std::string_view text) {
  std::string t = trim(text);
  std::string lower = t;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "inf" || lower == "infinity") return std::numeric_limits<double>::infinity();
  const double r = parse_double(t, "--request-rate");
  SEMSKIP_THROW_IF_NOT_MSG(std::isfinite(r) && r > 0.0,
                           "--request-rate: '{}' must be a positive number of requests per second, or inf", t);
  return r;
}

ArrivalOptions make_arrival_options(std::string_view request_rate, double burstiness, uint64_t seed,
                                    bool use_trace) {
  ArrivalOptions opt;
  opt.seed = seed;
  SEMSKIP_THROW_IF_NOT_MSG(burstiness > 0.0, "--burstiness: {} must be > 0 (1: Poisson; below 1 burstier)",
                           burstiness);
  opt.burstiness = burstiness;
  const double rate = parse_request_rate(request_rate);
  if (use_trace) {
    SEMSKIP_THROW_IF_NOT_MSG(std::isinf(rate),
                             "--request-rate {}: a trace's arrival times (--arrivals trace) take no rate", request_rate);
    opt.kind = ArrivalKind::trace;
  } else if (std::isinf(rate)) {
    opt.kind = ArrivalKind::all_at_once;
  } else {
    opt.kind = ArrivalKind::gamma;
    opt.request_rate = rate;
  }
  return opt;
}

double GammaSampler::normal() {
  // 1 - uniform() is in (0, 1], so the log is finite.
  const double u1 = 1.0 - rng_.uniform();
  const double u2 = rng_.uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

double GammaSampler::sample(double shape, double scale) {
  SEMSKIP_THROW_IF_NOT_MSG(shape > 0.0 && scale > 0.0, "gamma sample: shape {} and scale {} must be > 0", shape,
                           scale);
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) · U^(1/a).
    const double u = 1.0 - rng_.uniform();
    return sample(shape + 1.0, scale) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0.0, v = 0.0;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = 1.0 - rng_.uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale;
  }
}

std::vector<double> arrival_times(const ArrivalOptions& opt, int64_t n, const std::vector<double>& trace_s) {
  SEMSKIP_THROW_IF_NOT_MSG(n >= 0, "arrival times: {} requests", n);
  std::vector<double> t(static_cast<size_t>(n), 0.0);
  switch (opt.kind) {
    case ArrivalKind::all_at_once:
      return t;
    case ArrivalKind::trace:
      SEMSKIP_THROW_IF_NOT_MSG(static_cast<int64_t>(trace_s.size()) == n,
                               "arrival times: the trace has {} times for {} requests", trace_s.size(), n);
      for (int64_t i = 0; i < n; ++i) {
        SEMSKIP_THROW_IF_NOT_MSG(std::isfinite(trace_s[i]) && trace_s[i] >= 0.0,
                                 "arrival times: request {} of the trace arrives at {} s (must be finite and >= 0)",
                                 i, trace_s[i]);
      }
      return trace_s;
    case ArrivalKind::gamma:
      break;
  }
  SEMSKIP_THROW_IF_NOT_MSG(opt.request_rate > 0.0 && std::isfinite(opt.request_rate) && opt.burstiness > 0.0,
                           "arrival times: rate {} and burstiness {} must be > 0", opt.request_rate, opt.burstiness);
  GammaSampler gamma(opt.seed);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    // As vLLM: the first request waits one gap too.
    const double gap = std::isinf(opt.burstiness)
                           ? 1.0 / opt.request_rate
                           : gamma.sample(opt.burstiness, 1.0 / (opt.request_rate * opt.burstiness));
    sum += gap;
    t[i] = sum;
  }
  if (n > 0 && sum > 0.0) {
    const double factor = (static_cast<double>(n) / opt.request_rate) / sum;
    for (double& x : t) x *= factor;
  }
  return t;
}

}  // namespace semskip::serve
