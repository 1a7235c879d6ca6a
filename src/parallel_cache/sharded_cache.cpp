#include "parallel_cache/sharded_cache.h"

#include <vector>

#include "core/error.h"
#include "comm/collective_timer.h"
#include "skip/local_cache.h"
#include "skip/state_io.h"

namespace semskip {

namespace {

// Stable order of rows by destination rank, and the number of rows for each rank.
at::Tensor order_by_rank(const at::Tensor& dest, int n_ranks, std::vector<int64_t>& counts) {
  counts.assign(static_cast<size_t>(n_ranks), 0);
  const at::Tensor d = dest.contiguous();
  const int64_t* p = d.data_ptr<int64_t>();
  for (int64_t i = 0; i < d.numel(); ++i) {
    SEMSKIP_ASSERT(p[i] >= 0 && p[i] < n_ranks);
    ++counts[static_cast<size_t>(p[i])];
  }
  return std::get<1>(at::sort(d, /*stable=*/true, /*dim=*/0, /*descending=*/false));
}

}  // namespace

CacheOptions ShardedCache::shard_options(const CacheOptions& opts, int rank) {
  CacheOptions o = opts;
  o.seed = opts.seed + static_cast<uint64_t>(rank);
  return o;
}

ShardedCache::ShardedCache(Communicator& comm, int64_t key_dim, int64_t value_dim, const CacheOptions& opts)
    : comm_(comm), shard_(key_dim, value_dim, shard_options(opts, comm.rank())), capacity_(opts.capacity) {}

SkipCache::Match ShardedCache::search(const at::Tensor& keys, int64_t k, FlopCounter* flops, int layer) {
  const int n = comm_.size(), me = comm_.rank();
  std::vector<int64_t> counts;  // queries of each rank
  at::Tensor queries;           // fp32 [Q, key_dim], rank order
  {
    CollectiveTimer t(comm_ns_);
    queries = comm_.allgatherv(keys.to(at::kCPU, at::kFloat).contiguous(), &counts);
  }
  // This shard's k best for every query of the job; its lookup FLOPs are charged here.
  const SemanticCache::Match local = shard_.search(queries, k, flops, layer);  // [Q, k]
  const at::Tensor handle = at::where(local.slot.ge(0), local.slot + static_cast<int64_t>(me) * capacity_,
                                      at::full_like(local.slot, -1));
  // Similarities and handles travel together as fp64 (exact for both).
  const at::Tensor packed = at::cat({local.similarity.to(at::kDouble), handle.to(at::kDouble)}, 1);  // [Q, 2k]
  const int64_t n_mine = counts[static_cast<size_t>(me)];
  at::Tensor back;
  {
    CollectiveTimer t(comm_ns_);
    // The rows of rank r's queries are the r-th block of `queries`: already grouped by rank.
    back = comm_.alltoallv(packed, counts, std::vector<int64_t>(static_cast<size_t>(n), n_mine));
  }
  // [n, N, 2k] by source shard -> per query the candidates of shard 0, then shard 1, ...
  const at::Tensor by_shard = back.view({n, n_mine, 2 * k});
  const at::Tensor sims = by_shard.slice(2, 0, k).permute({1, 0, 2}).reshape({n_mine, n * k}).to(at::kFloat);
  const at::Tensor handles = by_shard.slice(2, k, 2 * k).permute({1, 0, 2}).reshape({n_mine, n * k}).to(at::kLong);
  // Best first; a stable sort leaves equal similarities in shard (rank) order.
  const at::Tensor best = std::get<1>(at::sort(sims, /*stable=*/true, /*dim=*/1, /*descending=*/true)).slice(1, 0, k);
  return {sims.gather(1, best), handles.gather(1, best)};
}

at::Tensor ShardedCache::fetch(const at::Tensor& handles, const at::Tensor& use, at::Device device) {
  const int n = comm_.size();
  const at::Tensor h = handles.to(at::kCPU, at::kLong).reshape({-1});
  const at::Tensor u = use.to(at::kCPU, at::kLong).reshape({-1});
  const at::Tensor pos = h.ge(0).nonzero().squeeze(1);  // rows that name an entry
  const at::Tensor hv = h.index_select(0, pos);
  std::vector<int64_t> send_counts;
  const at::Tensor order = order_by_rank(hv.div(capacity_, "floor"), n, send_counts);
  const at::Tensor requests =
      at::stack({hv.remainder(capacity_).index_select(0, order), u.index_select(0, pos).index_select(0, order)},
                1);  // int64 [m, 2]: (slot, use) grouped by owner
  AlltoallvResult got;
  {
    CollectiveTimer t(comm_ns_);
    got = comm_.alltoallv(requests, send_counts);  // [R, 2] grouped by requesting rank
  }
  const at::Tensor slots = got.rows.select(1, 0);
  touch_in_ticks(shard_, slots, got.rows.select(1, 1));
  const at::Tensor values = shard_.values(slots, at::kCPU);  // [R, value_dim]
  at::Tensor returned;
  {
    CollectiveTimer t(comm_ns_);
    returned = comm_.alltoallv(values, got.counts, send_counts);  // [m, value_dim], in `requests` order
  }
  at::Tensor out = at::zeros({h.size(0), shard_.value_dim()}, returned.options());
  out.index_copy_(0, pos.index_select(0, order), returned);
  return out.to(device);
}

void ShardedCache::insert(const at::Tensor& keys, const at::Tensor& values) {
  const int n = comm_.size(), me = comm_.rank();
  SEMSKIP_ASSERT(keys.size(0) == values.size(0));
  const int64_t m = keys.size(0);
  at::Tensor offered;
  {
    CollectiveTimer t(comm_ns_);
    offered = comm_.allgather(at::tensor({m}, at::kLong));  // int64 [n, 1]: entries each rank offers
  }
  int64_t first = n_offered_, total = 0;  // global index of this rank's row 0; entries this step
  for (int r = 0; r < n; ++r) {
    const int64_t c = offered[r][0].item<int64_t>();
    if (r < me) first += c;
    total += c;
  }
  const at::Tensor owner = (at::arange(m, at::kLong) + first).remainder(n);
  std::vector<int64_t> send_counts;
  const at::Tensor order = order_by_rank(owner, n, send_counts);
  const at::Tensor k = keys.to(at::kCPU, at::kFloat).index_select(0, order).contiguous();
  const at::Tensor v = values.to(at::kCPU).index_select(0, order).contiguous();
  AlltoallvResult got_keys;
  at::Tensor got_values;
  {
    CollectiveTimer t(comm_ns_);
    got_keys = comm_.alltoallv(k, send_counts);
    got_values = comm_.alltoallv(v, send_counts, got_keys.counts);
  }
  // Grouped by source rank, each source's rows in its order: the global insertion order.
  shard_.insert(got_keys.rows, got_values);
  n_offered_ += total;
}

void ShardedCache::count_lookups(int64_t lookups, int64_t hits, int64_t vetoed) {
  shard_.count_lookups(lookups, hits, vetoed);
}

CacheStats ShardedCache::stats() const { return shard_.stats(); }

void ShardedCache::save_state(StateWriter& w) const {
  w.tag("sharded_cache");
  w.i64s({comm_.rank(), comm_.size(), n_offered_});
  shard_.save_state(w);
}

void ShardedCache::load_state(StateReader& r) {
  r.expect_tag("sharded_cache");
  const std::vector<int64_t> v = r.i64s();
  SEMSKIP_THROW_IF_NOT_MSG(v.size() == 3 && v[0] == comm_.rank() && v[1] == comm_.size(),
                           "{}: the saved shard belongs to another rank or world size than rank {} of {}", r.what(),
                           comm_.rank(), comm_.size());
  shard_.load_state(r);
  n_offered_ = v[2];
}

}  // namespace semskip
