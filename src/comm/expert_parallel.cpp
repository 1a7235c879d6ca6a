#include "comm/expert_parallel.h"

#include <chrono>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "core/timing.h"

namespace semskip {

namespace {

// The dispatch of zero tokens: no pairs, zero per expert.
ExpertDispatch empty_dispatch(const MoeBlock& moe, const at::Tensor& x) {
  ExpertDispatch plan;
  plan.token_index = at::empty({0}, x.options().dtype(at::kLong));
  plan.weight = at::empty({0}, x.options());
  plan.counts.assign(static_cast<size_t>(moe.n_experts()), 0);
  return plan;
}

// Received rows arrive grouped by (source rank, local expert); experts_forward wants them by
// (local expert, source rank). Returns int64 [n]: position in the received order of each row
// in expert order, i.e. by_expert = received.index_select(0, order).
at::Tensor expert_major_order(const std::vector<int64_t>& recv_expert_counts, int n_ranks, int64_t n_local) {
  std::vector<int64_t> offset(static_cast<size_t>(n_ranks * n_local));  // start of block (s, e) in received order
  int64_t pos = 0;
  for (int s = 0; s < n_ranks; ++s) {
    for (int64_t e = 0; e < n_local; ++e) {
      const size_t i = static_cast<size_t>(s * n_local + e);
      offset[i] = pos;
      pos += recv_expert_counts[i];
    }
  }
  std::vector<int64_t> order;
  order.reserve(static_cast<size_t>(pos));
  for (int64_t e = 0; e < n_local; ++e) {
    for (int s = 0; s < n_ranks; ++s) {
      const size_t i = static_cast<size_t>(s * n_local + e);
      for (int64_t j = 0; j < recv_expert_counts[i]; ++j) order.push_back(offset[i] + j);
    }
  }
  return at::tensor(order, at::kLong);
}

}  // namespace

ExpertParallel::ExpertParallel(Communicator& group) : group_(group) {}

at::Tensor ExpertParallel::forward_routed(const MoeBlock& moe, const at::Tensor& x, const Routing& routing,
                                          FlopCounter* flops, int layer) {
  at::Tensor out = routed_term(moe, x, routing, flops, layer);
  if (moe.shared && x.size(0) > 0) out = out + moe.shared_expert(x, flops, layer);
  return out;
}

at::Tensor ExpertParallel::routed_term(const MoeBlock& moe, const at::Tensor& x, const Routing& routing,
                                       FlopCounter* flops, int layer) {
  SEMSKIP_THROW_IF_NOT_MSG(x.dim() == 2, "expert parallel: x must be [N, d], got {} dims", x.dim());
  const int n_ranks = group_.size(), me = group_.rank();
  const ExpertPartition part = partition(moe.n_experts());
  const int64_t n_local = part.count(me), first_local = part.first(me);

  const ExpertDispatch plan = x.size(0) > 0 ? moe.dispatch(routing) : empty_dispatch(moe, x);
  // Pairs sorted by expert are sorted by owner: contiguous blocks per destination rank.
  std::vector<int64_t> send_counts(static_cast<size_t>(n_ranks), 0);
  for (int64_t e = 0; e < moe.n_experts(); ++e)
    send_counts[static_cast<size_t>(part.owner(e))] += plan.counts[static_cast<size_t>(e)];
  const at::Tensor send_rows = moe.gather_rows(x, plan);  // [N·k, d], owner-major

  const int64_t t0 = monotonic_ns();
  // 1. Each owner learns how many pairs of each of its experts every rank sends.
  const at::Tensor expert_counts = at::tensor(plan.counts, at::kLong);  // int64 [E]
  const std::vector<int64_t> experts_per_rank = part.counts();
  const std::vector<int64_t> n_local_each(static_cast<size_t>(n_ranks), n_local);
  const at::Tensor recv_expert_counts_t = group_.alltoallv(expert_counts, experts_per_rank, n_local_each);
  const std::vector<int64_t> recv_expert_counts(recv_expert_counts_t.data_ptr<int64_t>(),
                                                recv_expert_counts_t.data_ptr<int64_t>() + n_ranks * n_local);
  std::vector<int64_t> recv_counts(static_cast<size_t>(n_ranks), 0);  // pairs from each rank
  std::vector<int64_t> run_counts(static_cast<size_t>(moe.n_experts()), 0);  // pairs per expert, this rank's only
  for (int s = 0; s < n_ranks; ++s) {
    for (int64_t e = 0; e < n_local; ++e) {
      const int64_t c = recv_expert_counts[static_cast<size_t>(s * n_local + e)];
      recv_counts[static_cast<size_t>(s)] += c;
      run_counts[static_cast<size_t>(first_local + e)] += c;
    }
  }
  // 2. The rows to their experts' owners.
  const at::Tensor recv_rows = group_.alltoallv(send_rows, send_counts, recv_counts);  // [R, d], source-major
  const int64_t t1 = monotonic_ns();

  const bool reorder = n_ranks > 1 && n_local > 1;
  const at::Tensor order = reorder ? expert_major_order(recv_expert_counts, n_ranks, n_local).to(x.device())
                                   : at::Tensor();
  const at::Tensor by_expert = reorder ? recv_rows.index_select(0, order) : recv_rows;
  const at::Tensor out_by_expert = moe.experts_forward(by_expert, run_counts, flops, layer);  // [R, d]
  at::Tensor out_rows = out_by_expert;
  if (reorder) out_rows = at::empty_like(out_by_expert).index_copy_(0, order, out_by_expert);
  const int64_t t2 = monotonic_ns();

  // 3. The outputs back to the tokens' ranks, in the order the pairs were sent.
  const at::Tensor y_rows = group_.alltoallv(out_rows, recv_counts, send_counts);  // [N·k, d], plan order
  const int64_t t3 = monotonic_ns();

  const at::Tensor out = moe.combine(y_rows, plan);

  const int64_t n_sent = std::accumulate(send_counts.begin(), send_counts.end(), int64_t{0});
  const int64_t n_recv = std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0});
  stats_.n_calls += 1;
  stats_.n_pairs_routed += n_sent;
  stats_.n_pairs_sent += n_sent - send_counts[static_cast<size_t>(me)];
  stats_.n_pairs_run += n_recv;
  stats_.n_pairs_recv += n_recv - recv_counts[static_cast<size_t>(me)];
  stats_.t_alltoall_ns += (t1 - t0) + (t3 - t2);
  stats_.t_experts_ns += t2 - t1;
  if (layer >= 0) {
    if (static_cast<size_t>(layer) >= by_layer_.size()) by_layer_.resize(static_cast<size_t>(layer) + 1);
    EpLayerStats& l = by_layer_[static_cast<size_t>(layer)];
    const int64_t row_bytes = x.size(1) * static_cast<int64_t>(x.element_size());
    const int64_t off_sent = n_sent - send_counts[static_cast<size_t>(me)];
    const int64_t off_recv = n_recv - recv_counts[static_cast<size_t>(me)];
    l.n_calls += 1;
    l.n_rows_routed += n_sent;
    l.n_rows_sent += off_sent;
    l.n_rows_recv += off_recv;
    l.bytes_dispatch += off_sent * row_bytes;
    l.bytes_combine += off_recv * row_bytes;
    l.t_alltoall_ns += (t1 - t0) + (t3 - t2);
  }
  return out;
}

