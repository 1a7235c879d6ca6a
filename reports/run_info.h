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
  // Libraries the binary runs with: a version string, "none" where the build has no such library.
  std::string torch_version = "unknown";  // TORCH_VERSION (the caller knows LibTorch)
  std::string faiss_version = "none";     // FAISS_VERSION_*, "none" without FAISS
  std::string mpi_version = "unknown";    // MPI_Get_library_version, first line
  std::string hdf5_version;               // H5get_libversion (filled by collect_run_info)
  std::string cuda_version = "none";      // CUDA runtime, "none" in a CPU build
  std::string nccl_version = "none";      // NCCL, "none" in a CPU build
  std::string cpu_model;                  // /proc/cpuinfo "model name", "unknown" without it
  int64_t torch_threads = 0;              // at::get_num_threads(); 0 when not given
  int64_t omp_threads = 0;                // omp_get_max_threads(); 0 when not given
  std::vector<int64_t> gpu_memory_bytes;  // total memory of each entry of `gpus`, same order
  std::string user_metadata_json = "{}";  // `--metadata key=value`: a JSON object of strings
};

// Root attribute `status` is written by ReportWriter itself (report_writer.h): "complete" only
// when commit() ran.

// What this process knows by itself: versions, the current UTC time, its own command line
// (from /proc/self/cmdline; "" where that does not exist), the SLURM ids of its environment,
// world_size 1, this host's name, the HDF5 version and the CPU model. Multi-rank runs replace
// world_size and hosts with the gathered values; the caller sets config_json, gpus and
// gpu_memory_bytes, the Torch/FAISS/MPI/CUDA/NCCL versions, thread counts and user metadata
// (drivers/report_flags.h collect_environment does all but config_json and user metadata).
RunInfo collect_run_info();

// Writes `info` as root attributes (names and types in reports/SCHEMA.md). semskip::Error
// when config_json is not valid JSON.
void write_run_info(ReportWriter& writer, const RunInfo& info);

// Reads the root attributes written by write_run_info; semskip::Error naming the file when
// the schema_version attribute is missing (not a semskip report), when the file is not a
// complete report (check_report_complete), or when another attribute is missing.
RunInfo read_run_info(const ReportReader& reader);

// semskip::Error naming the file when its root attribute `status` is not "complete": the
// writer stopped before commit() (a killed run's `.tmp`, or a copy taken while writing).
void check_report_complete(const ReportReader& reader);

// `--metadata key=value` entries (in order) as a JSON object of strings, e.g. {"run":"a","seed":"3"}.
// Keys: letters, digits, '_', '-', '.'; the value is everything after the first '=' (may be
// empty). semskip::Error naming the entry for one without '=' or with a bad key, and naming
// the key for a duplicate.
std::string parse_user_metadata(const std::vector<std::string>& entries);

// "model name" of the first processor in /proc/cpuinfo; "unknown" where there is none.
std::string cpu_model_name();
// "1.10.8": the HDF5 library this binary runs with.
std::string hdf5_library_version();

// Joins arguments into one line a POSIX shell would split back into the same arguments.
std::string format_command_line(const std::vector<std::string>& args);

// "YYYY-MM-DDTHH:MM:SSZ" for the current time.
std::string utc_now_iso8601();

}  // namespace semskip::report
