#include "engine/run_gather.h"

#include <algorithm>
#include <type_traits>

#include "core/error.h"
#include "dist/communicator.h"

namespace semskip {

namespace {

constexpr int64_t kRankWidth = 22 + 4 * static_cast<int64_t>(kNumCollectiveKinds) + 7;
constexpr int64_t kRequestIntWidth = 12;
constexpr int64_t kRequestRealWidth = 3;
constexpr int64_t kStepWidth = 18;
constexpr int64_t kLayerWidth = 6;

// rows: a flat row-major buffer of `width` columns -> int64 or fp64 [n, width].
template <typename T>
at::Tensor matrix(const std::vector<T>& rows, int64_t width) {
  SEMSKIP_ASSERT(static_cast<int64_t>(rows.size()) % width == 0);
  const int64_t n = static_cast<int64_t>(rows.size()) / width;
  return at::tensor(rows, std::is_same_v<T, double> ? at::kDouble : at::kLong).view({n, width});
}

// Every rank's rows, in rank order.
at::Tensor gathered(Communicator* world, const at::Tensor& mine) {
  if (!world || world->size() == 1) return mine;
  return world->allgatherv(mine);
}

std::vector<int64_t> pack_rank(const PolicyResult& r) {
  int64_t n_tokens = 0, n_steps = 0;
  for (const StepRecord& s : r.steps) {
    n_tokens += s.n_tokens;
    n_steps += s.n_requests > 0 ? 1 : 0;
  }
  const CacheStats& c = r.cache;
  std::vector<int64_t> v = {static_cast<int64_t>(r.requests.size()), n_tokens, n_steps,
                            r.flops_full.total_model(AttnConvention::causal),
                            r.flops_skip.total_model(AttnConvention::causal), r.flops_skip.total_overhead(),
                            r.t_full_ns, r.t_skip_ns, r.t_lookup_ns, r.t_calib_ns, r.comm.total().t_ns,
                            r.comm_full.total().t_ns, c.lookups, c.hits, c.vetoed, c.insertions, c.evictions,
                            c.rejected, c.size, c.capacity, c.key_dim, c.value_bytes};
  for (const CollectiveCounters& k : r.comm.by_kind) {
    v.insert(v.end(), {k.n_calls, k.bytes_sent, k.bytes_recv, k.t_ns});
  }
  const EpStats& e = r.ep;
  v.insert(v.end(), {e.n_calls, e.n_pairs_routed, e.n_pairs_sent, e.n_pairs_run, e.n_pairs_recv, e.t_alltoall_ns,
                     e.t_experts_ns});
  SEMSKIP_ASSERT(static_cast<int64_t>(v.size()) == kRankWidth);
  return v;
}

RankRecord unpack_rank(const int64_t* v, int rank) {
  RankRecord r;
  r.rank = rank;
  size_t i = 0;
  auto next = [&]() { return v[i++]; };
  r.n_requests = next(), r.n_tokens = next(), r.n_steps = next();
  r.flops_full = next(), r.flops_executed = next(), r.flops_overhead = next();
  r.t_full_ns = next(), r.t_skip_ns = next(), r.t_lookup_ns = next(), r.t_calib_ns = next();
  r.t_comm_ns = next(), r.t_full_comm_ns = next();
  CacheStats& c = r.cache;
  c.lookups = next(), c.hits = next(), c.vetoed = next(), c.insertions = next(), c.evictions = next();
  c.rejected = next(), c.size = next(), c.capacity = next(), c.key_dim = next(), c.value_bytes = next();
  for (CollectiveCounters& k : r.comm.by_kind) {
    k.n_calls = next(), k.bytes_sent = next(), k.bytes_recv = next(), k.t_ns = next();
  }
  EpStats& e = r.ep;
  e.n_calls = next(), e.n_pairs_routed = next(), e.n_pairs_sent = next(), e.n_pairs_run = next();
  e.n_pairs_recv = next(), e.t_alltoall_ns = next(), e.t_experts_ns = next();
  SEMSKIP_ASSERT(static_cast<int64_t>(i) == kRankWidth);
  return r;
}

void gather_requests(const PolicyResult& r, Communicator* world, GatheredResult& g) {
  std::vector<int64_t> ints;
  std::vector<double> reals;
  for (const RequestRecord& q : r.requests) {
    const RequestAccuracy& a = q.accuracy;
    ints.insert(ints.end(), {static_cast<int64_t>(q.rank), q.request_id, q.step, q.n_tokens, q.n_block_skips,
                             q.n_mlp_skips, a.n_positions, a.n_top1_match, a.n_targets, a.n_generated,
                             a.matched_prefix, a.exact_match ? 1 : 0});
    reals.insert(reals.end(), {a.kl_sum, a.nll_full_sum, a.nll_skip_sum});
  }
  const at::Tensor all_i = gathered(world, matrix(ints, kRequestIntWidth)).contiguous();
  const at::Tensor all_r = gathered(world, matrix(reals, kRequestRealWidth)).contiguous();
  const int64_t* pi = all_i.data_ptr<int64_t>();
  const double* pr = all_r.data_ptr<double>();
  for (int64_t n = 0; n < all_i.size(0); ++n, pi += kRequestIntWidth, pr += kRequestRealWidth) {
    RequestRecord q;
    q.rank = static_cast<int>(pi[0]), q.request_id = pi[1], q.step = pi[2], q.n_tokens = pi[3];
    q.n_block_skips = pi[4], q.n_mlp_skips = pi[5];
    RequestAccuracy& a = q.accuracy;
    a.n_positions = pi[6], a.n_top1_match = pi[7], a.n_targets = pi[8], a.n_generated = pi[9];
    a.matched_prefix = pi[10], a.exact_match = pi[11] != 0;
    a.kl_sum = pr[0], a.nll_full_sum = pr[1], a.nll_skip_sum = pr[2];
    g.requests.push_back(q);
  }
  // Rank-major from the gather -> the union order of one process running every rank's steps.
  std::stable_sort(g.requests.begin(), g.requests.end(),
                   [](const RequestRecord& a, const RequestRecord& b) { return a.step < b.step; });
}

void gather_steps(const PolicyResult& r, Communicator* world, GatheredResult& g) {
  std::vector<int64_t> ints;
  for (const StepRecord& s : r.steps) {
    ints.insert(ints.end(), {s.step, static_cast<int64_t>(s.rank), s.n_requests, s.n_tokens, s.flops_full,
                             s.flops_executed, s.flops_overhead, s.t_full_ns, s.t_skip_ns, s.t_lookup_ns,
                             s.t_comm_ns, s.comm_sent_bytes, s.comm_recv_bytes, s.t_full_comm_ns, s.cache_lookups,
                             s.cache_hits, s.cache_vetoed, s.cache_size});
  }
  const at::Tensor all = gathered(world, matrix(ints, kStepWidth)).contiguous();
  const int64_t* p = all.data_ptr<int64_t>();
  for (int64_t n = 0; n < all.size(0); ++n, p += kStepWidth) {
    StepRecord s;
    s.step = p[0], s.rank = static_cast<int>(p[1]), s.n_requests = p[2], s.n_tokens = p[3];
    s.flops_full = p[4], s.flops_executed = p[5], s.flops_overhead = p[6];
    s.t_full_ns = p[7], s.t_skip_ns = p[8], s.t_lookup_ns = p[9], s.t_comm_ns = p[10];
    s.comm_sent_bytes = p[11], s.comm_recv_bytes = p[12], s.t_full_comm_ns = p[13];
    s.cache_lookups = p[14], s.cache_hits = p[15], s.cache_vetoed = p[16], s.cache_size = p[17];
    g.steps.push_back(s);
  }
  std::stable_sort(g.steps.begin(), g.steps.end(), [](const StepRecord& a, const StepRecord& b) {
    return a.step < b.step;
  });
}

void gather_layers(const PolicyResult& r, Communicator* world, GatheredResult& g) {
  const int64_t L = static_cast<int64_t>(r.layers.n_block_run.size());
  std::vector<int64_t> ints;
  for (int64_t l = 0; l < L; ++l) {
    const size_t i = static_cast<size_t>(l);
    const int li = static_cast<int>(l);
    ints.insert(ints.end(), {r.layers.n_block_run[i], r.layers.n_block_skip[i], r.layers.n_mlp_skip[i],
                             r.layers.n_kv_propagated[i], r.flops_full.by_layer(li, AttnConvention::causal),
                             r.flops_skip.by_layer(li, AttnConvention::causal)});
  }
  at::Tensor sum = matrix(ints, kLayerWidth);
  if (world && world->size() > 1) sum = world->allreduce(sum, ReduceOp::sum);
  sum = sum.contiguous();
  const int64_t* p = sum.data_ptr<int64_t>();
  g.layers = LayerCounts(L);
  g.layer_flops_full.assign(static_cast<size_t>(L), 0);
  g.layer_flops_executed.assign(static_cast<size_t>(L), 0);
  for (size_t l = 0; l < static_cast<size_t>(L); ++l, p += kLayerWidth) {
    g.layers.n_block_run[l] = p[0], g.layers.n_block_skip[l] = p[1], g.layers.n_mlp_skip[l] = p[2];
    g.layers.n_kv_propagated[l] = p[3];
    g.layer_flops_full[l] = p[4], g.layer_flops_executed[l] = p[5];
  }
}

}  // namespace

std::vector<GatheredResult> gather_results(const std::vector<PolicyResult>& mine, Communicator* world) {
  std::vector<GatheredResult> out;
  for (const PolicyResult& r : mine) {
    GatheredResult g;
    g.policy = r.policy;
    g.index = r.index;
    const at::Tensor ranks = gathered(world, matrix(pack_rank(r), kRankWidth)).contiguous();  // int64 [n, width]
    for (int64_t i = 0; i < ranks.size(0); ++i)
      g.ranks.push_back(unpack_rank(ranks.data_ptr<int64_t>() + i * kRankWidth, static_cast<int>(i)));
    gather_requests(r, world, g);
    gather_steps(r, world, g);
    gather_layers(r, world, g);
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace semskip
