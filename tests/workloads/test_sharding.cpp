// Sharding: a partition, the same on every rank, balanced within greedy's bound; and sharded
// workloads stream exactly their part.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "workload_test_util.h"
#include "workloads/rng.h"
#include "workloads/sharding.h"

using namespace semskip;
using namespace semskip::test;

namespace {
const ShardStrategy kAll[] = {ShardStrategy::round_robin, ShardStrategy::contiguous, ShardStrategy::balanced};

std::vector<int64_t> random_sizes(int64_t n, uint64_t seed, int64_t max_size) {
  Rng rng(seed);
  std::vector<int64_t> s(static_cast<size_t>(n));
  for (int64_t& v : s) v = rng.between(1, max_size);
  return s;
}
}  // namespace

TEST(Sharding, EveryRequestOnExactlyOneRank) {
  for (int64_t n : {0, 1, 2, 7, 64, 101}) {
    const std::vector<int64_t> sizes = random_sizes(n, 42 + n, 50);
    for (int n_ranks : {1, 2, 3, 8, 13}) {
      for (ShardStrategy st : kAll) {
        std::vector<int> seen(static_cast<size_t>(n), 0);
        const std::vector<int32_t> rank_of = assign_ranks(sizes, n_ranks, st, 7);
        for (int rank = 0; rank < n_ranks; ++rank) {
          std::vector<int64_t> mine = shard(sizes, n_ranks, rank, st, 7);
          EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
          for (int64_t i : mine) {
            ++seen[static_cast<size_t>(i)];
            EXPECT_EQ(rank_of[static_cast<size_t>(i)], rank);
          }
        }
        for (int c : seen) EXPECT_EQ(c, 1) << shard_strategy_name(st) << " n=" << n << " ranks=" << n_ranks;
      }
    }
  }
}

TEST(Sharding, RoundRobinAndContiguousLayouts) {
  const std::vector<int64_t> sizes(10, 1);
  EXPECT_EQ(shard(sizes, 3, 1, ShardStrategy::round_robin, 0), (std::vector<int64_t>{1, 4, 7}));
  EXPECT_EQ(shard(sizes, 3, 0, ShardStrategy::contiguous, 0), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(shard(sizes, 3, 1, ShardStrategy::contiguous, 0), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(shard(sizes, 3, 2, ShardStrategy::contiguous, 0), (std::vector<int64_t>{7, 8, 9}));
  EXPECT_TRUE(shard(std::vector<int64_t>(2, 1), 4, 3, ShardStrategy::contiguous, 0).empty());
}

TEST(Sharding, DeterministicAndSeeded) {
  const std::vector<int64_t> sizes = random_sizes(500, 1, 8);  // many ties
  for (ShardStrategy st : kAll)
    EXPECT_EQ(assign_ranks(sizes, 6, st, 3), assign_ranks(sizes, 6, st, 3));
  EXPECT_NE(assign_ranks(sizes, 6, ShardStrategy::balanced, 3),
            assign_ranks(sizes, 6, ShardStrategy::balanced, 4));
}

TEST(Sharding, BalancedWithinTheGreedyBound) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    const std::vector<int64_t> sizes = random_sizes(997, seed, 2000);
    for (int n_ranks : {2, 5, 16}) {
      const std::vector<int32_t> rank_of = assign_ranks(sizes, n_ranks, ShardStrategy::balanced, seed);
      std::vector<int64_t> load(static_cast<size_t>(n_ranks), 0);
      for (size_t i = 0; i < sizes.size(); ++i) load[static_cast<size_t>(rank_of[i])] += sizes[i];
      const int64_t hi = *std::max_element(load.begin(), load.end());
      const int64_t lo = *std::min_element(load.begin(), load.end());
      const int64_t biggest = *std::max_element(sizes.begin(), sizes.end());
      // Each item goes to the least-loaded rank, so the heaviest rank exceeds the lightest by
      // at most one item, and (Graham) the heaviest carries at most the mean plus (1 - 1/m) of
      // the biggest item.
      EXPECT_LE(hi - lo, biggest);
      const double mean = std::accumulate(load.begin(), load.end(), 0.0) / n_ranks;
      EXPECT_LE(hi, mean + (1.0 - 1.0 / n_ranks) * biggest + 1e-9);
      // On these sizes greedy also beats dealing the requests out in turn.
      std::vector<int64_t> rr(static_cast<size_t>(n_ranks), 0);
      for (size_t i = 0; i < sizes.size(); ++i) rr[i % n_ranks] += sizes[i];
      EXPECT_LE(hi, *std::max_element(rr.begin(), rr.end()));
    }
  }
}

TEST(Sharding, NamesAndBadArguments) {
  for (ShardStrategy st : kAll) EXPECT_EQ(parse_shard_strategy(shard_strategy_name(st)), st);
  EXPECT_THROW(parse_shard_strategy("random"), Error);
  EXPECT_THROW(shard({1, 2}, 0, 0, ShardStrategy::round_robin, 0), Error);
  EXPECT_THROW(shard({1, 2}, 2, 2, ShardStrategy::round_robin, 0), Error);
}

TEST(Sharding, ShardedWorkloadsStreamTheirPartWithGlobalIds) {
  const std::string spec_text = "synthetic:num=57,seed=4";
  const WorkloadSpec spec = WorkloadSpec::parse(spec_text);
  const WorkloadContext ctx = tiny_context();
  std::vector<Request> all = load(spec_text, ctx);
  const std::vector<int64_t> sizes = request_sizes(spec, ctx);
  ASSERT_EQ(sizes.size(), all.size());
  for (ShardStrategy st : kAll) {
    std::vector<int> seen(all.size(), 0);
    for (int rank = 0; rank < 4; ++rank) {
      auto w = Workload::open_shard(spec, ctx, ShardPlan{4, rank, st, 11});
      std::vector<Request> part = drain(*w);
      std::vector<int64_t> ids;
      for (const Request& q : part) {
        ids.push_back(q.id);
        ++seen[static_cast<size_t>(q.id)];
        EXPECT_EQ(q.prompt_text, all[static_cast<size_t>(q.id)].prompt_text);
      }
      EXPECT_EQ(ids, shard(sizes, 4, rank, st, 11)) << shard_strategy_name(st);
    }
    for (int c : seen) EXPECT_EQ(c, 1);
  }
}
