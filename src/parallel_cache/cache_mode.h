#pragma once
// `--cache-mode local|replicated|sharded` (docs/architecture.md §4) and how a run's PolicyEnv gets its
// distribution hooks: the cache factory of the mode and the allreduce of `--sync global`.
//   local       each rank caches only its own tokens (LocalCache, no communication)
//   replicated  every rank holds all entries (ReplicatedCache)
//   sharded     each rank holds 1/n of the entries (ShardedCache)

#include <string>

#include "comm/communicator.h"
#include "skip/skip_policy.h"

namespace semskip {

enum class CacheMode { local, replicated, sharded };

// semskip::Error naming `what` (the option) otherwise.
CacheMode parse_cache_mode(const std::string& s, const std::string& what);
const char* cache_mode_name(CacheMode m);

// Sets env.make_cache for `mode` (null for local) and, with more than one rank,
// env.sum_over_ranks to an allreduce over `comm`; with an expert-parallel group `ep_group`
// (null: none), env.sum_over_group to an allreduce over it (sync global:group). The
// communicators must outlive the policies built from env; every rank must build the same
// policies in the same order.
void attach_distribution(PolicyEnv& env, CacheMode mode, Communicator& comm, Communicator* ep_group = nullptr);

}  // namespace semskip
