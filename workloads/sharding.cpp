#include "workloads/sharding.h"

#include <algorithm>
#include <numeric>
#include <queue>

#include "core/error.h"
#include "workloads/rng.h"

namespace semskip {

const char* shard_strategy_name(ShardStrategy s) {
  switch (s) {
    case ShardStrategy::round_robin: return "round-robin";
    case ShardStrategy::contiguous: return "contiguous";
    case ShardStrategy::balanced: return "balanced";
  }
  SEMSKIP_ASSERT(false);
  return "";
}

ShardStrategy parse_shard_strategy(std::string_view name) {
  if (name == "round-robin") return ShardStrategy::round_robin;
  if (name == "contiguous") return ShardStrategy::contiguous;
  if (name == "balanced") return ShardStrategy::balanced;
  SEMSKIP_THROW_MSG("unknown shard strategy '{}' (expected round-robin, contiguous or balanced)",
                    name);
}

std::vector<int32_t> assign_ranks(const std::vector<int64_t>& n_tokens, int n_ranks,
                                  ShardStrategy strategy, uint64_t seed) {
  SEMSKIP_THROW_IF_NOT_MSG(n_ranks >= 1, "shard: n_ranks must be >= 1, got {}", n_ranks);
  const int64_t n = static_cast<int64_t>(n_tokens.size());
  std::vector<int32_t> rank_of(n_tokens.size(), 0);
  switch (strategy) {
    case ShardStrategy::round_robin:
      for (int64_t i = 0; i < n; ++i) rank_of[i] = static_cast<int32_t>(i % n_ranks);
      break;
    case ShardStrategy::contiguous: {
      const int64_t base = n / n_ranks, extra = n % n_ranks;
      int64_t i = 0;
      for (int32_t r = 0; r < n_ranks; ++r) {
        const int64_t size = base + (r < extra ? 1 : 0);
        for (int64_t k = 0; k < size; ++k) rank_of[i++] = r;
      }
      SEMSKIP_ASSERT(i == n);
      break;
    }
    case ShardStrategy::balanced: {
      // Ties between equal sizes are broken by a seeded key, not by position, so that runs with
      // other seeds spread requests of one size differently; the result is still a function of
      // (sizes, n_ranks, seed) alone.
      std::vector<uint64_t> tie(n_tokens.size());
      for (int64_t i = 0; i < n; ++i) tie[i] = Rng::for_stream(seed, static_cast<uint64_t>(i)).next_u64();
      std::vector<int64_t> order(n_tokens.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        if (n_tokens[a] != n_tokens[b]) return n_tokens[a] > n_tokens[b];
        if (tie[a] != tie[b]) return tie[a] < tie[b];
        return a < b;
      });
      // Min-heap of (load, rank): the least-loaded rank, lowest rank first on equal load.
      using Slot = std::pair<int64_t, int32_t>;
      std::priority_queue<Slot, std::vector<Slot>, std::greater<Slot>> heap;
      for (int32_t r = 0; r < n_ranks; ++r) heap.push({0, r});
      for (int64_t i : order) {
        Slot s = heap.top();
        heap.pop();
        rank_of[i] = s.second;
        s.first += n_tokens[i];
        heap.push(s);
      }
      break;
    }
  }
  return rank_of;
}

std::vector<int64_t> shard(const std::vector<int64_t>& n_tokens, int n_ranks, int rank,
                           ShardStrategy strategy, uint64_t seed) {
  SEMSKIP_THROW_IF_NOT_MSG(rank >= 0 && rank < n_ranks, "shard: rank {} is not in [0, {})", rank,
                           n_ranks);
  std::vector<int32_t> rank_of = assign_ranks(n_tokens, n_ranks, strategy, seed);
  std::vector<int64_t> mine;
  for (size_t i = 0; i < rank_of.size(); ++i)
    if (rank_of[i] == rank) mine.push_back(static_cast<int64_t>(i));
  return mine;
}

}  // namespace semskip
