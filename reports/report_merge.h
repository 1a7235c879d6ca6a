#pragma once
// Many reports of one experiment made into one (`semskip report merge`): the shards of a
// distributed-by-hand run, the tasks of a SLURM job array, the points of a sweep. Each table of
// the sources becomes one table of their rows, led by a `source` column that indexes the
// `/sources` table, which keeps every source's provenance (file, time, command line, revision,
// hosts, SLURM ids, metadata, configuration). Merging refuses, naming the file and the field,
// sources that cannot belong together: another schema, semskip version or git revision,
// another command, a configuration that differs in a key not declared to vary, the same
// configuration twice, an incomplete set of shards, tables or columns that do not match.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reports/report_reader.h"
#include "reports/table.h"

namespace semskip::report {

// Configuration keys (`config_json`) that may differ between the reports of one experiment
// without being declared: where the report went, how it was printed, which shard it ran.
inline constexpr const char* kAlwaysVaryingKeys[] = {"report", "json", "shard_index"};

struct MergeOptions {
  std::vector<std::string> inputs;  // two or more complete reports
  std::string output;               // the merged report (written as <output>.tmp, then renamed)
  std::vector<std::string> vary;    // configuration keys the sources may differ in
  bool force = false;               // replace an existing output
};

// Keys of `config_json` whose values differ between `a` and `b`, `ignore` left out, sorted.
std::vector<std::string> config_differences(const nlohmann::json& a, const nlohmann::json& b,
                                            const std::vector<std::string>& ignore);

// `config_json` of a report, parsed; semskip::Error naming the file when it is not a JSON object.
nlohmann::json report_config(const ReportReader& r);

// The provenance of each reader, one row per source in order: `source`, `file` (absolute),
// `created_utc`, `command_line`, `git_revision`, `world_size`, `hosts`, `slurm_job_id`,
// `slurm_array_job_id`, `slurm_array_task_id`, `user_metadata`, `config_json`.
Table sources_table(const std::vector<const ReportReader*>& readers);

// Checks what merging needs of the sources (above) without writing anything; semskip::Error
// naming the first file and field that do not fit.
void check_mergeable(const std::vector<const ReportReader*>& readers, const std::vector<std::string>& vary);

// Writes the merged report. Its root attributes are the first source's, except: created_utc
// and command_line (of the merge), config_json (the keys every source agrees on), world_size
// (all sources' ranks), hosts, gpus and gpu_memory_bytes (all sources', in source order), and
// `merged_sources` (int64) and `merged_varied_keys` (JSON array) added.
void merge_reports(const MergeOptions& options);

}  // namespace semskip::report
