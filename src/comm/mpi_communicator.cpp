#include "comm/mpi_communicator.h"

#include <chrono>
#include <climits>
#include <numeric>

#include <fmt/format.h>

#include "core/error.h"
#include "comm/mpi_check.h"
#include "comm/mpi_datatype.h"
#include "core/timing.h"

namespace semskip {

namespace {

constexpr int64_t kMaxBroadcastDims = 16;

// MPI works on host memory: a contiguous CPU view or copy of x.
at::Tensor host(const at::Tensor& x) { return x.device().is_cpu() ? x.contiguous() : x.to(at::kCPU).contiguous(); }

at::Tensor to_device(const at::Tensor& x, const at::Device& device) { return device.is_cpu() ? x : x.to(device); }

int64_t row_numel(const at::Tensor& x) {
  int64_t n = 1;
  for (int64_t i = 1; i < x.dim(); ++i) n *= x.size(i);
  return n;
}

std::vector<int64_t> with_rows(int64_t n_rows, const at::Tensor& like) {
  std::vector<int64_t> shape = like.sizes().vec();
  shape[0] = n_rows;
  return shape;
}

int to_int(int64_t v, const char* what) {
  SEMSKIP_THROW_IF_NOT_MSG(v >= 0 && v <= INT_MAX, "{}: count {} does not fit an MPI int", what, v);
  return static_cast<int>(v);
}

// Displacements (exclusive prefix sums) of counts, as MPI ints.
void counts_and_displs(const std::vector<int64_t>& counts, std::vector<int>& c, std::vector<int>& d,
                       const char* what) {
  c.resize(counts.size());
  d.resize(counts.size());
  int64_t offset = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    c[i] = to_int(counts[i], what);
    d[i] = to_int(offset, what);
    offset += counts[i];
  }
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name) : name_(std::move(name)) {
  SEMSKIP_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  SEMSKIP_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  SEMSKIP_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  SEMSKIP_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::string MpiCommunicator::describe() const { return fmt::format("mpi:{}({})", name_, size_); }

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  SEMSKIP_THROW_IF_NOT_MSG(color >= 0, "split: color must be >= 0, got {}", color);
  MPI_Comm part = MPI_COMM_NULL;
  SEMSKIP_MPI_CHECK(MPI_Comm_split(comm_, color, key, &part));
  std::unique_ptr<Communicator> out;
  try {
    out = std::make_unique<MpiCommunicator>(part, fmt::format("{}/{}", name_, color));
  } catch (...) {
    MPI_Comm_free(&part);
    throw;
  }
  SEMSKIP_MPI_CHECK(MPI_Comm_free(&part));
  return out;
}

at::Tensor MpiCommunicator::allreduce(const at::Tensor& x, ReduceOp op) {
  const MPI_Datatype type = mpi_reduce_type(x.scalar_type(), "allreduce");
  TimedCollective timed(stats_, CollectiveKind::allreduce);
  const at::Tensor in = host(x);
  at::Tensor out = at::empty_like(in);
  SEMSKIP_MPI_CHECK(MPI_Allreduce(in.data_ptr(), out.data_ptr(), to_int(in.numel(), "allreduce"), type, mpi_op(op),
                                  comm_));
  const int64_t ring = size_ > 1 ? 2 * (size_ - 1) * in.nbytes() / size_ : 0;
  timed.bytes(ring, ring);
  return to_device(out, x.device());
}

at::Tensor MpiCommunicator::allgather(const at::Tensor& x) {
  const MPI_Datatype element = mpi_element_type(x.scalar_type(), "allgather");
  TimedCollective timed(stats_, CollectiveKind::allgather);
  const at::Tensor in = host(x);
  std::vector<int64_t> shape = in.sizes().vec();
  shape.insert(shape.begin(), size_);
  at::Tensor out = at::empty(shape, in.options());
  const MpiRowType piece(element, in.numel());
  SEMSKIP_MPI_CHECK(MPI_Allgather(in.data_ptr(), 1, piece.get(), out.data_ptr(), 1, piece.get(), comm_));
  const int64_t others = static_cast<int64_t>(size_ - 1) * static_cast<int64_t>(in.nbytes());
  timed.bytes(others, others);
  return to_device(out, x.device());
}

at::Tensor MpiCommunicator::allgatherv(const at::Tensor& x, std::vector<int64_t>* counts_out) {
  SEMSKIP_THROW_IF_NOT_MSG(x.dim() >= 1, "allgatherv: needs a tensor of rows [n, ...], got a scalar");
  const MPI_Datatype element = mpi_element_type(x.scalar_type(), "allgatherv");
  TimedCollective timed(stats_, CollectiveKind::allgatherv);
  const at::Tensor in = host(x);
  // Rows, row width and dtype of every rank: the sizes, and a clear error instead of corrupt
  // data when ranks disagree.
  const int64_t mine[3] = {in.size(0), row_numel(in), static_cast<int64_t>(in.scalar_type())};
  std::vector<int64_t> meta(static_cast<size_t>(3 * size_));
  SEMSKIP_MPI_CHECK(MPI_Allgather(mine, 3, MPI_INT64_T, meta.data(), 3, MPI_INT64_T, comm_));
  std::vector<int64_t> counts(static_cast<size_t>(size_));
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    const int64_t* m = &meta[static_cast<size_t>(3 * r)];
    SEMSKIP_THROW_IF_NOT_MSG(m[1] == mine[1] && m[2] == mine[2],
                             "allgatherv: rank {} sends rows of {} {} elements, rank {} rows of {} {} elements", r,
                             m[1], c10::toString(static_cast<at::ScalarType>(m[2])), rank_, mine[1],
                             c10::toString(in.scalar_type()));
    counts[static_cast<size_t>(r)] = m[0];
    total += m[0];
  }
  at::Tensor out = at::empty(with_rows(total, in), in.options());
  std::vector<int> c, d;
  counts_and_displs(counts, c, d, "allgatherv");
  const MpiRowType row(element, row_numel(in));
  SEMSKIP_MPI_CHECK(MPI_Allgatherv(in.data_ptr(), to_int(in.size(0), "allgatherv"), row.get(), out.data_ptr(),
                                   c.data(), d.data(), row.get(), comm_));
  const int64_t row_bytes = row_numel(in) * static_cast<int64_t>(in.element_size());
  const int64_t meta_bytes = static_cast<int64_t>(size_ - 1) * static_cast<int64_t>(sizeof(mine));
  timed.bytes(meta_bytes + (size_ - 1) * in.size(0) * row_bytes, meta_bytes + (total - in.size(0)) * row_bytes);
  if (counts_out) *counts_out = std::move(counts);
  return to_device(out, x.device());
}

