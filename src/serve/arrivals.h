#pragma once
// When the requests of `semskip serve-bench` reach the server, as vLLM's serving benchmark
// makes them (benchmarks/serve.py, get_request): `--request-rate inf` sends every request at
// t = 0; a finite rate draws the gaps between consecutive requests from a gamma distribution
// of shape `--burstiness` and mean 1/rate (burstiness 1: a Poisson process; below 1 burstier,
// above 1 more even) and then rescales the cumulative times so that the last request arrives
// at exactly n/rate, which keeps the offered load of different seeds equal; or the workload's
// own Request::arrival_s (a trace). Every policy of one run is served on the same times.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "workloads/rng.h"

namespace semskip::serve {

enum class ArrivalKind {
  all_at_once,  // --request-rate inf
  gamma,        // --request-rate r with --burstiness b (b = 1: Poisson)
  trace,        // the workload's arrival_s
};

struct ArrivalOptions {
  ArrivalKind kind = ArrivalKind::all_at_once;
  double request_rate = 0.0;  // requests/s, > 0 (gamma only)
  double burstiness = 1.0;    // gamma shape, > 0; +inf: constant gaps of 1/rate
  uint64_t seed = 0;
  std::string describe() const;  // "inf", "rate=4,burstiness=1,seed=0" or "trace"
};

// --request-rate's text: "inf" (any case) or a positive finite number; semskip::Error naming
// --request-rate otherwise.
double parse_request_rate(std::string_view text);
// The options of the flags; semskip::Error naming --burstiness when it is not > 0 and
// --request-rate when a trace is asked for together with a rate.
ArrivalOptions make_arrival_options(std::string_view request_rate, double burstiness, uint64_t seed,
                                    bool use_trace);

// Arrival times in seconds, one per request in request order (n >= 0). `trace_s` holds the
// workload's times (used only for ArrivalKind::trace; its size must be n, every value finite
// and >= 0 — semskip::Error naming the request position otherwise); a trace's times are kept
// as given, in request order (they need not be sorted).
std::vector<double> arrival_times(const ArrivalOptions& opt, int64_t n, const std::vector<double>& trace_s = {});

// One gamma(shape, scale) sample from a seeded stream (Marsaglia–Tsang; shape < 1 by the
// boost U^(1/shape) step), written out so that a seed gives the same trace on every compiler.
class GammaSampler {
 public:
  explicit GammaSampler(uint64_t seed) : rng_(seed) {}
  double sample(double shape, double scale);  // shape > 0, scale > 0

 private:
  double normal();  // standard normal (Box–Muller, one of the pair)
  Rng rng_;
};

}  // namespace semskip::serve
