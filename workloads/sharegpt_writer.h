#pragma once
// Writes a workload in the ShareGPT JSON layout, e.g. a generated file for loader throughput
// measurements or for other serving benchmarks that read ShareGPT.

#include <cstdint>
#include <string>

#include "workloads/workload.h"

namespace semskip {

// One element per request: {"id", "conversations": [{"from": "human", "value": prompt_text},
// {"from": "gpt", "value": reference_text}]}. Written to "<path>.tmp" and renamed when
// complete. semskip::Error when a request has no prompt text or no reference (the gpt turn).
// Returns the number of conversations written.
int64_t write_sharegpt(Workload& w, const std::string& path);

}  // namespace semskip
