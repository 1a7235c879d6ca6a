// make_communicator / have_nccl: the `--comm` choice, in every build (a CPU build says that
// it has no NCCL instead of failing to link).
#include "comm/nccl_communicator.h"

#include "core/error.h"

namespace semskip {

bool have_nccl() {
#ifdef SEMSKIP_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

const char* resolve_comm_kind(const std::string& kind, bool built_with_nccl, const at::Device& device) {
  SEMSKIP_THROW_IF_NOT_MSG(kind == "auto" || kind == "mpi" || kind == "nccl",
                           "option --comm: expected auto, mpi or nccl, got '{}'", kind);
  if (kind == "mpi" || (kind == "auto" && !(built_with_nccl && device.is_cuda()))) return "mpi";
  SEMSKIP_THROW_IF_NOT_MSG(built_with_nccl,
                           "option --comm nccl: this build has no NCCL (configure with SEMSKIP_WITH_CUDA=ON), use "
                           "--comm mpi or auto");
  SEMSKIP_THROW_IF_NOT_MSG(device.is_cuda(),
                           "option --comm nccl: NCCL needs a CUDA device, this rank runs on {} (use --device cuda, "
                           "or --comm mpi)",
                           device.str());
  return "nccl";
}

std::unique_ptr<Communicator> make_communicator(const std::string& kind, std::unique_ptr<Communicator> host,
                                                const at::Device& device) {
  if (std::string(resolve_comm_kind(kind, have_nccl(), device)) == "mpi") return host;
#ifdef SEMSKIP_HAVE_NCCL
  return std::make_unique<NcclCommunicator>(std::move(host), device);
#else
  return host;
#endif
}

}  // namespace semskip
