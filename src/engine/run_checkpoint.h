#pragma once
// The resumable state of a `semskip run` beside its report (`--resume`, docs/architecture.md §6):
// at a checkpointed step boundary every rank writes one file,
//   <report>.checkpoint/rank<r>.step<k>.state
// holding its results so far (records, sums, counters, FLOPs) and every policy's state (caches,
// calibration, random streams), written under a temporary name and renamed, so a file under
// its final name is whole. Rank 0 then writes the partial report of the same boundary k
// (attribute steps_done = k). A rank keeps the files of its last two boundaries: the report may
// still be the previous one's when a run is killed between the two writes. A completed run
// removes them all.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/evaluator.h"

namespace semskip {

// The folder of the state files of `report`.
std::string checkpoint_dir(const std::string& report);
// The state file of `rank` at the boundary after `steps_done` steps.
std::string checkpoint_file(const std::string& report, int rank, int64_t steps_done);

// Writes this rank's state file (creating the folder), then removes its files of boundaries
// before `keep_from` (its previous checkpoint). semskip::Error naming the file when it cannot be
// written; no partial file is left under the final name.
void save_checkpoint(const std::string& report, int rank, int world_size, const std::string& config_json,
                     int64_t steps_done, const std::vector<PolicyResult>& results,
                     const std::vector<std::unique_ptr<SkipPolicy>>& policies, int64_t keep_from);

// Reads this rank's state file of boundary `steps_done`, restores `policies` (built from the
// same configuration) and returns the results of the steps before it. semskip::Error naming
// the file when it is missing, damaged, or of another configuration, rank or world size.
std::vector<PolicyResult> load_checkpoint(const std::string& report, int rank, int world_size,
                                          const std::string& config_json, int64_t steps_done,
                                          std::vector<std::unique_ptr<SkipPolicy>>& policies);

// Removes this rank's state files; remove_checkpoint_dir() then the folder when empty.
void remove_checkpoints(const std::string& report, int rank);
void remove_checkpoint_dir(const std::string& report);

}  // namespace semskip
