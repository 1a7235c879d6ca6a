#pragma once
// Communicator over an MPI communicator, on the host: device tensors are copied to host
// memory, communicated, and copied back to their device (the NCCL communicator avoids this).

#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"

namespace semskip {

class MpiCommunicator final : public Communicator {
 public:
  // Works on a duplicate of `comm` (our messages never match another library's) with
  // MPI_ERRORS_RETURN set, so every failure reaches SEMSKIP_MPI_CHECK. `name` is for describe().
  MpiCommunicator(MPI_Comm comm, std::string name);
  ~MpiCommunicator() override;  // frees the duplicate (unless MPI is already finalised)
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  MPI_Comm comm() const { return comm_; }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string describe() const override;
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
  MPI_Comm comm_ = MPI_COMM_NULL;  // owned duplicate
  std::string name_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace semskip
