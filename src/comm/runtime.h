#pragma once
// The process's place in a distributed run (docs/architecture.md §4): MPI initialised once per process
// (MPI_Init_thread; a process started without mpirun is a world of one, MPI's singleton
// init), rank, local rank on its node, world size, every rank's host, the device of this
// rank, and the world Communicator. MPI is finalised at process exit, after main returns.
//
// Commands that never ask for the Runtime never initialise MPI.

#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>

#include "comm/communicator.h"

namespace semskip {

class Runtime {
 public:
  // Initialises MPI on the first call (thread-safe), or adopts an MPI that another component
  // initialised; either way MPI_Finalize runs at exit unless someone finalised it before.
  // semskip::Error when MPI cannot start or offers less than MPI_THREAD_FUNNELED.
  static Runtime& get();
  // Whether get() (or anyone) has initialised MPI in this process and not finalised it.
  static bool mpi_active();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  int local_rank() const { return local_rank_; }  // rank among the processes of this node
  int local_size() const { return local_size_; }
  const std::string& host() const { return hosts_[static_cast<size_t>(rank_)]; }
  const std::vector<std::string>& hosts() const { return hosts_; }  // by rank
  int n_nodes() const { return n_nodes_; }
  bool is_root() const { return rank_ == 0; }
  // "rank 2/4 (node7)" — how messages name this process.
  std::string label() const;

  // One process per device: cuda:<local_rank % n_gpus> when this LibTorch sees CUDA devices,
  // else cpu.
  at::Device device() const;
  // A requested device made concrete for this rank: "cuda" without an index becomes
  // cuda:<local_rank % n_gpus>; cpu and explicit cuda:N stay as they are.
  at::Device device(const at::Device& requested) const;

  // Every rank of the job (a duplicate of MPI_COMM_WORLD).
  Communicator& world() { return *world_; }
  // The world as `--comm <kind>` asks for it on `device` (resolve_comm_kind in
  // comm/nccl_communicator.h): world() itself for MPI, else one NCCL communicator over the same
  // ranks, made on the first call (collective then) and kept. semskip::Error naming --comm when
  // the kind is refused, or when a later call asks for another device.
  Communicator& world(const std::string& comm_kind, const at::Device& device);

  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

 private:
  Runtime();

  int rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  int n_nodes_ = 1;
  std::vector<std::string> hosts_;  // [world_size], by rank
  std::unique_ptr<Communicator> world_;
  std::unique_ptr<Communicator> nccl_world_;  // --comm nccl (or auto on CUDA), on nccl_device_
  at::Device nccl_device_ = at::kCPU;
};

}  // namespace semskip
