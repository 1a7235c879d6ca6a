// The distributed semantic caches against the reference they must equal: one LocalCache that
// sees, step by step, the union of every rank's queries and misses (rank order), as one
// process running the union of the ranks' micro-batches would. Every rank computes that
// reference itself from the same seeded data. Run on 1–4 ranks; rank 2 has no queries in
// some steps, and the data has near-duplicates so that hits, misses and evictions all occur.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

#include "parallel_cache/cache_mode.h"
#include "parallel_cache/replicated_cache.h"
#include "comm/runtime.h"
#include "core/error.h"
#include "parallel_cache/sharded_cache.h"
#include "metrics/flop_counter.h"
#include "skip/local_cache.h"
#include "skip/sync_rule.h"

namespace semskip::test {
namespace {

constexpr int64_t kKeyDim = 8, kValueDim = 3;
constexpr double kTau = 0.97;

Communicator& world() { return Runtime::get().world(); }

CacheOptions options(int64_t capacity, Eviction eviction = Eviction::lru, double admit_prob = 1.0) {
  CacheOptions o;
  o.index_descriptor = "torch:flat";
  o.capacity = capacity;
  o.eviction = eviction;
  o.admit_prob = admit_prob;
  o.seed = 3;
  return o;
}

constexpr Eviction kEvictions[] = {Eviction::lru, Eviction::lfu, Eviction::fifo};

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
  at::Tensor handle;      // int64 [n] of the best match (−1: none)
  at::Tensor values;      // [n, kValueDim] fetched (zero rows for misses)
  at::Tensor hit;         // bool [n]
};

// One step of a cache as the residual policy drives it: search, fetch the hits' values (one
// tick), insert the misses.
StepOutcome run_step(SkipCache& cache, const at::Tensor& keys, FlopCounter* flops) {
  StepOutcome o;
  const SkipCache::Match m = cache.search(keys, 1, flops, 0);
  o.similarity = m.similarity;
  o.handle = m.handle.select(1, 0);
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
void expect_equals_union_reference(SkipCache& dist, const CacheOptions& opts, int64_t n_steps) {
  LocalCache ref(kKeyDim, kValueDim, opts);
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
  // Capacity 4 against 10 directions of queries: every policy evicts in most steps, so the
  // replicas agree only if every rank applies every rank's uses and insertions alike (LRU
  // recency, LFU counts, FIFO insertion order). With admission sampling every replica draws
  // from the same seeded stream over the same union, as the one cache does.
  for (const Eviction ev : kEvictions) {
    for (const double admit : {1.0, 0.7}) {
      SCOPED_TRACE(fmt::format("{}, admit {}", eviction_name(ev), admit));
      const CacheOptions opts = options(4, ev, admit);
      ReplicatedCache dist(world(), kKeyDim, kValueDim, opts);
      expect_equals_union_reference(dist, opts, 8);
      EXPECT_GT(dist.stats().evictions, 0);
      if (admit < 1.0) EXPECT_GT(dist.stats().rejected, 0);
      // Every replica holds the same entries: the same answers to the same probe on every rank.
      const at::Tensor probe = queries_of(0, 99);
      const SkipCache::Match m = dist.search(probe, 2);
      const at::Tensor all = world().allgather(m.similarity);  // [n_ranks, n, 2]
      for (int r = 0; r < world().size(); ++r) EXPECT_TRUE(at::equal(all[r], m.similarity));
    }
  }
}

TEST(ShardedCache, EqualsOneCacheOverTheUnionWhileNoShardEvicts) {
  ShardedCache dist(world(), kKeyDim, kValueDim, options(1000));
  expect_equals_union_reference(dist, options(1000), 8);
  // Round robin over the global insertion counter: the shards differ by at most one entry.
  const at::Tensor sizes = world().allgather(at::tensor({dist.stats().size}, at::kLong));
  EXPECT_LE((sizes.max() - sizes.min()).item<int64_t>(), 1);
  EXPECT_EQ(dist.stats().size, dist.stats().insertions);
}

// What a sharded cache must equal once its shards evict. Capacity is per shard by design, so
// it is not one cache of the union: it is n independent caches (n = ranks), cache s receiving
// the entries of the union's global insertion order j with j mod n = s (in that order), each
// with its own capacity, eviction and admission stream (seed + s). A query's answer is the
// best of the n caches' answers (equal similarities: the lower s), its handle s · capacity +
// slot; a hit's use ticks the cache that holds it. Every rank builds this reference itself,
// from the same seeded data, without communication.
class ShardedReference {
 public:
  ShardedReference(int n_shards, const CacheOptions& opts) : capacity_(opts.capacity) {
    for (int s = 0; s < n_shards; ++s) {
      CacheOptions o = opts;
      o.seed = opts.seed + static_cast<uint64_t>(s);
      shards_.push_back(std::make_unique<LocalCache>(kKeyDim, kValueDim, o));
    }
  }

  // One step over the union's queries (rank order): search, fetch, insert the misses.
  StepOutcome step(const at::Tensor& queries, FlopCounter* flops) {
    const int64_t q = queries.size(0);
    const int n = static_cast<int>(shards_.size());
    StepOutcome o;
    o.similarity = at::full({q, 1}, -std::numeric_limits<float>::infinity());
    o.handle = at::full({q}, int64_t(-1), at::kLong);
    at::Tensor owner = at::full({q}, int64_t(-1), at::kLong), slot = at::full({q}, int64_t(-1), at::kLong);
    for (int s = 0; s < n; ++s) {
      const SkipCache::Match m = shards_[static_cast<size_t>(s)]->search(queries, 1, flops, 0);
      for (int64_t i = 0; i < q; ++i) {
        const float sim = m.similarity[i][0].item<float>();
        const int64_t h = m.handle[i][0].item<int64_t>();
        if (h < 0 || !(sim > o.similarity[i][0].item<float>())) continue;  // ties stay with the lower shard
        o.similarity[i][0] = sim;
        owner[i] = s;
        slot[i] = h;
        o.handle[i] = s * capacity_ + h;
      }
    }
    o.hit = o.similarity.select(1, 0).ge(kTau);
    o.values = at::zeros({q, kValueDim});
    for (int s = 0; s < n; ++s) {
      const at::Tensor mine = o.hit.logical_and(owner.eq(s));
      const at::Tensor handles = at::where(mine, slot, at::full_like(slot, -1));
      const at::Tensor use = at::where(mine, at::zeros_like(slot), at::full_like(slot, -1));
      o.values += shards_[static_cast<size_t>(s)]->fetch(handles, use, at::kCPU);  // zero rows elsewhere
    }
    const at::Tensor miss = o.hit.logical_not().nonzero().squeeze(1);
    const at::Tensor keys = queries.index_select(0, miss);
    const at::Tensor to = (at::arange(keys.size(0), at::kLong) + n_offered_).remainder(n);
    for (int s = 0; s < n; ++s) {
      const at::Tensor rows = to.eq(s).nonzero().squeeze(1);
      const at::Tensor k = keys.index_select(0, rows);
      shards_[static_cast<size_t>(s)]->insert(k, value_of(k));
    }
    n_offered_ += keys.size(0);
    return o;
  }

  int64_t evictions() const {
    int64_t e = 0;
    for (const auto& s : shards_) e += s->stats().evictions;
    return e;
  }
  const LocalCache& shard(int s) const { return *shards_[static_cast<size_t>(s)]; }

 private:
  std::vector<std::unique_ptr<LocalCache>> shards_;
  int64_t capacity_;
  int64_t n_offered_ = 0;
};

TEST(ShardedCache, EvictingShardsEqualIndependentCachesOfTheirEntries) {
  const int n = world().size(), me = world().rank();
  for (const Eviction ev : kEvictions) {
    for (const double admit : {1.0, 0.7}) {
      SCOPED_TRACE(fmt::format("{}, admit {}", eviction_name(ev), admit));
      // 3 entries per shard against 10 directions: every shard evicts.
      const CacheOptions opts = options(3, ev, admit);
      ShardedCache dist(world(), kKeyDim, kValueDim, opts);
      ShardedReference ref(n, opts);
      FlopCounter f_dist, f_ref;
      int64_t n_hits = 0;
      for (int64_t s = 0; s < 10; ++s) {
        SCOPED_TRACE(fmt::format("step {}", s));
        const StepOutcome want_all = ref.step(union_queries(s), &f_ref);
        const auto [b, e] = my_rows(s);
        const StepOutcome got = run_step(dist, queries_of(me, s), &f_dist);
        ASSERT_TRUE(at::equal(got.hit, want_all.hit.slice(0, b, e)));
        const at::Tensor none = at::full_like(got.handle, -1);
        EXPECT_TRUE(at::equal(at::where(got.hit, got.handle, none), at::where(got.hit, want_all.handle.slice(0, b, e), none)));
        EXPECT_TRUE(at::allclose(got.similarity, want_all.similarity.slice(0, b, e), 1e-6, 1e-6));
        EXPECT_TRUE(at::equal(got.values, want_all.values.slice(0, b, e)));
        n_hits += want_all.hit.sum().item<int64_t>();
      }
      EXPECT_GT(n_hits, 0);
      // This rank's shard is reference cache `me`: the same insertions, evictions and size.
      const CacheStats mine = dist.stats(), want = ref.shard(me).stats();
      EXPECT_EQ(mine.insertions, want.insertions);
      EXPECT_EQ(mine.evictions, want.evictions);
      EXPECT_EQ(mine.rejected, want.rejected);
      EXPECT_EQ(mine.size, want.size);
      EXPECT_GT(ref.evictions(), 0);
      EXPECT_EQ(world().allreduce(at::tensor({mine.evictions}, at::kLong), ReduceOp::sum).item<int64_t>(),
                ref.evictions());
      const int64_t lookup = world().allreduce(at::tensor({f_dist.by_group(OpGroup::lookup)}, at::kLong),
                                               ReduceOp::sum).item<int64_t>();
      EXPECT_EQ(lookup, f_ref.by_group(OpGroup::lookup));
      // On one rank the reference is one cache: the union reference holds as well.
      if (n == 1) {
        ShardedCache alone(world(), kKeyDim, kValueDim, opts);
        expect_equals_union_reference(alone, opts, 10);
      }
    }
  }
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

// global:group: the decision is summed over the expert-parallel group only. Groups of two
// ranks (0+1, 2+3): rank 0 hits all its 10 lookups, every other rank none. Group 0 sees 10 of
// 20 (applies at 0.5), group 1 sees 0 of 20 (does not); a lone last rank (3 ranks) sees 0 of 10.
TEST(SyncGlobal, GroupScopeDecidesPerExpertParallelGroup) {
  const int me = world().rank(), n = world().size();
  std::unique_ptr<Communicator> group = world().split(me / 2, me);
  PolicyEnv env;
  env.sync = SyncRule::parse("global:group:0.5", "--sync");
  attach_distribution(env, CacheMode::local, world(), group.get());
  const SyncDecision d = decide_sync(env.sync, env.sync_sum(), 10, me == 0 ? 10 : 0);
  const int64_t group_size = std::min(2, n - 2 * (me / 2));
  EXPECT_EQ(d.group_lookups, 10 * group_size);
  EXPECT_EQ(d.group_hits, me / 2 == 0 ? 10 : 0);
  EXPECT_EQ(d.apply, me / 2 == 0);
  EXPECT_EQ(d.all_skip, n == 1);  // only a lone rank 0 hit every lookup of its group
  // The job-wide rule over the same counts: 10 of 10n.
  const SyncDecision j = decide_sync(SyncRule::parse("global:0.5", "x"), env.sum_over_ranks, 10, me == 0 ? 10 : 0);
  EXPECT_EQ(j.group_lookups, 10 * n);
  EXPECT_EQ(j.apply, n <= 2);
  // Without an expert-parallel group the rule is refused, naming what to set.
  PolicyEnv none;
  none.sync = env.sync;
  try {
    attach_distribution(none, CacheMode::local, world());
    ADD_FAILURE() << "global:group accepted without a group";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--sync global:group:0.5: global:group decides over the expert-parallel group"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace semskip::test
