// The distributed semantic caches against the reference they must equal: one LocalCache that
// sees, step by step, the union of every rank's queries and misses (rank order), as one
// process running the union of the ranks' micro-batches would. Every rank computes that
// reference itself from the same seeded data. Run on 1–4 ranks; rank 2 has no queries in
// some steps, and the data has near-duplicates so that hits, misses and evictions all occur.
#include <gtest/gtest.h>

#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "dist/cache_mode.h"
#include "dist/replicated_cache.h"
#include "dist/runtime.h"
#include "dist/sharded_cache.h"
#include "metrics/flop_counter.h"
#include "skip/local_cache.h"
#include "skip/sync_rule.h"

namespace semskip::test {
namespace {

constexpr int64_t kKeyDim = 8, kValueDim = 3;
constexpr double kTau = 0.97;

Communicator& world() { return Runtime::get().world(); }

CacheOptions options(int64_t capacity) {
  CacheOptions o;
  o.index_descriptor = "torch:flat";
  o.capacity = capacity;
  o.eviction = Eviction::lru;
  return o;
}

// Queries of rank r in step s: noisy copies of a few base directions (so later steps hit
// earlier entries), none on rank 2 in odd steps.
int64_t n_queries(int rank, int64_t step) { return rank == 2 && step % 2 == 1 ? 0 : 3 + (rank + step) % 4; }

at::Tensor queries_of(int rank, int64_t step) {
  const int64_t n = n_queries(rank, step);
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(1000 * step + rank));
  static const at::Tensor base = [] {
    at::Generator b = at::make_generator<at::CPUGeneratorImpl>(7);
    return at::randn({10, kKeyDim}, b);
  }();
  const at::Tensor pick = at::randint(0, base.size(0), {n}, g);
  at::Tensor q = base.index_select(0, pick) + 0.08 * at::randn({n, kKeyDim}, g);
  return q / q.norm(2, 1, true);  // fp32 [n, kKeyDim] unit rows
}

// The value a miss offers: a function of its key, so any rank can check a fetched value.
at::Tensor value_of(const at::Tensor& keys) { return keys.slice(1, 0, kValueDim) * 10.0; }

struct StepOutcome {
  at::Tensor similarity;  // [n, 1] of this rank's queries
  at::Tensor values;      // [n, kValueDim] fetched (zero rows for misses)
  at::Tensor hit;         // bool [n]
};

// One step of a cache as the residual policy drives it: search, fetch the hits' values (one
// tick), insert the misses.
StepOutcome run_step(SkipCache& cache, const at::Tensor& keys, FlopCounter* flops) {
  StepOutcome o;
  const SkipCache::Match m = cache.search(keys, 1, flops, 0);
  o.similarity = m.similarity;
  o.hit = m.similarity.select(1, 0).ge(kTau);
  const at::Tensor handles = at::where(o.hit, m.handle.select(1, 0), at::full_like(m.handle.select(1, 0), -1));
  const at::Tensor use = at::where(o.hit, at::zeros_like(handles), at::full_like(handles, -1));
  o.values = cache.fetch(handles, use, at::kCPU);
  const at::Tensor miss = o.hit.logical_not().nonzero().squeeze(1);
  const at::Tensor miss_keys = keys.index_select(0, miss);
  cache.insert(miss_keys, value_of(miss_keys));
  cache.count_lookups(keys.size(0), o.hit.sum().item<int64_t>(), 0);
  return o;
}

// This rank's rows of the union of step s.
std::pair<int64_t, int64_t> my_rows(int64_t step) {
  int64_t begin = 0;
  for (int r = 0; r < world().rank(); ++r) begin += n_queries(r, step);
  return {begin, begin + n_queries(world().rank(), step)};
}

at::Tensor union_queries(int64_t step) {
  std::vector<at::Tensor> parts;
  for (int r = 0; r < world().size(); ++r) parts.push_back(queries_of(r, step));
  return at::cat(parts, 0);
}

// Similarities may differ in the last bits (the index multiplies a different batch of
// queries); hits, and the entries that serve them, must not.
void expect_equals_union_reference(SkipCache& dist, int64_t capacity, int64_t n_steps) {
  LocalCache ref(kKeyDim, kValueDim, options(capacity));
  int64_t n_hits = 0;
  FlopCounter f_dist, f_ref;
  for (int64_t s = 0; s < n_steps; ++s) {
    SCOPED_TRACE(fmt::format("step {}", s));
    const StepOutcome want_all = run_step(ref, union_queries(s), &f_ref);
    const auto [b, e] = my_rows(s);
    const StepOutcome got = run_step(dist, queries_of(world().rank(), s), &f_dist);
    ASSERT_TRUE(at::equal(got.hit, want_all.hit.slice(0, b, e)));
    EXPECT_TRUE(at::allclose(got.similarity, want_all.similarity.slice(0, b, e), 1e-6, 1e-6));
    EXPECT_TRUE(at::equal(got.values, want_all.values.slice(0, b, e)));
    n_hits += want_all.hit.sum().item<int64_t>();
  }
  EXPECT_GT(n_hits, 0);  // the data must exercise hits
  // Lookup FLOPs: each rank is charged what it searched; over the ranks, the union's.
  const int64_t mine = f_dist.by_group(OpGroup::lookup);
  const int64_t total = world().allreduce(at::tensor({mine}, at::kLong), ReduceOp::sum).item<int64_t>();
  EXPECT_EQ(total, f_ref.by_group(OpGroup::lookup));
}

TEST(ReplicatedCache, EqualsOneCacheOverTheUnionAlsoWhenItEvicts) {
  // Capacity 4 against 10 directions of queries: LRU evicts in most steps, so
  // the replicas agree only if every rank applies every rank's uses and insertions alike.
  ReplicatedCache dist(world(), kKeyDim, kValueDim, options(4));
  expect_equals_union_reference(dist, 4, 8);
  EXPECT_GT(dist.stats().evictions, 0);
  // Every replica holds the same entries: the same answers to the same probe on every rank.
  const at::Tensor probe = queries_of(0, 99);
  const SkipCache::Match m = dist.search(probe, 2);
  const at::Tensor all = world().allgather(m.similarity);  // [n_ranks, n, 2]
  for (int r = 0; r < world().size(); ++r) EXPECT_TRUE(at::equal(all[r], m.similarity));
}

TEST(ShardedCache, EqualsOneCacheOverTheUnionWhileNoShardEvicts) {
  ShardedCache dist(world(), kKeyDim, kValueDim, options(1000));
  expect_equals_union_reference(dist, 1000, 8);
  // Round robin over the global insertion counter: the shards differ by at most one entry.
  const at::Tensor sizes = world().allgather(at::tensor({dist.stats().size}, at::kLong));
  EXPECT_LE((sizes.max() - sizes.min()).item<int64_t>(), 1);
  EXPECT_EQ(dist.stats().size, dist.stats().insertions);
}

TEST(ShardedCache, EqualBestMatchesGoToTheLowerRankAndTopKMergesShards) {
  if (world().size() < 2) GTEST_SKIP() << "needs two shards";
  ShardedCache dist(world(), kKeyDim, kValueDim, options(100));
  // Ranks 0 and 1 each offer the same key with their own value; round robin puts entry 0
  // (rank 0's) on rank 0 and entry 1 (rank 1's) on rank 1.
  at::Tensor key = at::zeros({1, kKeyDim});
  key[0][0] = 1.0f;
  const int me = world().rank();
  const bool offers = me < 2;
  const at::Tensor k = offers ? key : at::empty({0, kKeyDim});
  const at::Tensor v = offers ? at::full({1, kValueDim}, static_cast<float>(me + 1)) : at::empty({0, kValueDim});
  dist.insert(k, v);
  const SkipCache::Match m = dist.search(key, 2);
  EXPECT_FLOAT_EQ(m.similarity[0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(m.similarity[0][1].item<float>(), 1.0f);
  const at::Tensor vals = dist.fetch(m.handle.reshape({-1}), at::full({2}, -1, at::kLong), at::kCPU);
  EXPECT_FLOAT_EQ(vals[0][0].item<float>(), 1.0f);  // rank 0's entry first: ties go to the lower rank
  EXPECT_FLOAT_EQ(vals[1][0].item<float>(), 2.0f);
}

TEST(SyncGlobal, EveryRankTakesTheSameDecisionOnTheJobsHits) {
  PolicyEnv env;
  attach_distribution(env, CacheMode::local, world());
  const int me = world().rank(), n = world().size();
  // 10 lookups per rank, all 10 hits on rank 0: the job's fraction is 1/n, enough for 0.4
  // on 1 or 2 ranks only.
  const int64_t hits = me == 0 ? 10 : 0;
  const SyncRule rule = SyncRule::parse("global:0.4", "--sync");
  const SyncDecision d = decide_sync(rule, env.sum_over_ranks, 10, hits);
  EXPECT_EQ(d.group_lookups, 10 * n);
  EXPECT_EQ(d.group_hits, 10);
  EXPECT_EQ(d.apply, n <= 2);
  EXPECT_FALSE(d.all_skip && n > 1);
  const at::Tensor all = world().allgather(at::tensor({static_cast<int64_t>(d.apply)}, at::kLong));
  EXPECT_EQ(all.min().item<int64_t>(), all.max().item<int64_t>());
  // Every lookup of the job hit (ranks without lookups included): all ranks know all skip.
  const SyncDecision e = decide_sync(rule, env.sum_over_ranks, me % 2 == 0 ? 4 : 0, me % 2 == 0 ? 4 : 0);
  EXPECT_TRUE(e.apply);
  EXPECT_TRUE(e.all_skip);
}

}  // namespace
}  // namespace semskip::test
