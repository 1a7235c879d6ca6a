#pragma once
// Skip coordination per micro-batch (`--sync`, docs/architecture.md §1 and §4): whether the hits a cache
// policy found in a step are applied. A hit that is not applied is treated as a miss: the
// token runs the layers, is not counted as a hit (it is counted as `vetoed`) and is offered to
// the cache like any miss.
//
//   token              every token's own decision (hits always applied; the default)
//   batch:<f>          this rank's micro-batch applies its hits iff hits ≥ f · lookups of the
//                      step on this rank; otherwise none of them (f in [0, 1])
//   global[:<f>]       the step's lookups and hits are summed over every rank of the job and
//                      all ranks apply their hits iff Σ hits ≥ f · Σ lookups, otherwise no rank
//                      does (f defaults to 0.5, a majority of the job's lookups). The decision is
//                      the same on every rank, and when it leaves no token of the job running
//                      the skipped layers (every lookup hit), every rank knows it and leaves out
//                      those layers' expert all-to-alls together.
//   global:group[:<f>] the same, summed over this rank's expert-parallel group only (the
//                      ranks that share the MoE layers' all-to-alls, --ep): each group decides
//                      for itself, and a group whose every lookup hit leaves out its own
//                      all-to-alls. Needs expert parallelism (--ep > 1).
// A step whose lookups are 0 (on this rank for batch, on all ranks for global) applies nothing
// and needs nothing. In one process, global is batch with the same fraction.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace semskip {

enum class SyncMode { token, batch, global };

struct SyncRule {
  SyncMode mode = SyncMode::token;
  double fraction = 0.0;  // batch and global: the share of lookups that must hit
  bool over_group = false;  // global: sum over the expert-parallel group instead of the job

  // semskip::Error naming `what` (the option) on a malformed rule.
  static SyncRule parse(const std::string& text, const std::string& what);
  // The canonical text: "token", "batch:0.5", "global:0.5", "global:group:0.5";
  // parse(describe()) round-trips.
  std::string describe() const;
};

// Sums int64 counters over the ranks that decide together, in place (an allreduce); every
// rank calls it in the same steps. Null: one process.
using SumOverRanks = std::function<void(std::vector<int64_t>&)>;

struct SyncDecision {
  bool apply = true;          // apply this rank's hits
  bool all_skip = false;      // known on every rank: no token of the job runs the skipped layers
  int64_t group_lookups = 0;  // lookups the decision was taken on (this rank or all ranks)
  int64_t group_hits = 0;
};

// The decision for a step with `lookups` lookups of which `hits` reached the threshold on
// this rank. Collective (sum_over_ranks) for global with a non-null `sum`; local otherwise.
SyncDecision decide_sync(const SyncRule& rule, const SumOverRanks& sum, int64_t lookups, int64_t hits);

}  // namespace semskip
