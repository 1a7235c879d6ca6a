#include "comm/nccl_communicator.h"

#include <chrono>
#include <cstring>
#include <cstdlib>
#include <numeric>
#include <thread>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <nccl.h>

#include "core/error.h"
#include "core/timing.h"

namespace semskip {

struct NcclState {
  ncclComm_t comm = nullptr;
  at::Device device{at::kCUDA, 0};
  bool aborted = false;
};

namespace {

#define SEMSKIP_NCCL_CHECK(rank, call)                                                                         \
  do {                                                                                                         \
    const ncclResult_t semskip_nccl_rc = (call);                                                               \
    SEMSKIP_THROW_IF_NOT_MSG(semskip_nccl_rc == ncclSuccess, "rank {}: {} failed: {} ({})", (rank), #call,   \
                             ncclGetErrorString(semskip_nccl_rc), ncclGetLastError(nullptr));                 \
  } while (0)

#define SEMSKIP_CUDA_CHECK(rank, call)                                                                         \
  do {                                                                                                         \
    const cudaError_t semskip_cuda_rc = (call);                                                                \
    SEMSKIP_THROW_IF_NOT_MSG(semskip_cuda_rc == cudaSuccess, "rank {}: {} failed: {}", (rank), #call,        \
                             cudaGetErrorString(semskip_cuda_rc));                                             \
  } while (0)

cudaStream_t stream_of(const at::Device& device) { return c10::cuda::getCurrentCUDAStream(device.index()).stream(); }

// Reductions: the interface allows fp32, fp64 and int64 (as MpiCommunicator does).
ncclDataType_t reduce_type(at::ScalarType t, const char* what) {
  switch (t) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kLong: return ncclInt64;
    default:
      SEMSKIP_THROW_MSG("{}: cannot reduce {} tensors; reductions take fp32, fp64 or int64", what, c10::toString(t));
  }
}

// Moving data: any dtype the interface lists, as bytes (NCCL has no int16 or bool type, and
// bytes are what moves anyway).
void check_movable(at::ScalarType t, const char* what) {
  switch (t) {
    case at::kFloat: case at::kDouble: case at::kBFloat16: case at::kHalf: case at::kLong: case at::kInt:
    case at::kShort: case at::kChar: case at::kByte: case at::kBool:
      return;
    default:
      SEMSKIP_THROW_MSG("{}: dtype {} is not supported", what, c10::toString(t));
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::sum: return ncclSum;
    case ReduceOp::max: return ncclMax;
    case ReduceOp::min: return ncclMin;
  }
  return ncclSum;
}

int64_t row_bytes(const at::Tensor& x) {
  int64_t n = x.element_size();
  for (int64_t i = 1; i < x.dim(); ++i) n *= x.size(i);
  return n;
}

std::vector<int64_t> with_rows(int64_t n_rows, const at::Tensor& like) {
  std::vector<int64_t> shape = like.sizes().vec();
  shape[0] = n_rows;
  return shape;
}

at::Tensor back_to(const at::Tensor& out, const at::Device& device) { return out.device() == device ? out : out.to(device); }

}  // namespace

NcclCommunicator::NcclCommunicator(std::unique_ptr<Communicator> host, at::Device device, double timeout_s)
    : host_(std::move(host)), state_(std::make_unique<NcclState>()), timeout_s_(timeout_s) {
  SEMSKIP_ASSERT(host_);
  SEMSKIP_THROW_IF_NOT_MSG(device.is_cuda(), "rank {}: the NCCL communicator needs a CUDA device, got {}", rank(),
                           device.str());
  if (!device.has_index()) device = at::Device(at::kCUDA, 0);
  state_->device = device;
  ::setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
  c10::cuda::CUDAGuard guard(device);
  ncclUniqueId id;
  at::Tensor id_bytes = at::empty({static_cast<int64_t>(sizeof(id))}, at::kByte);
  if (host_->rank() == 0) {
    SEMSKIP_NCCL_CHECK(rank(), ncclGetUniqueId(&id));
    std::memcpy(id_bytes.data_ptr(), &id, sizeof(id));
  }
  id_bytes = host_->broadcast(id_bytes, 0).contiguous();
  std::memcpy(&id, id_bytes.data_ptr(), sizeof(id));
  SEMSKIP_NCCL_CHECK(rank(), ncclCommInitRank(&state_->comm, size(), id, rank()));
}

