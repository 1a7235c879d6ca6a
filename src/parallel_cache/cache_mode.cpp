#include "parallel_cache/cache_mode.h"

#include <memory>

#include "core/error.h"
#include "parallel_cache/replicated_cache.h"
#include "parallel_cache/sharded_cache.h"

namespace semskip {

CacheMode parse_cache_mode(const std::string& s, const std::string& what) {
  if (s == "local") return CacheMode::local;
  if (s == "replicated") return CacheMode::replicated;
  if (s == "sharded") return CacheMode::sharded;
  SEMSKIP_THROW_MSG("{}: unknown cache mode '{}' (expected local, replicated or sharded)", what, s);
}

const char* cache_mode_name(CacheMode m) {
  switch (m) {
    case CacheMode::local: return "local";
    case CacheMode::replicated: return "replicated";
    case CacheMode::sharded: return "sharded";
  }
  SEMSKIP_ASSERT(false);
  return "";
}

namespace {

SumOverRanks allreduce_over(Communicator* c) {
  return [c](std::vector<int64_t>& v) {
    const at::Tensor s = c->allreduce(at::tensor(v, at::kLong), ReduceOp::sum).cpu();
    for (size_t i = 0; i < v.size(); ++i) v[i] = s[static_cast<int64_t>(i)].item<int64_t>();
  };
}

}  // namespace

void attach_distribution(PolicyEnv& env, CacheMode mode, Communicator& comm, Communicator* ep_group) {
  Communicator* c = &comm;
  switch (mode) {
    case CacheMode::local: env.make_cache = nullptr; break;
    case CacheMode::replicated:
      env.make_cache = [c](int64_t key_dim, int64_t value_dim, const CacheOptions& o) -> std::unique_ptr<SkipCache> {
        return std::make_unique<ReplicatedCache>(*c, key_dim, value_dim, o);
      };
      break;
    case CacheMode::sharded:
      env.make_cache = [c](int64_t key_dim, int64_t value_dim, const CacheOptions& o) -> std::unique_ptr<SkipCache> {
        return std::make_unique<ShardedCache>(*c, key_dim, value_dim, o);
      };
      break;
  }
  env.sum_over_ranks = comm.size() > 1 ? allreduce_over(c) : nullptr;
  env.sum_over_group = ep_group && ep_group->size() > 1 ? allreduce_over(ep_group) : nullptr;
  SEMSKIP_THROW_IF_NOT_MSG(!env.sync.over_group || ep_group,
                           "--sync {}: global:group decides over the expert-parallel group; this run has no "
                           "expert parallelism (use --ep n > 1, or --sync global over the whole job)",
                           env.sync.describe());
}

}  // namespace semskip
