#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "metrics/flop_counter.h"
#include "skip/key_projection.h"
#include "skip/semantic_cache.h"

using namespace semskip;

namespace {

// Unit vector e_i of width d, as a [1, d] row.
at::Tensor basis(int64_t i, int64_t d) {
  at::Tensor x = at::zeros({1, d});
  x[0][i] = 1.0f;
  return x;
}

at::Tensor rows(std::initializer_list<int64_t> ids, int64_t d) {
  std::vector<at::Tensor> r;
  for (int64_t i : ids) r.push_back(basis(i, d));
  return at::cat(r, 0);
}

CacheOptions opts(int64_t capacity, Eviction e) {
  CacheOptions o;
  o.index_descriptor = "torch:flat";
  o.capacity = capacity;
  o.eviction = e;
  return o;
}

// The slot holding key e_i (−1 when it is not stored).
int64_t slot_of(SemanticCache& c, int64_t i, int64_t d) {
  SemanticCache::Match m = c.search(basis(i, d), 1);
  return m.similarity[0][0].item<float>() > 0.999f ? m.slot[0][0].item<int64_t>() : -1;
}

}  // namespace

TEST(SemanticCache, StoresValuesAndFindsExactKeys) {
  const int64_t d = 8;
  SemanticCache c(d, 3, opts(4, Eviction::lru));
  EXPECT_EQ(c.search(basis(0, d), 2).slot[0][0].item<int64_t>(), -1);  // empty
  at::Tensor vals = at::arange(6, at::kFloat).view({2, 3});
  c.insert(rows({1, 2}, d), vals);
  EXPECT_EQ(c.size(), 2);
  SemanticCache::Match m = c.search(rows({2, 5}, d), 2);
  EXPECT_NEAR(m.similarity[0][0].item<float>(), 1.0f, 1e-6);
  EXPECT_NEAR(m.similarity[0][1].item<float>(), 0.0f, 1e-6);
  EXPECT_TRUE(std::isinf(m.similarity[1][0].item<float>()) || m.similarity[1][0].item<float>() < 1e-6);
  at::Tensor v = c.values(m.slot[0].slice(0, 0, 1), at::kCPU);
  EXPECT_TRUE(at::equal(v, vals[1].unsqueeze(0)));
  // Fewer entries than k: the tail is −1 / −inf.
  SemanticCache::Match m3 = c.search(basis(1, d), 3);
  EXPECT_EQ(m3.slot[0][2].item<int64_t>(), -1);
  EXPECT_TRUE(std::isinf(m3.similarity[0][2].item<float>()));
}

TEST(SemanticCache, FifoEvictsOldestInsert) {
  const int64_t d = 8;
  SemanticCache c(d, 1, opts(2, Eviction::fifo));
  c.insert(rows({0}, d), at::zeros({1, 1}));
  c.insert(rows({1}, d), at::ones({1, 1}));
  c.touch(at::tensor({slot_of(c, 0, d)}));  // use does not matter to FIFO
  c.insert(rows({2}, d), at::ones({1, 1}));
  EXPECT_EQ(slot_of(c, 0, d), -1);
  EXPECT_GE(slot_of(c, 1, d), 0);
  EXPECT_GE(slot_of(c, 2, d), 0);
  EXPECT_EQ(c.stats().evictions, 1);
}

TEST(SemanticCache, LruEvictsLeastRecentlyUsed) {
  const int64_t d = 8;
  SemanticCache c(d, 1, opts(2, Eviction::lru));
  c.insert(rows({0}, d), at::zeros({1, 1}));
  c.insert(rows({1}, d), at::zeros({1, 1}));
  c.touch(at::tensor({slot_of(c, 0, d)}));  // 0 is now more recent than 1
  c.insert(rows({2}, d), at::zeros({1, 1}));
  EXPECT_GE(slot_of(c, 0, d), 0);
  EXPECT_EQ(slot_of(c, 1, d), -1);
}

TEST(SemanticCache, LfuEvictsLeastFrequentlyUsed) {
  const int64_t d = 8;
  SemanticCache c(d, 1, opts(2, Eviction::lfu));
  c.insert(rows({0, 1}, d), at::zeros({2, 1}));
  const int64_t s0 = slot_of(c, 0, d), s1 = slot_of(c, 1, d);
  c.touch(at::tensor({s0, s0}));
  c.touch(at::tensor({s1}));
  c.touch(at::tensor({s1}));
  c.touch(at::tensor({s1}));  // 1 used three times, more recently; 0 twice
  c.insert(rows({2}, d), at::zeros({1, 1}));
  EXPECT_EQ(slot_of(c, 0, d), -1);
  EXPECT_GE(slot_of(c, 1, d), 0);
}

