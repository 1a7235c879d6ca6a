#pragma once
// What every command that writes a report shares: the `--metadata` and `--force` options, the
// checks made before any work, and the description of the environment the run happens in
// (library versions, CPU, threads, GPUs), which `semskip env` also prints.

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "reports/run_info.h"

namespace semskip {

struct ReportFlags {
  std::vector<std::string> metadata;  // `--metadata key=value`, in the order given
  bool force = false;                 // `--force`: overwrite an existing report
};

// Adds `--metadata key=value` (repeatable) and `--force` to `cmd`, bound to `flags` (which must
// outlive the parse, like every option target).
void add_report_flags(CLI::App* cmd, ReportFlags& flags);

// Before any work: report::check_report_path(report_path, flags.force) and the metadata
// parsed. Returns the `user_metadata` JSON for RunInfo::user_metadata_json; semskip::Error
// naming the path or the malformed / duplicate entry.
std::string check_report_flags(const ReportFlags& flags, const std::string& report_path);

struct GpuDescription {
  std::string name;          // "NVIDIA H200"
  int64_t memory_bytes = 0;  // total device memory
};

// Every CUDA device this process sees (empty in a CPU build or without devices).
std::vector<GpuDescription> visible_gpus();

// report::collect_run_info() completed with what only the drivers know: the LibTorch, FAISS,
// MPI, CUDA and NCCL versions, the resolved thread counts, and `gpus` (names and memory, in
// the order given; pass {} on CPU). config_json, user metadata, world_size and hosts of a
// multi-rank run stay for the caller.
report::RunInfo collect_environment(const std::vector<GpuDescription>& gpus);

// The environment part of `info` as one JSON object (what `semskip env --json` prints): keys
// semskip_version, git_revision, torch_version, faiss_version, mpi_version, hdf5_version,
// cuda_version, nccl_version, cpu_model, torch_threads, omp_threads, gpus
// ([{"name","memory_bytes"}]), world_size, hosts, slurm_job_id, slurm_array_job_id,
// slurm_array_task_id.
nlohmann::ordered_json environment_json(const report::RunInfo& info);

// "MPI_Get_library_version", first line ("unknown" if it fails); callable before MPI_Init.
std::string mpi_library_version();

}  // namespace semskip