NcclCommunicator::~NcclCommunicator() {
  if (!state_ || !state_->comm) return;
  if (state_->aborted) return;
  ncclCommDestroy(state_->comm);
}

at::Device NcclCommunicator::device() const { return state_->device; }

std::string NcclCommunicator::describe() const {
  std::string h = host_->describe();  // "mpi:world(4)"
  const size_t colon = h.find(':');
  return "nccl" + (colon == std::string::npos ? ":" + h : h.substr(colon));
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  // A new NCCL communicator over the host group's split: its own unique id, its own ranks.
  return std::make_unique<NcclCommunicator>(host_->split(color, key), state_->device, timeout_s_);
}

at::Tensor NcclCommunicator::on_device(const at::Tensor& x) const {
  return (x.device() == state_->device ? x : x.to(state_->device)).contiguous();
}

void NcclCommunicator::wait(const char* what) {
  const cudaStream_t stream = stream_of(state_->device);
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t q = cudaStreamQuery(stream);
    if (q == cudaSuccess) return;
    SEMSKIP_THROW_IF_NOT_MSG(q == cudaErrorNotReady, "rank {}: {}: CUDA error while waiting: {}", rank(), what,
                             cudaGetErrorString(q));
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(state_->comm, &async);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (async != ncclSuccess || waited > timeout_s_) {
      ncclCommAbort(state_->comm);
      state_->aborted = true;
      if (async != ncclSuccess)
        SEMSKIP_THROW_MSG("rank {}: NCCL {} failed: {}; communicator aborted", rank(), what, ncclGetErrorString(async));
      SEMSKIP_THROW_MSG("rank {}: NCCL {} did not complete within {} s (a peer rank stopped or took another path); "
                        "communicator aborted",
                        rank(), what, timeout_s_);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

at::Tensor NcclCommunicator::allreduce(const at::Tensor& x, ReduceOp op) {
  const ncclDataType_t type = reduce_type(x.scalar_type(), "allreduce");
  SEMSKIP_THROW_IF_NOT_MSG(!state_->aborted, "rank {}: allreduce on an aborted NCCL communicator", rank());
  TimedCollective timed(stats_, CollectiveKind::allreduce);
  c10::cuda::CUDAGuard guard(state_->device);
  const at::Tensor in = on_device(x);
  at::Tensor out = at::empty_like(in);
  if (in.numel() > 0)
    SEMSKIP_NCCL_CHECK(rank(), ncclAllReduce(in.data_ptr(), out.data_ptr(), static_cast<size_t>(in.numel()), type,
                                             nccl_op(op), state_->comm, stream_of(state_->device)));
  wait("allreduce");
  const int64_t n = size();
  const int64_t ring = n > 1 ? 2 * (n - 1) * static_cast<int64_t>(in.nbytes()) / n : 0;
  timed.bytes(ring, ring);
  return back_to(out, x.device());
}

at::Tensor NcclCommunicator::allgather(const at::Tensor& x) {
  check_movable(x.scalar_type(), "allgather");
  SEMSKIP_THROW_IF_NOT_MSG(!state_->aborted, "rank {}: allgather on an aborted NCCL communicator", rank());
  TimedCollective timed(stats_, CollectiveKind::allgather);
  c10::cuda::CUDAGuard guard(state_->device);
  const at::Tensor in = on_device(x);
  std::vector<int64_t> shape = in.sizes().vec();
  shape.insert(shape.begin(), size());
  at::Tensor out = at::empty(shape, in.options());
  if (in.nbytes() > 0)
    SEMSKIP_NCCL_CHECK(rank(), ncclAllGather(in.data_ptr(), out.data_ptr(), in.nbytes(), ncclUint8, state_->comm,
                                             stream_of(state_->device)));
  wait("allgather");
  const int64_t others = static_cast<int64_t>(size() - 1) * static_cast<int64_t>(in.nbytes());
  timed.bytes(others, others);
  return back_to(out, x.device());
}

at::Tensor NcclCommunicator::allgatherv(const at::Tensor& x, std::vector<int64_t>* counts_out) {
  SEMSKIP_THROW_IF_NOT_MSG(x.dim() >= 1, "allgatherv: needs a tensor of rows [n, ...], got a scalar");
  check_movable(x.scalar_type(), "allgatherv");
  SEMSKIP_THROW_IF_NOT_MSG(!state_->aborted, "rank {}: allgatherv on an aborted NCCL communicator", rank());
  TimedCollective timed(stats_, CollectiveKind::allgatherv);
  // Counts, row width and dtype over the host group (it also refuses ranks that disagree).
  const int64_t rb = row_bytes(x);
  const at::Tensor mine = at::tensor({x.size(0), rb, static_cast<int64_t>(x.scalar_type())}, at::kLong);
  const at::Tensor meta = host_->allgather(mine);  // [size, 3]
  std::vector<int64_t> counts(static_cast<size_t>(size()));
  int64_t total = 0;
  for (int r = 0; r < size(); ++r) {
    const int64_t n = meta[r][0].item<int64_t>(), w = meta[r][1].item<int64_t>(), t = meta[r][2].item<int64_t>();
    SEMSKIP_THROW_IF_NOT_MSG(w == rb && t == static_cast<int64_t>(x.scalar_type()),
                             "allgatherv: rank {} sends rows of {} bytes of {}, rank {} rows of {} bytes of {}", r, w,
                             c10::toString(static_cast<at::ScalarType>(t)), rank(), rb, c10::toString(x.scalar_type()));
    counts[static_cast<size_t>(r)] = n;
    total += n;
  }
  c10::cuda::CUDAGuard guard(state_->device);
  const at::Tensor in = on_device(x);
  at::Tensor out = at::empty(with_rows(total, in), in.options());
  // Every rank's rows to every rank: a broadcast per source inside one group.
  auto* dst = static_cast<uint8_t*>(out.data_ptr());
  SEMSKIP_NCCL_CHECK(rank(), ncclGroupStart());
  int64_t offset = 0;
  for (int r = 0; r < size(); ++r) {
    const size_t bytes = static_cast<size_t>(counts[static_cast<size_t>(r)] * rb);
    if (bytes > 0)
      SEMSKIP_NCCL_CHECK(rank(), ncclBroadcast(r == rank() ? in.data_ptr() : nullptr, dst + offset, bytes, ncclUint8, r,
                                               state_->comm, stream_of(state_->device)));
    offset += static_cast<int64_t>(bytes);
  }
  SEMSKIP_NCCL_CHECK(rank(), ncclGroupEnd());
  wait("allgatherv");
  timed.bytes((size() - 1) * x.size(0) * rb, (total - x.size(0)) * rb);
  if (counts_out) *counts_out = std::move(counts);
  return back_to(out, x.device());
}

std::vector<int64_t> NcclCommunicator::alltoall_counts(const std::vector<int64_t>& send_counts) {
  // Host integers: the host group is the right place (one small message each way).
  return host_->alltoall_counts(send_counts);
}

at::Tensor NcclCommunicator::alltoallv(const at::Tensor& rows, const std::vector<int64_t>& send_counts,
                                       const std::vector<int64_t>& recv_counts) {
  SEMSKIP_THROW_IF_NOT_MSG(rows.dim() >= 1, "alltoallv: needs a tensor of rows [n, ...], got a scalar");
  SEMSKIP_THROW_IF_NOT_MSG(static_cast<int>(send_counts.size()) == size() && static_cast<int>(recv_counts.size()) == size(),
                           "alltoallv: {} send and {} receive counts for a group of {} ranks", send_counts.size(),
                           recv_counts.size(), size());
  const int64_t n_send = std::accumulate(send_counts.begin(), send_counts.end(), int64_t{0});
  SEMSKIP_THROW_IF_NOT_MSG(n_send == rows.size(0), "alltoallv: send counts add up to {} rows, the tensor has {}",
                           n_send, rows.size(0));
  check_movable(rows.scalar_type(), "alltoallv");
  SEMSKIP_THROW_IF_NOT_MSG(!state_->aborted, "rank {}: alltoallv on an aborted NCCL communicator", rank());
  TimedCollective timed(stats_, CollectiveKind::alltoallv);
  c10::cuda::CUDAGuard guard(state_->device);
  const at::Tensor in = on_device(rows);
  const int64_t n_recv = std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0});
  at::Tensor out = at::empty(with_rows(n_recv, in), in.options());
  const int64_t rb = row_bytes(in);
  const auto* src = static_cast<const uint8_t*>(in.data_ptr());
  auto* dst = static_cast<uint8_t*>(out.data_ptr());
  // All-to-all as grouped point-to-point sends and receives (NCCL has no alltoallv).
  SEMSKIP_NCCL_CHECK(rank(), ncclGroupStart());
  int64_t so = 0, ro = 0;
  for (int r = 0; r < size(); ++r) {
    const int64_t sb = send_counts[static_cast<size_t>(r)] * rb, rbytes = recv_counts[static_cast<size_t>(r)] * rb;
    if (sb > 0)
      SEMSKIP_NCCL_CHECK(rank(), ncclSend(src + so, static_cast<size_t>(sb), ncclUint8, r, state_->comm,
                                          stream_of(state_->device)));
    if (rbytes > 0)
      SEMSKIP_NCCL_CHECK(rank(), ncclRecv(dst + ro, static_cast<size_t>(rbytes), ncclUint8, r, state_->comm,
                                          stream_of(state_->device)));
    so += sb;
    ro += rbytes;
  }
  SEMSKIP_NCCL_CHECK(rank(), ncclGroupEnd());
  wait("alltoallv");
  const size_t me = static_cast<size_t>(rank());
  timed.bytes((n_send - send_counts[me]) * rb, (n_recv - recv_counts[me]) * rb);
  return back_to(out, rows.device());
}