TEST(SemanticCache, ABatchLargerThanCapacityKeepsItsLastEntries) {
  const int64_t d = 8;
  SemanticCache c(d, 1, opts(3, Eviction::lru));
  c.insert(rows({0}, d), at::zeros({1, 1}));
  c.insert(rows({1, 2, 3, 4}, d), at::arange(4, at::kFloat).view({4, 1}));
  EXPECT_EQ(c.size(), 3);
  EXPECT_EQ(slot_of(c, 0, d), -1);
  EXPECT_EQ(slot_of(c, 1, d), -1);
  for (int64_t i : {2, 3, 4}) EXPECT_GE(slot_of(c, i, d), 0) << i;
  EXPECT_EQ(c.stats().rejected, 1);
}

TEST(SemanticCache, SampledAdmissionIsSeededAndProportional) {
  const int64_t d = 64;
  CacheOptions o = opts(1000, Eviction::lru);
  o.admit_prob = parse_admission("sample:0.25", "test");
  SemanticCache c(d, 1, o);
  at::Tensor keys = at::eye(d).repeat({4, 1}) + 0.01 * at::arange(4 * d, at::kFloat).view({4 * d, 1});
  c.insert(keys, at::zeros({4 * d, 1}));
  EXPECT_GT(c.stats().insertions, 40);
  EXPECT_LT(c.stats().insertions, 90);
  EXPECT_EQ(c.stats().insertions + c.stats().rejected, 4 * d);
  EXPECT_THROW(parse_admission("sample:0", "x"), Error);
  EXPECT_THROW(parse_admission("lottery", "x"), Error);
}

TEST(SemanticCache, ChargesLookupFlopsOfTheIndex) {
  const int64_t d = 16;
  SemanticCache c(d, 1, opts(100, Eviction::lru));
  c.insert(at::eye(d), at::zeros({d, 1}));
  FlopCounter f;
  c.search(at::eye(d).slice(0, 0, 3), 1, &f, 2);
  // Flat exact search: 2·d·N per query.
  EXPECT_EQ(f.by_group(OpGroup::lookup), 3 * 2 * d * d);
  EXPECT_EQ(f.by_layer(2), 3 * 2 * d * d);
}

TEST(KeyProjection, RandomIsOrthonormalAndKeysAreUnit) {
  KeyProjection p(KeyProjectionKind::random, 32, 8, 7);
  at::Tensor h = at::randn({5, 32});
  FlopCounter f;
  at::Tensor k = p(h, &f, 1);
  ASSERT_EQ(k.sizes(), (std::vector<int64_t>{5, 8}));
  EXPECT_TRUE(at::allclose(k.norm(2, -1), at::ones({5}), 1e-5, 1e-5));
  EXPECT_EQ(f.by_group(OpGroup::key_proj), 2 * 5 * 8 * 32);
  // Same seed, same map.
  KeyProjection q(KeyProjectionKind::random, 32, 8, 7);
  EXPECT_TRUE(at::allclose(q(h), k));
}

TEST(KeyProjection, PcaKeepsTheDominantDirections) {
  // Samples spread along e0 and e1 only: PCA to 2 dims preserves their cosines exactly.
  at::Tensor a = at::randn({200, 1}), b = at::randn({200, 1});
  at::Tensor h = at::zeros({200, 16});
  h.select(1, 0).copy_(a.squeeze(1) * 3);
  h.select(1, 1).copy_(b.squeeze(1));
  KeyProjection p(KeyProjectionKind::pca, 16, 2, 0);
  EXPECT_FALSE(p.ready());
  EXPECT_THROW(p(h), Error);
  p.fit(h);
  at::Tensor k = p(h.slice(0, 0, 10));
  at::Tensor hn = h.slice(0, 0, 10) / h.slice(0, 0, 10).norm(2, -1, true);
  EXPECT_TRUE(at::allclose(at::matmul(k, k.t()), at::matmul(hn, hn.t()), 1e-4, 1e-4));
  EXPECT_THROW(KeyProjection(KeyProjectionKind::pca, 16, 17, 0), Error);
}
