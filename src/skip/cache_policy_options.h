#pragma once
// Descriptor keys shared by the policies that keep a semantic cache:
//   cap=<entries>  evict=lru|lfu|fifo  admit=all-misses|sample:<p>  proj=none|random|pca
//   kdim=<key dims>  vdtype=fp32|bf16|fp16
// cap defaults to the run's --capacity (PolicyEnv::capacity, kDefaultCacheCapacity), the
// index backend is the run's --index (PolicyEnv::index_descriptor, kDefaultIndexDescriptor);
// the others default to lru, all-misses, none, 32 (with a projection), fp32.

#include <memory>
#include <set>
#include <string>

#include "skip/descriptor.h"
#include "skip/key_projection.h"
#include "skip/semantic_cache.h"
#include "skip/skip_cache.h"
#include "skip/skip_policy.h"

namespace semskip {

extern const std::set<std::string> kCacheDescriptorKeys;

struct CachePolicyOptions {
  CacheOptions cache;
  KeyProjectionKind projection = KeyProjectionKind::none;
  int64_t key_dim = 0;  // projected width; the model width without projection
};

CachePolicyOptions parse_cache_policy_options(const Descriptor& d, const PolicyEnv& env, int64_t hidden);

// The cache of a cache policy: env.make_cache's, or a LocalCache when the run has none.
std::unique_ptr<SkipCache> make_skip_cache(const PolicyEnv& env, int64_t key_dim, int64_t value_dim,
                                           const CacheOptions& opts);

}  // namespace semskip
