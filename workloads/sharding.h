#pragma once
// Splitting a workload over ranks. A pure function of the requests' sizes, the rank count,
// the strategy and the seed: every rank computes the same assignment by itself, and each
// request lands on exactly one rank.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace semskip {

enum class ShardStrategy {
  round_robin,  // request i → rank i mod n
  contiguous,   // consecutive blocks; the first (N mod n) ranks get one more request
  balanced,     // by tokens: largest first to the least-loaded rank (LPT greedy)
};

const char* shard_strategy_name(ShardStrategy s);
// "round-robin" | "contiguous" | "balanced"; semskip::Error otherwise.
ShardStrategy parse_shard_strategy(std::string_view name);

struct ShardPlan {
  int n_ranks = 1;
  int rank = 0;
  ShardStrategy strategy = ShardStrategy::round_robin;
  uint64_t seed = 0;  // breaks ties between requests of equal size (balanced)
};

// The rank of every request; n_tokens[i] is request i's cost (prompt + output tokens).
// With balanced, load(rank) differs from the least-loaded rank by at most max(n_tokens).
std::vector<int32_t> assign_ranks(const std::vector<int64_t>& n_tokens, int n_ranks,
                                  ShardStrategy strategy, uint64_t seed);
// Stream positions of `rank`'s requests, ascending (the stream order is kept within a rank).
std::vector<int64_t> shard(const std::vector<int64_t>& n_tokens, int n_ranks, int rank,
                           ShardStrategy strategy, uint64_t seed);

}  // namespace semskip
