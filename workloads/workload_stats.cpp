#include "workloads/workload_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/timing.h"

namespace semskip {

LengthSummary summarize(std::vector<double> values) {
  LengthSummary s;
  s.n = static_cast<int64_t>(values.size());
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / double(values.size());
  s.min = values.front();
  s.max = values.back();
  s.p50 = percentile(values, 50);
  s.p90 = percentile(values, 90);
  s.p99 = percentile(values, 99);
  return s;
}

WorkloadStats collect_workload_stats(Workload& w, const std::function<void(const Request&)>& each) {
  const Stopwatch clock;
  std::vector<double> prompt, output, reference;
  std::unordered_set<int64_t> groups;
  WorkloadStats s;
  double each_seconds = 0;  // time spent in `each`, which is not loading
  while (std::optional<Request> r = w.next()) {
    prompt.push_back(double(r->n_tokens_prompt()));
    output.push_back(double(r->n_tokens_output));
    if (!r->reference_text.empty() || !r->reference_tokens.empty()) {
      ++s.n_with_reference;
      reference.push_back(double(r->reference_tokens.size()));
    }
    s.n_with_choices += r->choices.empty() ? 0 : 1;
    if (r->group >= 0) groups.insert(r->group);
    s.last_arrival_s = r->arrival_s;
    if (each) {
      const Stopwatch each_clock;
      each(*r);
      each_seconds += each_clock.seconds();
    }
  }
  s.load_seconds = clock.seconds() - each_seconds;
  s.n_requests = static_cast<int64_t>(prompt.size());
  s.prompt_tokens = summarize(std::move(prompt));
  s.output_tokens = summarize(std::move(output));
  s.reference_tokens = summarize(std::move(reference));
  s.n_groups = static_cast<int64_t>(groups.size());
  s.counters = w.counters();
  return s;
}

namespace {
std::string row(const char* name, const LengthSummary& l) {
  if (l.n == 0) return fmt::format("{:<18} -\n", name);
  return fmt::format("{:<18} mean {:.1f}  min {:g}  p50 {:g}  p90 {:g}  p99 {:g}  max {:g}\n", name,
                     l.mean, l.min, l.p50, l.p90, l.p99, l.max);
}
}  // namespace

std::string format_workload_stats(const WorkloadStats& s) {
  std::string out;
  out += fmt::format("{:<18} {}\n", "requests:", s.n_requests);
  out += fmt::format("{:<18} {}\n", "skipped lines:", s.counters.n_bad_lines_skipped);
  out += fmt::format("{:<18} {}\n", "filtered:", s.counters.n_filtered);
  out += row("prompt tokens:", s.prompt_tokens);
  out += row("output tokens:", s.output_tokens);
  out += row("reference tokens:", s.reference_tokens);
  out += fmt::format("{:<18} {}\n", "with reference:", s.n_with_reference);
  out += fmt::format("{:<18} {}\n", "with choices:", s.n_with_choices);
  out += fmt::format("{:<18} {}\n", "groups:", s.n_groups);
  out += fmt::format("{:<18} {:.3f} s\n", "last arrival:", s.last_arrival_s);
  const double rate = s.load_seconds > 0 ? double(s.n_requests) / s.load_seconds : 0.0;
  out += fmt::format("{:<18} {:.3f} s ({:.0f} requests/s)\n", "load time:", s.load_seconds, rate);
  for (const std::string& m : s.counters.skipped_examples) out += "skipped: " + m + "\n";
  return out;
}

}  // namespace semskip
