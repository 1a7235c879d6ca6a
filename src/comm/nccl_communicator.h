#pragma once
// Communicator over NCCL, on the device: the payload of every collective moves GPU to GPU on
// the current CUDA stream of the communicator's device, never through host memory. Built only
// with SEMSKIP_WITH_CUDA (a CUDA LibTorch and NCCL).
//
// Each NcclCommunicator is paired with a host communicator over the same ranks (the MPI one):
// the NCCL unique id is broadcast over it, and the little control traffic a collective needs
// on the host — the row counts of allgatherv, the counts of alltoallv, the root's shape in a
// broadcast, strings — goes over it as well, so the meaning of every call is exactly
// MpiCommunicator's (a test holds the two to the same results).
//
// Failures: every NCCL and CUDA call is checked and its error names the rank and the call. A
// collective does not return before its stream work has finished; while it waits it polls
// ncclCommGetAsyncError, and when NCCL reports an error or the peers do not arrive within the
// timeout (a rank died or took another path), the communicator is aborted (ncclCommAbort) and
// semskip::Error is thrown — never a hang. The job then ends through the usual failure path
// (comm/failure.h). NVLink SHARP (NVLS) is turned off (NCCL_NVLS_ENABLE=0, unless the
// environment sets it): its multicast objects are not available on every machine.
//
// Tensors may live on any device: tensors elsewhere are copied to the communicator's device,
// and results come back on the input's device, as the interface says.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "comm/communicator.h"

namespace semskip {

struct NcclState;  // ncclComm_t and the device, kept out of this header (no nccl.h for users)

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `host`'s ranks: this rank drives `device` (a CUDA device). `timeout_s`:
  // how long a collective may wait for its peers before the communicator is aborted.
  NcclCommunicator(std::unique_ptr<Communicator> host, at::Device device, double timeout_s = 300.0);
  ~NcclCommunicator() override;  // ncclCommDestroy (ncclCommAbort after a failure)
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  at::Device device() const;
  Communicator& host() { return *host_; }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  std::string describe() const override;  // "nccl:world(4)"
  std::unique_ptr<Communicator> split(int color, int key) override;

  at::Tensor allreduce(const at::Tensor& x, ReduceOp op) override;
  at::Tensor allgather(const at::Tensor& x) override;
  at::Tensor allgatherv(const at::Tensor& x, std::vector<int64_t>* counts = nullptr) override;
  std::vector<int64_t> alltoall_counts(const std::vector<int64_t>& send_counts) override;
  at::Tensor alltoallv(const at::Tensor& rows, const std::vector<int64_t>& send_counts,
                       const std::vector<int64_t>& recv_counts) override;
  using Communicator::alltoallv;
  at::Tensor broadcast(const at::Tensor& x, int root) override;
  std::string broadcast(const std::string& s, int root) override;
  void barrier() override;

 private:
  // Waits for the stream work of collective `what`, polling NCCL's asynchronous error.
  void wait(const char* what);
  // x contiguous on this communicator's device.
  at::Tensor on_device(const at::Tensor& x) const;

  std::unique_ptr<Communicator> host_;
  std::unique_ptr<NcclState> state_;
  double timeout_s_;
};

// What `--comm <kind>` runs on `device`: "mpi" or "nccl". "auto" is NCCL when the build has it
// (`built_with_nccl`) and `device` is CUDA, else MPI. semskip::Error naming --comm for another
// kind, and for "nccl" without NCCL in the build or on a non-CUDA device.
const char* resolve_comm_kind(const std::string& kind, bool built_with_nccl, const at::Device& device);
// The communicator `--comm` asks for over `host`'s ranks: "mpi" returns `host` itself, "nccl"
// an NcclCommunicator on `device` (semskip::Error when this build has no NCCL or the device is
// not CUDA). "auto": NCCL when built with it and `device` is CUDA, else MPI.
std::unique_ptr<Communicator> make_communicator(const std::string& kind, std::unique_ptr<Communicator> host,
                                                const at::Device& device);
// Whether this build has the NCCL communicator.
bool have_nccl();

}  // namespace semskip
