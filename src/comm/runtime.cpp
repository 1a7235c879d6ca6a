#include "comm/runtime.h"

#include <mpi.h>

#include <cstdlib>
#include <cstring>
#include <set>

#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/format.h>

#include "core/error.h"
#include "comm/mpi_check.h"
#include "comm/mpi_communicator.h"
#include "comm/nccl_communicator.h"

namespace semskip {

namespace {

void finalize_mpi() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

int n_cuda_devices() {
  return at::hasCUDA() ? static_cast<int>(at::detail::getCUDAHooks().getNumGPUs()) : 0;
}

}  // namespace

bool Runtime::mpi_active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

Runtime& Runtime::get() {
  // Never destroyed: its communicator must outlive every static that might still use it, and
  // MPI_Finalize (registered below) runs at exit regardless.
  static Runtime* const runtime = new Runtime();
  return *runtime;
}

Runtime::Runtime() {
  int initialized = 0, finalized = 0;
  SEMSKIP_MPI_CHECK(MPI_Finalized(&finalized));
  SEMSKIP_THROW_IF_NOT_MSG(!finalized, "MPI was already finalised in this process; it cannot be restarted");
  SEMSKIP_MPI_CHECK(MPI_Initialized(&initialized));
  int provided = MPI_THREAD_SINGLE;
  if (!initialized) {
    // MPI is called from one thread at a time; LibTorch's OpenMP workers never call it.
    SEMSKIP_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided));
  } else {
    SEMSKIP_MPI_CHECK(MPI_Query_thread(&provided));
  }
  std::atexit(finalize_mpi);
  SEMSKIP_THROW_IF_NOT_MSG(provided >= MPI_THREAD_FUNNELED,
                           "MPI offers thread level {} only; semskip needs MPI_THREAD_FUNNELED or more", provided);
  SEMSKIP_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  SEMSKIP_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));

  MPI_Comm node = MPI_COMM_NULL;
  SEMSKIP_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  SEMSKIP_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  SEMSKIP_MPI_CHECK(MPI_Comm_size(node, &local_size_));
  SEMSKIP_MPI_CHECK(MPI_Comm_free(&node));

  char name[MPI_MAX_PROCESSOR_NAME] = {0};
  int len = 0;
  SEMSKIP_MPI_CHECK(MPI_Get_processor_name(name, &len));
  std::vector<char> all(static_cast<size_t>(world_size_) * MPI_MAX_PROCESSOR_NAME, '\0');
  SEMSKIP_MPI_CHECK(
      MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, MPI_COMM_WORLD));
  for (int r = 0; r < world_size_; ++r) {
    const char* h = &all[static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME];
    hosts_.emplace_back(h, strnlen(h, MPI_MAX_PROCESSOR_NAME));
  }
  n_nodes_ = static_cast<int>(std::set<std::string>(hosts_.begin(), hosts_.end()).size());
  world_ = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world");
}

Runtime::~Runtime() = default;

Communicator& Runtime::world(const std::string& comm_kind, const at::Device& device) {
  if (std::string(resolve_comm_kind(comm_kind, have_nccl(), device)) == "mpi") return *world_;
  if (!nccl_world_) {
    nccl_world_ = make_communicator("nccl", std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world"), device);
    nccl_device_ = device;
  }
  SEMSKIP_THROW_IF_NOT_MSG(nccl_device_ == device, "option --comm nccl: {} already has an NCCL world on {}, not {}",
                           label(), nccl_device_.str(), device.str());
  return *nccl_world_;
}

std::string Runtime::label() const { return fmt::format("rank {}/{} ({})", rank_, world_size_, host()); }

at::Device Runtime::device() const {
  const int n = n_cuda_devices();
  return n > 0 ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank_ % n)) : at::Device(at::kCPU);
}

at::Device Runtime::device(const at::Device& requested) const {
  if (!requested.is_cuda() || requested.has_index()) return requested;
  const int n = n_cuda_devices();
  SEMSKIP_THROW_IF_NOT_MSG(n > 0, "{}: device cuda requested, but this build sees no CUDA device", label());
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank_ % n));
}

}  // namespace semskip
