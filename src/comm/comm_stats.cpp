#include "comm/comm_stats.h"

#include "core/error.h"

namespace semskip {

const char* collective_name(CollectiveKind k) {
  switch (k) {
    case CollectiveKind::allreduce: return "allreduce";
    case CollectiveKind::allgather: return "allgather";
    case CollectiveKind::allgatherv: return "allgatherv";
    case CollectiveKind::alltoallv: return "alltoallv";
    case CollectiveKind::broadcast: return "broadcast";
    case CollectiveKind::barrier: return "barrier";
    case CollectiveKind::kCount: break;
  }
  SEMSKIP_ASSERT(false);
  return "";
}

void CommStats::add(CollectiveKind k, int64_t bytes_sent, int64_t bytes_recv, int64_t t_ns) {
  SEMSKIP_ASSERT(k != CollectiveKind::kCount);
  CollectiveCounters& c = by_kind_[static_cast<size_t>(k)];
  c.n_calls += 1;
  c.bytes_sent += bytes_sent;
  c.bytes_recv += bytes_recv;
  c.t_ns += t_ns;
}

CollectiveCounters CommStats::total() const {
  CollectiveCounters t;
  for (const CollectiveCounters& c : by_kind_) {
    t.n_calls += c.n_calls;
    t.bytes_sent += c.bytes_sent;
    t.bytes_recv += c.bytes_recv;
    t.t_ns += c.t_ns;
  }
  return t;
}

void CommStats::merge(const CommStats& other) {
  for (size_t i = 0; i < kNumCollectiveKinds; ++i) {
    by_kind_[i].n_calls += other.by_kind_[i].n_calls;
    by_kind_[i].bytes_sent += other.by_kind_[i].bytes_sent;
    by_kind_[i].bytes_recv += other.by_kind_[i].bytes_recv;
    by_kind_[i].t_ns += other.by_kind_[i].t_ns;
  }
}

}  // namespace semskip
