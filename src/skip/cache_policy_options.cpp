#include "skip/cache_policy_options.h"

#include "core/error.h"
#include "skip/local_cache.h"

namespace semskip {

const std::set<std::string> kCacheDescriptorKeys = {"cap", "evict", "admit", "proj", "kdim", "vdtype"};

CachePolicyOptions parse_cache_policy_options(const Descriptor& d, const PolicyEnv& env, int64_t hidden) {
  const std::string what = "policy descriptor '" + d.text() + "'";
  CachePolicyOptions o;
  o.cache.index_descriptor = env.index_descriptor;
  o.cache.capacity = d.get_int("cap", env.capacity);
  SEMSKIP_THROW_IF_NOT_MSG(o.cache.capacity >= 1, "{}: cap must be ≥ 1", what);
  o.cache.eviction = parse_eviction(d.get_string("evict", "lru"), what);
  o.cache.admit_prob = parse_admission(d.get_string("admit", "all-misses"), what);
  o.cache.value_dtype = parse_dtype(d.get_string("vdtype", "fp32"), what);
  o.cache.device = env.device;
  o.cache.seed = env.seed;
  o.projection = parse_key_projection(d.get_string("proj", "none"), what);
  o.key_dim = o.projection == KeyProjectionKind::none ? hidden : d.get_int("kdim", 32);
  SEMSKIP_THROW_IF_NOT_MSG(o.projection != KeyProjectionKind::none || !d.has("kdim"),
                           "{}: kdim needs a projection (proj=random or proj=pca)", what);
  SEMSKIP_THROW_IF_NOT_MSG(o.key_dim >= 1 && o.key_dim <= hidden, "{}: kdim must be in 1..{}", what, hidden);
  return o;
}

std::unique_ptr<SkipCache> make_skip_cache(const PolicyEnv& env, int64_t key_dim, int64_t value_dim,
                                           const CacheOptions& opts) {
  if (env.make_cache) return env.make_cache(key_dim, value_dim, opts);
  return std::make_unique<LocalCache>(key_dim, value_dim, opts);
}

}  // namespace semskip