at::Tensor NcclCommunicator::broadcast(const at::Tensor& x, int root) {
  SEMSKIP_THROW_IF_NOT_MSG(root >= 0 && root < size(), "broadcast: root {} outside [0, {})", root, size());
  SEMSKIP_THROW_IF_NOT_MSG(!state_->aborted, "rank {}: broadcast on an aborted NCCL communicator", rank());
  TimedCollective timed(stats_, CollectiveKind::broadcast);
  const bool is_root = rank() == root;
  // The root's dtype and shape over the host group, the payload over NCCL.
  nlohmann::json header;
  if (is_root) {
    SEMSKIP_THROW_IF_NOT_MSG(x.defined(), "broadcast: the root's tensor is undefined");
    check_movable(x.scalar_type(), "broadcast");
    header = {{"dtype", static_cast<int64_t>(x.scalar_type())}, {"shape", x.sizes().vec()}};
  }
  header = nlohmann::json::parse(host_->broadcast(is_root ? header.dump() : std::string(), root));
  const auto dtype = static_cast<at::ScalarType>(header["dtype"].get<int64_t>());
  const std::vector<int64_t> shape = header["shape"].get<std::vector<int64_t>>();
  c10::cuda::CUDAGuard guard(state_->device);
  at::Tensor buf = is_root ? on_device(x).clone() : at::empty(shape, at::TensorOptions().dtype(dtype).device(state_->device));
  if (buf.nbytes() > 0)
    SEMSKIP_NCCL_CHECK(rank(), ncclBroadcast(buf.data_ptr(), buf.data_ptr(), buf.nbytes(), ncclUint8, root,
                                             state_->comm, stream_of(state_->device)));
  wait("broadcast");
  const int64_t bytes = static_cast<int64_t>(buf.nbytes());
  timed.bytes(is_root ? (size() - 1) * bytes : 0, is_root ? 0 : bytes);
  const at::Device device = x.defined() ? x.device() : at::Device(at::kCPU);
  return back_to(buf, device);
}

std::string NcclCommunicator::broadcast(const std::string& s, int root) { return host_->broadcast(s, root); }

void NcclCommunicator::barrier() {
  // Device work of this rank done, then every rank meets on the host.
  TimedCollective timed(stats_, CollectiveKind::barrier);
  c10::cuda::CUDAGuard guard(state_->device);
  wait("barrier");
  host_->barrier();
  timed.bytes(0, 0);
}

}  // namespace semskip
