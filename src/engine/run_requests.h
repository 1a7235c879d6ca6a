#pragma once
// The requests of a `semskip run` and this rank's shard of them (docs/architecture.md §4). Every rank
// reads the same stream: the first `n_calib` requests calibrate (the same on every rank), the
// next ones (up to max_requests, 0: all) are evaluated, split over the shards by
// workloads/sharding.h. The assignment is decided on rank 0 and broadcast with the request
// sizes it saw; each rank checks that its own reading agrees, so ranks that read different
// files fail with a message instead of evaluating an inconsistent split.
//
// What a run leaves out is counted, not dropped silently: past --max-requests the stream is read
// to its end so the run can say "evaluated 40 of 312 requests (12 of 80 documents)". The units
// of the requests (Request::document: documents of a text workload, conversations of a chat set,
// else each request) are what intervals resample and what a tune/eval split divides.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "skip/descriptor.h"
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
  // The stream after calibration without --max-requests: requests and their units.
  // `n_available_exact` false: reading the rest stopped at a refused entry (`available_note`
  // says which); the counts are then lower bounds.
  int64_t n_available_total = 0;
  int64_t n_units_evaluated = 0, n_units_available = 0;
  bool n_available_exact = true;
  std::string available_note;
  std::string unit = "request";               // document | conversation | request
  std::map<int64_t, std::string> unit_of_id;  // Request::id → its unit key (every evaluated request)
};

// "document", "conversation" or "request": what Request::document names in `requests` (the part
// before ':'; "request" when any request has none).
std::string unit_kind(const std::vector<Request>& requests);
// The unit key of a request: its document, or "request:<id>" when it has none.
std::string unit_key(const Request& r);

// A tune/eval split by units: the units (first-appearance order) are shuffled with `seed` and the
// first round(tune_fraction · n_units) (at least one, at most n_units − 1) go to tune, the rest
// to eval; each part keeps stream order. semskip::Error naming `what` when there are fewer than
// two units or the fraction is outside (0, 1).
struct SplitParts {
  std::vector<Request> tune, eval;
  int64_t n_units_tune = 0, n_units_eval = 0;
};
SplitParts split_by_units(std::vector<Request> requests, double tune_fraction, uint64_t seed, const std::string& what);

// `text` of --split: "F" or "tune=F" with F in (0, 1); semskip::Error naming --split otherwise.
double parse_split_fraction(const std::string& text);

// The requests in the order of permutation `order` (seeded by `seed`; order 0 is `requests`'
// own order): how --orders reruns a cache policy.
std::vector<Request> permuted_requests(const std::vector<Request>& requests, int64_t order, uint64_t seed);

// The policies a run builds, fitted to the calibration it has: PCA keys need at least kdim
// calibration tokens. A default policy (RunConfig::default_policies()) asking for more gets
// kdim lowered to the largest power of two the tokens allow (proj=none below 8), each change in
// `warnings`; a policy given by the user fails with semskip::Error saying what to set.
std::vector<Descriptor> fit_policies_to_calibration(const std::vector<Descriptor>& policies, int64_t n_calib_tokens,
                                                    int64_t n_calib_requests, std::vector<std::string>& warnings);

// "evaluated 40 of 312 requests (12 of 80 documents)".
std::string describe_coverage(const RunRequests& r);

// `max_new_tokens` adds to each request's size for the balanced split. `world`: the ranks
// that agree on the split (collective when it has more than one rank); null: decided here.
RunRequests load_run_requests(const WorkloadSpec& spec, const WorkloadContext& ctx, int64_t n_calib,
                              int64_t max_requests, int64_t max_new_tokens, const ShardChoice& choice,
                              Communicator* world);

}  // namespace semskip
