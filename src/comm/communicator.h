#pragma once
// The one communication interface of semskip (docs/conventions.md rule 8): collectives on at::Tensor
// over the ranks of a group. MpiCommunicator implements it on the host (CPU runs, and GPU
// tensors staged through host memory); an NCCL implementation keeps the same meaning on the
// device. Every rank of the group must make the same calls in the same order: a rank with
// nothing to contribute passes an empty tensor (zero rows), never skips the call.
//
// Tensors: any device, any strides (made contiguous); the result is on the input's device.
// Dtypes: fp32, fp64, bf16, fp16, int64, int32, int16, int8, uint8, bool for moving data;
// reducing collectives (allreduce) accept fp32, fp64 and int64 only and refuse the others.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "comm/comm_stats.h"

namespace semskip {

enum class ReduceOp { sum, max, min };

const char* reduce_op_name(ReduceOp op);

struct AlltoallvResult {
  at::Tensor rows;              // [Σ counts, ...]: the rows received, grouped by source rank in rank order
  std::vector<int64_t> counts;  // host [size]: rows received from each rank
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi:world(4)" — the backend and group, as reports name it.
  virtual std::string describe() const = 0;
  // A new communicator per distinct `color`, ranks ordered by (key, rank) — MPI_Comm_split /
  // ncclCommSplit. Collective over this group.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // x: the same shape and dtype on every rank (fp32, fp64 or int64) -> the elementwise
  // reduction over ranks, x's shape, on x's device. x is not modified.
  virtual at::Tensor allreduce(const at::Tensor& x, ReduceOp op) = 0;
  // x: the same shape [...] and dtype on every rank -> [size, ...], rank r's x at index r.
  virtual at::Tensor allgather(const at::Tensor& x) = 0;
  // x [n_r, ...]: dtype and trailing shape the same on every rank, n_r free (0 allowed) ->
  // [Σ n_r, ...], rank order. `counts` (when given) receives n_r of every rank.
  virtual at::Tensor allgatherv(const at::Tensor& x, std::vector<int64_t>* counts = nullptr) = 0;
  // send_counts [size] (what this rank sends to each rank) -> what each rank sends to this one.
  virtual std::vector<int64_t> alltoall_counts(const std::vector<int64_t>& send_counts) = 0;
  // rows [Σ send_counts, ...] grouped by destination rank (send_counts[r] rows for rank r, in
  // rank order) -> [Σ recv_counts, ...] grouped by source rank. recv_counts must be what the
  // other ranks send (alltoall_counts gives it; a reverse trip knows it already).
  virtual at::Tensor alltoallv(const at::Tensor& rows, const std::vector<int64_t>& send_counts,
                               const std::vector<int64_t>& recv_counts) = 0;
  // The same with the counts exchanged first (two collectives).
  AlltoallvResult alltoallv(const at::Tensor& rows, const std::vector<int64_t>& send_counts);
  // Root's tensor (dtype and shape included) on every rank. On other ranks `x` only tells the
  // device of the result (CPU when undefined).
  virtual at::Tensor broadcast(const at::Tensor& x, int root) = 0;
  // Root's string on every rank (the argument is ignored elsewhere).
  virtual std::string broadcast(const std::string& s, int root) = 0;
  // Configs and decisions taken on one rank, never re-derived elsewhere (docs/architecture.md §4).
  nlohmann::json broadcast_json(const nlohmann::json& j, int root);
  virtual void barrier() = 0;

  const CommStats& stats() const { return stats_; }
  void reset_stats() { stats_.reset(); }

 protected:
  CommStats stats_;
};

}  // namespace semskip