at::Tensor ExpertParallel::layer_stats_tensor(int64_t n_layers) const {
  at::Tensor t = at::zeros({n_layers, kEpLayerFields}, at::kLong);
  auto a = t.accessor<int64_t, 2>();
  for (size_t l = 0; l < by_layer_.size() && static_cast<int64_t>(l) < n_layers; ++l) {
    const EpLayerStats& s = by_layer_[l];
    const int64_t row[kEpLayerFields] = {s.n_calls,        s.n_rows_routed, s.n_rows_sent,  s.n_rows_recv,
                                         s.bytes_dispatch, s.bytes_combine, s.t_alltoall_ns};
    for (int64_t f = 0; f < kEpLayerFields; ++f) a[static_cast<int64_t>(l)][f] = row[f];
  }
  return t;
}

at::Tensor ExpertParallel::forward(const MoeBlock& moe, const at::Tensor& x, FlopCounter* flops, int layer,
                                   Routing* routing_out) {
  const at::Tensor flat = x.reshape({-1, x.size(-1)});
  // A rank without tokens still joins the all-to-alls; it has nothing to route.
  Routing routing = flat.size(0) > 0 ? moe.route(flat, flops, layer) : Routing{};
  at::Tensor out = forward_routed(moe, flat, routing, flops, layer).view(x.sizes());
  if (routing_out) *routing_out = std::move(routing);
  return out;
}

at::Tensor ExpertParallel::forward_rows(const MoeBlock& moe, const at::Tensor& x, const at::Tensor& rows,
                                        FlopCounter* flops, int layer) {
  SEMSKIP_THROW_IF_NOT_MSG(x.dim() == 2, "expert parallel: x must be [N, d], got {} dims", x.dim());
  at::Tensor index;
  if (rows.scalar_type() == at::kBool) {
    SEMSKIP_THROW_IF_NOT_MSG(rows.dim() == 1 && rows.size(0) == x.size(0),
                             "expert parallel: a row mask must be bool [{}]", x.size(0));
    index = rows.nonzero().reshape({-1});
  } else {
    SEMSKIP_THROW_IF_NOT_MSG(rows.scalar_type() == at::kLong && rows.dim() == 1,
                             "expert parallel: rows must be int64 [n] indices or a bool [N] mask, got {} of {} dims",
                             c10::toString(rows.scalar_type()), rows.dim());
    index = rows;
  }
  index = index.to(x.device());
  const at::Tensor xs = x.index_select(0, index);  // [n, d]
  const Routing routing = xs.size(0) > 0 ? moe.route(xs, flops, layer) : Routing{};
  const at::Tensor ys = forward_routed(moe, xs, routing, flops, layer);
  return at::zeros_like(x).index_copy_(0, index, ys);
}

}  // namespace semskip
