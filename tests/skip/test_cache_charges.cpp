// What cache policies charge besides lookups (skip/cache_charges.h): index insertion and
// training, and the PCA fit, against the formulas of index/lookup_cost.h worked out by hand.
#include <gtest/gtest.h>

#include "metrics/flop_counter.h"
#include "skip/cache_charges.h"
#include "skip/local_cache.h"
#include "skip/residual_policy.h"

using namespace semskip;

namespace {

CacheOptions options(const std::string& index) {
  CacheOptions o;
  o.index_descriptor = index;
  o.capacity = 16;
  return o;
}

// Inserts n random unit keys of width d and returns the FLOPs charged for them.
FlopCounter insert_keys(LocalCache& cache, int64_t n, int64_t d, uint64_t seed) {
  FlopCounter f;
  const CacheSizes before = cache_sizes(cache);
  at::manual_seed(seed);
  at::Tensor k = at::randn({n, d});
  cache.insert(k / k.norm(2, -1, true), at::zeros({n, 1}));
  charge_insertions(cache, before, &f, 3);
  return f;
}

}  // namespace

TEST(CacheCharges, FlatInsertionIsACopy) {
  LocalCache cache(4, 1, options("torch:flat"));
  const FlopCounter f = insert_keys(cache, 5, 4, 1);
  EXPECT_EQ(cache.stats().insertions, 5);
  EXPECT_EQ(f.total(), 0);
}

TEST(CacheCharges, PcaFitIsCovarianceAndEigendecomposition) {
  const int64_t L = 4, d = 4, N = 6;
  PolicyEnv e;
  e.n_layers = L, e.hidden = d, e.capacity = 8;
  ResidualPolicy p(Descriptor::parse("residual:p=0,r=1,tau=0.9,proj=pca,kdim=2"), e, L, d);
  CalibrationSet calib{at::randn({L + 1, N, d})};
  p.calibrate(calib);
  FlopCounter f;
  for (int step = 0; step < 2; ++step) {
    StepContext c(L, d, at::ones({1, 2}, at::kBool), {0}, true);
    c.flops = &f;
    p.begin_step(c);
    const at::Tensor h = at::randn({1, 2, d});
    p.after_layer(0, h, c);
    p.after_layer(1, h, c);
    p.end_step(c);
  }
  // Once, under the probe layer: 2·N·d² + 9·d³ = 2·6·16 + 9·64.
  EXPECT_EQ(f.by_group(OpGroup::train), 192 + 576);
  EXPECT_EQ(f.by_layer_overhead(0), f.total_overhead());
  EXPECT_EQ(f.by_group(OpGroup::insert), 0);  // torch:flat
}

#ifdef SEMSKIP_WITH_FAISS
TEST(CacheCharges, HnswInsertionFollowsTheGraphSize) {
  LocalCache cache(4, 1, options("faiss:HNSW2"));
  // d = 4, M = 2, efConstruction 40. Into an empty graph the three keys join 0, 1 and 2
  // others: 0; N = 1: L = 1, search 1, selection 1·1, back-links 1·2 → 4·8 = 32;
  // N = 2: L = 1, search 2, selection 2·2, back-links 2·3 → 12·8 = 96.
  FlopCounter f = insert_keys(cache, 3, 4, 1);
  EXPECT_EQ(f.by_group(OpGroup::insert), 128);
  EXPECT_EQ(f.by_layer_overhead(3), 128);
  // Two more: N = 3: L = 2, search 3, selection 3·3, back-links 3·4 → 24·8 = 192;
  // N = 4: L = 2, search 4, selection 4·4, back-links 4·5 → 40·8 = 320.
  f = insert_keys(cache, 2, 4, 2);
  EXPECT_EQ(f.by_group(OpGroup::insert), 512);
  EXPECT_EQ(f.by_group(OpGroup::train), 0);
}

TEST(CacheCharges, IvfTrainsOnceWhenItsTrainSizeIsReached) {
  LocalCache cache(4, 1, options("faiss:IVF2,Flat|train_size=4"));
  FlopCounter f = insert_keys(cache, 3, 4, 1);  // staged: copies
  EXPECT_EQ(f.total(), 0);
  // The fifth key brings 4: k-means 25·2·d·nlist·min(4, 256·2) = 1600, then all five keys
  // assigned, 5·2·d·nlist = 80.
  f = insert_keys(cache, 2, 4, 2);
  EXPECT_EQ(f.by_group(OpGroup::train), 1600);
  EXPECT_EQ(f.by_group(OpGroup::insert), 80);
  f = insert_keys(cache, 1, 4, 3);
  EXPECT_EQ(f.by_group(OpGroup::train), 0);
  EXPECT_EQ(f.by_group(OpGroup::insert), 16);
}
#endif
