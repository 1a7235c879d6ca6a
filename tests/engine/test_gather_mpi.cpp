// The gather of a distributed run with hand-made records on every rank: every rank receives
// every rank's records; requests and steps come out in (step, rank) order, per-rank rows by
// rank, per-layer counts and FLOPs summed. Run on 1–4 ranks (engine.dist_cache.np*).
#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

#include "comm/runtime.h"
#include "engine/run_gather.h"
#include "metrics/flop_counter.h"

namespace semskip {
namespace {

// Rank r ran r + 1 requests, one per step 0..r, of 3 + r + i tokens; ids 10·r + i.
PolicyResult records_of(int r) {
  PolicyResult p;
  p.policy = "residual:p=1,r=3,tau=0.9";
  p.index = "torch:flat";
  p.rank = r;
  p.layers = LayerCounts(2);
  p.layers.n_block_run = {r + 1, 2 * (r + 1)};
  p.layers.n_block_skip = {0, r};
  p.flops_full.add(0, OpGroup::mlp, 100 * (r + 1));
  p.flops_full.add(1, OpGroup::mlp, 10 * (r + 1));
  p.flops_skip.add(0, OpGroup::mlp, 50 * (r + 1));
  p.flops_skip.add(1, OpGroup::mlp, 0);
  p.cache.lookups = r + 1, p.cache.hits = r;
  p.t_full_ns = 500 + r, p.t_skip_ns = 1000 + r;
  for (int i = 0; i <= r; ++i) {
    RequestRecord q;
    q.request_id = 10 * r + i, q.rank = r, q.step = i, q.n_tokens = 3 + r + i;
    q.accuracy.n_positions = q.n_tokens, q.accuracy.n_top1_match = q.n_tokens - (i % 2);
    p.requests.push_back(q);
    StepRecord s;
    s.step = i, s.rank = r, s.n_requests = 1, s.n_tokens = q.n_tokens, s.t_skip_ns = 7 * r + i;
    p.steps.push_back(s);
  }
  return p;
}

TEST(RunGatherMpi, EveryRankReceivesEveryRanksRecordsInUnionOrder) {
  Communicator& world = Runtime::get().world();
  const int n = world.size();
  const std::vector<GatheredResult> out =
      gather_results({records_of(world.rank())}, n > 1 ? &world : nullptr);
  ASSERT_EQ(out.size(), 1u);
  const GatheredResult& g = out[0];
  EXPECT_EQ(g.policy, "residual:p=1,r=3,tau=0.9");
  EXPECT_EQ(g.index, "torch:flat");

  ASSERT_EQ(g.ranks.size(), static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    const RankRecord& k = g.ranks[static_cast<size_t>(r)];
    EXPECT_EQ(k.rank, r);
    EXPECT_EQ(k.n_requests, r + 1);
    EXPECT_EQ(k.n_tokens, (r + 1) * (3 + r) + r * (r + 1) / 2);  // Σ_i (3 + r + i)
    EXPECT_EQ(k.flops_full, 110 * (r + 1));
    EXPECT_EQ(k.t_full_ns, 500 + r);
    EXPECT_EQ(k.t_skip_ns, 1000 + r);
    EXPECT_EQ(k.cache.lookups, r + 1);
    EXPECT_EQ(k.cache.hits, r);
  }

  // The union order: step first, then rank (written out here, not taken from the code).
  std::vector<std::tuple<int64_t, int, int64_t>> want;  // (step, rank, request id)
  for (int r = 0; r < n; ++r)
    for (int i = 0; i <= r; ++i) want.emplace_back(i, r, 10 * r + i);
  std::sort(want.begin(), want.end());
  ASSERT_EQ(g.requests.size(), want.size());
  ASSERT_EQ(g.steps.size(), want.size());
  for (size_t j = 0; j < want.size(); ++j) {
    const auto& [step, rank, id] = want[j];
    EXPECT_EQ(g.requests[j].step, step) << j;
    EXPECT_EQ(g.requests[j].rank, rank) << j;
    EXPECT_EQ(g.requests[j].request_id, id) << j;
    EXPECT_EQ(g.requests[j].n_tokens, 3 + rank + step) << j;
    EXPECT_EQ(g.requests[j].accuracy.n_top1_match, 3 + rank + step - (step % 2)) << j;
    EXPECT_EQ(g.steps[j].step, step) << j;
    EXPECT_EQ(g.steps[j].rank, rank) << j;
    EXPECT_EQ(g.steps[j].t_skip_ns, 7 * rank + step) << j;
  }

  // Per-layer counts and FLOPs summed over the ranks: Σ_r (r + 1) = n(n + 1)/2.
  const int64_t tri = n * (n + 1) / 2;
  ASSERT_EQ(g.layers.n_block_run.size(), 2u);
  EXPECT_EQ(g.layers.n_block_run[0], tri);
  EXPECT_EQ(g.layers.n_block_run[1], 2 * tri);
  EXPECT_EQ(g.layers.n_block_skip[1], tri - n);  // Σ r
  ASSERT_EQ(g.layer_flops_full.size(), 2u);
  EXPECT_EQ(g.layer_flops_full[0], 100 * tri);
  EXPECT_EQ(g.layer_flops_full[1], 10 * tri);
  EXPECT_EQ(g.layer_flops_executed[0], 50 * tri);
}

}  // namespace
}  // namespace semskip
