#pragma once
// Progress of long work on rank 0 (`semskip run`): a live line rewritten in place on a
// terminal, or, when the output is a file (a SLURM job's), a plain line at most every
// `interval_s` seconds, so logs stay readable. Header-only: it needs nothing but the C library.

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace semskip {

class ProgressLine {
 public:
  // `total`: the units of work (requests) of the whole job; disabled: every call does nothing.
  ProgressLine(bool enabled, int64_t total, std::FILE* out = stderr, double interval_s = 30.0)
      : enabled_(enabled && total > 0), total_(total), out_(out), interval_s_(interval_s),
        live_(enabled_ && ::isatty(::fileno(out)) == 1), start_(Clock::now()), last_(start_) {}
  ~ProgressLine() { finish(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool enabled() const { return enabled_; }

  // `done` of the total finished, `tokens` processed so far; `hit_rate` < 0: no cache policy.
  void update(int64_t done, int64_t tokens, double hit_rate, const std::string& policy) {
    if (!enabled_) return;
    const auto now = Clock::now();
    const double since = seconds(last_, now);
    // A terminal line is redrawn a few times a second; a log line only every interval.
    if (since < (live_ ? 0.2 : interval_s_) && done < total_) return;
    last_ = now;
    const double elapsed = seconds(start_, now);
    const double rate = elapsed > 0 ? static_cast<double>(tokens) / elapsed : 0.0;
    const double eta = done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : 0.0;
    char hit[32] = "-";
    if (hit_rate >= 0) std::snprintf(hit, sizeof(hit), "%.1f%%", 100.0 * hit_rate);
    const long eta_s = static_cast<long>(eta + 0.5);
    std::fprintf(out_, "%s%s: %lld/%lld requests, %.0f tokens/s, hit rate %s, ETA %ld:%02ld%s", live_ ? "\r\033[K" : "",
                 policy.c_str(), static_cast<long long>(done), static_cast<long long>(total_), rate, hit, eta_s / 60,
                 eta_s % 60, live_ ? "" : "\n");
    std::fflush(out_);
    drawn_ = true;
  }

  // Ends a live line with a newline, so what follows starts on its own line.
  void finish() {
    if (live_ && drawn_) std::fputc('\n', out_);
    drawn_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }
  bool enabled_;
  int64_t total_;
  std::FILE* out_;
  double interval_s_;
  bool live_;
  bool drawn_ = false;
  Clock::time_point start_, last_;
};

}  // namespace semskip
