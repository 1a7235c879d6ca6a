#pragma once
// What a loader left out, and why: malformed records skipped under --on-bad-line skip, and
// well-formed records that a filter dropped. The report records both.

#include <cstdint>
#include <string>
#include <vector>

#include "workloads/workload_spec.h"

namespace semskip {

struct LoadCounters {
  int64_t n_bad_lines_skipped = 0;
  int64_t n_filtered = 0;  // well-formed records dropped by a filter (language, turns, lengths)
  std::vector<std::string> skipped_examples;  // the first kMaxExamples messages, for the report

  static constexpr size_t kMaxExamples = 5;
};

// Called by a loader in the catch block of a malformed record's semskip::Error: rethrows the
// error under BadLinePolicy::error, counts it and keeps the message under skip.
void skip_or_rethrow(BadLinePolicy policy, LoadCounters& counters, const std::string& message);

}  // namespace semskip
