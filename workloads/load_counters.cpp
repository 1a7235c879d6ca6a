#include "workloads/load_counters.h"

#include "core/error.h"

namespace semskip {

void skip_or_rethrow(BadLinePolicy policy, LoadCounters& counters, const std::string& message) {
  if (policy == BadLinePolicy::error) throw Error(message);
  ++counters.n_bad_lines_skipped;
  if (counters.skipped_examples.size() < LoadCounters::kMaxExamples)
    counters.skipped_examples.push_back(message);
}

}  // namespace semskip
