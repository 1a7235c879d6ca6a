#include "drivers/report_flags.h"

#include <mpi.h>
#include <omp.h>

#include <ATen/Parallel.h>
#include <torch/version.h>

#ifdef SEMSKIP_WITH_FAISS
#include <faiss/Index.h>
#endif
#if SEMSKIP_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>
#if __has_include(<nccl.h>)
#include <nccl.h>
#endif
#endif

#include <fmt/format.h>

#include "reports/report_writer.h"

namespace semskip {

void add_report_flags(CLI::App* cmd, ReportFlags& flags) {
  cmd->add_option("--metadata", flags.metadata,
                  "key=value recorded in the report's user_metadata attribute (repeatable; keys unique)")
      ->type_name("KEY=VALUE")
      ->take_all();
  cmd->add_flag("--force", flags.force, "overwrite an existing report of the same name");
}

std::string check_report_flags(const ReportFlags& flags, const std::string& report_path) {
  const std::string metadata = report::parse_user_metadata(flags.metadata);
  report::check_report_path(report_path, flags.force);
  return metadata;
}

std::vector<GpuDescription> visible_gpus() {
  std::vector<GpuDescription> out;
#if SEMSKIP_CUDA
  const int n = static_cast<int>(c10::cuda::device_count());
  for (int i = 0; i < n; ++i) {
    const cudaDeviceProp* p = at::cuda::getDeviceProperties(i);
    out.push_back({p->name, static_cast<int64_t>(p->totalGlobalMem)});
  }
#endif
  return out;
}

std::string mpi_library_version() {
  char buf[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  if (MPI_Get_library_version(buf, &len) != MPI_SUCCESS) return "unknown";
  std::string s(buf, static_cast<size_t>(std::max(len, 0)));
  const size_t nl = s.find_first_of("\r\n");
  if (nl != std::string::npos) s.resize(nl);
  while (!s.empty() && (s.back() == ' ' || s.back() == ',' || s.back() == '\0')) s.pop_back();
  return s;
}

report::RunInfo collect_environment(const std::vector<GpuDescription>& gpus) {
  report::RunInfo info = report::collect_run_info();
  info.torch_version = TORCH_VERSION;
#ifdef SEMSKIP_WITH_FAISS
  info.faiss_version = fmt::format("{}.{}.{}", FAISS_VERSION_MAJOR, FAISS_VERSION_MINOR, FAISS_VERSION_PATCH);
#else
  info.faiss_version = "none";
#endif
  info.mpi_version = mpi_library_version();
#if SEMSKIP_CUDA
  int rt = 0;
  info.cuda_version = cudaRuntimeGetVersion(&rt) == cudaSuccess
                          ? fmt::format("{}.{}", rt / 1000, (rt % 1000) / 10)
                          : std::string("unknown");
#if defined(NCCL_MAJOR)
  info.nccl_version = fmt::format("{}.{}.{}", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
#else
  info.nccl_version = "unknown";
#endif
#else
  info.cuda_version = "none";
  info.nccl_version = "none";
#endif
  info.torch_threads = at::get_num_threads();
  info.omp_threads = omp_get_max_threads();
  info.gpus.clear();
  info.gpu_memory_bytes.clear();
  for (const GpuDescription& g : gpus) {
    info.gpus.push_back(g.name);
    info.gpu_memory_bytes.push_back(g.memory_bytes);
  }
  return info;
}

nlohmann::ordered_json environment_json(const report::RunInfo& info) {
  nlohmann::ordered_json gpus = nlohmann::ordered_json::array();
  for (size_t i = 0; i < info.gpus.size(); ++i) {
    gpus.push_back({{"name", info.gpus[i]},
                    {"memory_bytes", i < info.gpu_memory_bytes.size() ? info.gpu_memory_bytes[i] : 0}});
  }
  nlohmann::ordered_json j;
  j["semskip_version"] = info.semskip_version;
  j["git_revision"] = info.git_revision;
  j["torch_version"] = info.torch_version;
  j["faiss_version"] = info.faiss_version;
  j["mpi_version"] = info.mpi_version;
  j["hdf5_version"] = info.hdf5_version;
  j["cuda_version"] = info.cuda_version;
  j["nccl_version"] = info.nccl_version;
  j["cpu_model"] = info.cpu_model;
  j["torch_threads"] = info.torch_threads;
  j["omp_threads"] = info.omp_threads;
  j["gpus"] = gpus;
  j["world_size"] = info.world_size;
  j["hosts"] = info.hosts;
  j["slurm_job_id"] = info.slurm_job_id;
  j["slurm_array_job_id"] = info.slurm_array_job_id;
  j["slurm_array_task_id"] = info.slurm_array_task_id;
  return j;
}

}  // namespace semskip