std::vector<int64_t> MpiCommunicator::alltoall_counts(const std::vector<int64_t>& send_counts) {
  SEMSKIP_THROW_IF_NOT_MSG(static_cast<int>(send_counts.size()) == size_,
                           "alltoallv: {} send counts for a group of {} ranks", send_counts.size(), size_);
  for (int64_t c : send_counts) SEMSKIP_THROW_IF_NOT_MSG(c >= 0, "alltoallv: negative send count {}", c);
  TimedCollective timed(stats_, CollectiveKind::alltoallv);
  std::vector<int64_t> recv(static_cast<size_t>(size_));
  SEMSKIP_MPI_CHECK(MPI_Alltoall(send_counts.data(), 1, MPI_INT64_T, recv.data(), 1, MPI_INT64_T, comm_));
  const int64_t others = static_cast<int64_t>(size_ - 1) * static_cast<int64_t>(sizeof(int64_t));
  timed.bytes(others, others);
  return recv;
}

at::Tensor MpiCommunicator::alltoallv(const at::Tensor& rows, const std::vector<int64_t>& send_counts,
                                      const std::vector<int64_t>& recv_counts) {
  SEMSKIP_THROW_IF_NOT_MSG(rows.dim() >= 1, "alltoallv: needs a tensor of rows [n, ...], got a scalar");
  SEMSKIP_THROW_IF_NOT_MSG(static_cast<int>(send_counts.size()) == size_ && static_cast<int>(recv_counts.size()) == size_,
                           "alltoallv: {} send and {} receive counts for a group of {} ranks", send_counts.size(),
                           recv_counts.size(), size_);
  const int64_t n_send = std::accumulate(send_counts.begin(), send_counts.end(), int64_t{0});
  SEMSKIP_THROW_IF_NOT_MSG(n_send == rows.size(0), "alltoallv: send counts add up to {} rows, the tensor has {}",
                           n_send, rows.size(0));
  const MPI_Datatype element = mpi_element_type(rows.scalar_type(), "alltoallv");
  TimedCollective timed(stats_, CollectiveKind::alltoallv);
  const at::Tensor in = host(rows);
  const int64_t n_recv = std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0});
  at::Tensor out = at::empty(with_rows(n_recv, in), in.options());
  std::vector<int> sc, sd, rc, rd;
  counts_and_displs(send_counts, sc, sd, "alltoallv");
  counts_and_displs(recv_counts, rc, rd, "alltoallv");
  const MpiRowType row(element, row_numel(in));
  SEMSKIP_MPI_CHECK(MPI_Alltoallv(in.data_ptr(), sc.data(), sd.data(), row.get(), out.data_ptr(), rc.data(),
                                  rd.data(), row.get(), comm_));
  const int64_t row_bytes = row_numel(in) * static_cast<int64_t>(in.element_size());
  const size_t me = static_cast<size_t>(rank_);
  timed.bytes((n_send - send_counts[me]) * row_bytes, (n_recv - recv_counts[me]) * row_bytes);
  return to_device(out, rows.device());
}

