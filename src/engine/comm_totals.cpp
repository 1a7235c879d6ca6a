#include "engine/comm_totals.h"

namespace semskip {

namespace {

void add(CollectiveCounters& into, const CollectiveCounters& o, int64_t sign) {
  into.n_calls += sign * o.n_calls;
  into.bytes_sent += sign * o.bytes_sent;
  into.bytes_recv += sign * o.bytes_recv;
  into.t_ns += sign * o.t_ns;
}

}  // namespace

CommTotals CommTotals::snapshot(const std::vector<Communicator*>& comms) {
  CommTotals t;
  for (const Communicator* c : comms) {
    if (!c) continue;
    for (size_t k = 0; k < kNumCollectiveKinds; ++k) add(t.by_kind[k], c->stats()[static_cast<CollectiveKind>(k)], 1);
  }
  return t;
}

CollectiveCounters CommTotals::total() const {
  CollectiveCounters t;
  for (const CollectiveCounters& c : by_kind) add(t, c, 1);
  return t;
}

CommTotals& CommTotals::operator+=(const CommTotals& o) {
  for (size_t k = 0; k < kNumCollectiveKinds; ++k) add(by_kind[k], o.by_kind[k], 1);
  return *this;
}

CommTotals CommTotals::operator-(const CommTotals& before) const {
  CommTotals d = *this;
  for (size_t k = 0; k < kNumCollectiveKinds; ++k) add(d.by_kind[k], before.by_kind[k], -1);
  return d;
}

EpStats ep_stats_between(const EpStats& after, const EpStats& before) {
  EpStats d;
  d.n_calls = after.n_calls - before.n_calls;
  d.n_pairs_routed = after.n_pairs_routed - before.n_pairs_routed;
  d.n_pairs_sent = after.n_pairs_sent - before.n_pairs_sent;
  d.n_pairs_run = after.n_pairs_run - before.n_pairs_run;
  d.n_pairs_recv = after.n_pairs_recv - before.n_pairs_recv;
  d.t_alltoall_ns = after.t_alltoall_ns - before.t_alltoall_ns;
  d.t_experts_ns = after.t_experts_ns - before.t_experts_ns;
  return d;
}

void add_ep_stats(EpStats& into, const EpStats& o) {
  into.n_calls += o.n_calls;
  into.n_pairs_routed += o.n_pairs_routed;
  into.n_pairs_sent += o.n_pairs_sent;
  into.n_pairs_run += o.n_pairs_run;
  into.n_pairs_recv += o.n_pairs_recv;
  into.t_alltoall_ns += o.t_alltoall_ns;
  into.t_experts_ns += o.t_experts_ns;
}

}  // namespace semskip
