#pragma once
// What makes a report self-describing (docs/architecture.md §6, docs/conventions.md rule 14): the versions, time,
// command line, resolved config and machines of the run, written once as root attributes.
// reports/SCHEMA.md lists the attribute names and types; a test pins them.

#include <cstdint>
#include <string>
#include <vector>

namespace semskip::report {

class ReportWriter;
class ReportReader;

// Version of the report layout (root attributes, table conventions). Raise it when a name,
// type or meaning changes, and record the change in reports/SCHEMA.md.
inline constexpr int64_t kSchemaVersion = 1;

// The root attribute whose presence marks a file as a semskip report.
inline constexpr const char* kSchemaVersionAttr = "schema_version";

struct RunInfo {
  int64_t schema_version = kSchemaVersion;
  std::string semskip_version;   // core/version.h version()
  std::string git_revision;      // core/version.h git_revision()
  std::string created_utc;       // ISO 8601, "2024-05-01T12:34:56Z"
  std::string command_line;      // the process's arguments, shell-quoted where needed
  std::string config_json = "{}";  // the full resolved configuration, a JSON document
  int64_t world_size = 1;        // number of ranks
  std::vector<std::string> hosts;  // host name of each rank, in rank order
  std::vector<std::string> gpus;   // GPUs used, as the caller describes them; empty on CPU
  std::string slurm_job_id;        // $SLURM_JOB_ID, "" outside SLURM
  std::string slurm_array_job_id;  // $SLURM_ARRAY_JOB_ID, "" outside a job array
  std::string slurm_array_task_id; // $SLURM_ARRAY_TASK_ID, "" outside a job array
};

// What this process knows by itself: versions, the current UTC time, its own command line
// (from /proc/self/cmdline; "" where that does not exist), the SLURM ids of its environment,
// world_size 1 and this host's name. Multi-rank runs replace world_size and hosts with the
// gathered values; the caller sets config_json and gpus.
RunInfo collect_run_info();

// Writes `info` as root attributes (names and types in reports/SCHEMA.md). semskip::Error
// when config_json is not valid JSON.
void write_run_info(ReportWriter& writer, const RunInfo& info);

// Reads the root attributes written by write_run_info; semskip::Error naming the file when
// the schema_version attribute is missing (not a semskip report) or another one is.
RunInfo read_run_info(const ReportReader& reader);

// Joins arguments into one line a POSIX shell would split back into the same arguments.
std::string format_command_line(const std::vector<std::string>& args);

// "YYYY-MM-DDTHH:MM:SSZ" for the current time.
std::string utc_now_iso8601();

}  // namespace semskip::report