at::Tensor MpiCommunicator::broadcast(const at::Tensor& x, int root) {
  SEMSKIP_THROW_IF_NOT_MSG(root >= 0 && root < size_, "broadcast: root {} outside [0, {})", root, size_);
  TimedCollective timed(stats_, CollectiveKind::broadcast);
  const bool is_root = rank_ == root;
  // Header: dtype, number of dims, sizes — the other ranks learn the shape from the root.
  int64_t header[2 + kMaxBroadcastDims] = {0};
  at::Tensor in;
  if (is_root) {
    SEMSKIP_THROW_IF_NOT_MSG(x.defined(), "broadcast: the root's tensor is undefined");
    SEMSKIP_THROW_IF_NOT_MSG(x.dim() <= kMaxBroadcastDims, "broadcast: at most {} dims, got {}", kMaxBroadcastDims,
                             x.dim());
    mpi_element_type(x.scalar_type(), "broadcast");
    in = host(x);
    header[0] = static_cast<int64_t>(in.scalar_type());
    header[1] = in.dim();
    for (int64_t i = 0; i < in.dim(); ++i) header[2 + i] = in.size(i);
  }
  SEMSKIP_MPI_CHECK(MPI_Bcast(header, 2 + kMaxBroadcastDims, MPI_INT64_T, root, comm_));
  const auto dtype = static_cast<at::ScalarType>(header[0]);
  if (!is_root) {
    const std::vector<int64_t> shape(header + 2, header + 2 + header[1]);
    in = at::empty(shape, at::TensorOptions().dtype(dtype));
  }
  const MpiRowType all(mpi_element_type(dtype, "broadcast"), in.numel());
  SEMSKIP_MPI_CHECK(MPI_Bcast(in.data_ptr(), 1, all.get(), root, comm_));
  const int64_t bytes = static_cast<int64_t>(in.nbytes()) + static_cast<int64_t>(sizeof(header));
  timed.bytes(is_root ? (size_ - 1) * bytes : 0, is_root ? 0 : bytes);
  const at::Device device = x.defined() ? x.device() : at::Device(at::kCPU);
  return to_device(is_root ? in.clone() : in, device);
}

std::string MpiCommunicator::broadcast(const std::string& s, int root) {
  SEMSKIP_THROW_IF_NOT_MSG(root >= 0 && root < size_, "broadcast: root {} outside [0, {})", root, size_);
  TimedCollective timed(stats_, CollectiveKind::broadcast);
  const bool is_root = rank_ == root;
  int64_t n = is_root ? static_cast<int64_t>(s.size()) : 0;
  SEMSKIP_MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm_));
  std::string out = is_root ? s : std::string(static_cast<size_t>(n), '\0');
  const MpiRowType all(MPI_CHAR, n);
  SEMSKIP_MPI_CHECK(MPI_Bcast(out.data(), 1, all.get(), root, comm_));
  const int64_t bytes = n + static_cast<int64_t>(sizeof(n));
  timed.bytes(is_root ? (size_ - 1) * bytes : 0, is_root ? 0 : bytes);
  return out;
}

void MpiCommunicator::barrier() {
  TimedCollective timed(stats_, CollectiveKind::barrier);
  SEMSKIP_MPI_CHECK(MPI_Barrier(comm_));
  timed.bytes(0, 0);
}

}  // namespace semskip
