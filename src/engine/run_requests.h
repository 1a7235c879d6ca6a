#pragma once
// The requests of a `semskip run` and this rank's shard of them (docs/architecture.md §4). Every rank
// reads the same stream: the first `n_calib` requests calibrate (the same on every rank), the
// next ones (up to max_requests, 0: all) are evaluated, split over the shards by
// workloads/sharding.h. The assignment is decided on rank 0 and broadcast with the request
// sizes it saw; each rank checks that its own reading agrees, so ranks that read different
// files fail with a message instead of evaluating an inconsistent split.

#include <cstdint>
#include <vector>

#include "workloads/load_counters.h"
#include "workloads/request.h"
#include "workloads/sharding.h"
#include "workloads/workload.h"

namespace semskip {

class Communicator;

struct ShardChoice {
  ShardStrategy strategy = ShardStrategy::round_robin;
  int n_shards = 1;
  int shard = 0;       // which one this process runs
  uint64_t seed = 0;   // ties of balanced
};

struct RunRequests {
  std::vector<Request> calibration;  // the stream's first requests, on every rank
  std::vector<Request> evaluated;    // this shard's, in stream order (Request::id is global)
  int64_t n_evaluated_total = 0;     // over every shard
  LoadCounters counters;
};

// `max_new_tokens` adds to each request's size for the balanced split. `world`: the ranks
// that agree on the split (collective when it has more than one rank); null: decided here.
RunRequests load_run_requests(const WorkloadSpec& spec, const WorkloadContext& ctx, int64_t n_calib,
                              int64_t max_requests, int64_t max_new_tokens, const ShardChoice& choice,
                              Communicator* world);

}  // namespace semskip
