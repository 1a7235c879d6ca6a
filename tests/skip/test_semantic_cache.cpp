#include <gtest/gtest.h>

#include <cmath>

#include <algorithm>
#include <map>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"
#include "metrics/flop_counter.h"
#include "skip/key_projection.h"
#include "skip/local_cache.h"
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

at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

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

// Stores keys e_i with value i ([1] per entry).
static void put(SemanticCache& c, const std::vector<int64_t>& ids, int64_t d) {
  std::vector<at::Tensor> r;
  for (int64_t i : ids) r.push_back(basis(i, d));
  c.insert(at::cat(r, 0), at::tensor(std::vector<float>(ids.begin(), ids.end())).view({-1, 1}));
}

// The keys among e_0..e_{n−1} that the cache holds, each checked to carry its own value i.
static std::vector<int64_t> held(SemanticCache& c, int64_t n, int64_t d) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t s = slot_of(c, i, d);
    if (s < 0) continue;
    out.push_back(i);
    EXPECT_EQ(c.values(at::tensor({s}), at::kCPU)[0][0].item<float>(), static_cast<float>(i)) << "key " << i;
  }
  return out;
}

static at::Tensor slots_of(SemanticCache& c, const std::vector<int64_t>& ids, int64_t d) {
  std::vector<int64_t> s;
  for (int64_t i : ids) s.push_back(slot_of(c, i, d));
  return at::tensor(s, at::kLong);
}

using Held = std::vector<int64_t>;

// FIFO: the oldest insert goes, whatever the use; within one insert call the lowest slot
// (fresh slots are handed out in row order, so the first row).
TEST(SemanticCache, FifoEvictsInInsertionOrderWhateverTheUse) {
  const int64_t d = 16;
  SemanticCache c(d, 1, opts(3, Eviction::fifo));
  put(c, {0, 1}, d);
  put(c, {2}, d);
  for (int t = 0; t < 5; ++t) c.touch(slots_of(c, {0, 1}, d));
  put(c, {3}, d);  // 0 and 1 are equally old: the first row of that insert, 0, goes
  EXPECT_EQ(held(c, 10, d), (Held{1, 2, 3}));
  put(c, {4}, d);
  EXPECT_EQ(held(c, 10, d), (Held{2, 3, 4}));
  for (int t = 0; t < 5; ++t) c.touch(slots_of(c, {2}, d));
  put(c, {5, 6}, d);  // two victims in one call: 2 (oldest), then 3
  EXPECT_EQ(held(c, 10, d), (Held{4, 5, 6}));
  EXPECT_EQ(c.stats().evictions, 4);
  EXPECT_EQ(c.stats().insertions, 7);
  EXPECT_EQ(c.size(), 3);
}

// LFU: the fewest uses go; among equally used entries the least recently used (an entry
// never used counts from its insertion); among those, the lowest slot. Worked by hand
// (clock ticks once per insert or touch call; (uses, last use) per entry):
TEST(SemanticCache, LfuEvictsLeastUsedThenLeastRecentlyUsed) {
  const int64_t d = 16;
  SemanticCache c(d, 1, opts(3, Eviction::lfu));
  put(c, {0, 1, 2}, d);                // t1: 0 (0,1) 1 (0,1) 2 (0,1), slots 0, 1, 2
  c.touch(slots_of(c, {0}, d));        // t2: 0 (1,2)
  c.touch(slots_of(c, {2}, d));        // t3: 2 (1,3)
  put(c, {3}, d);                      // t4: 1 is least used → 3 (0,4) in slot 1
  EXPECT_EQ(held(c, 10, d), (Held{0, 2, 3}));
  put(c, {4}, d);                      // t5: 3 is least used although newest → 4 (0,5)
  EXPECT_EQ(held(c, 10, d), (Held{0, 2, 4}));
  c.touch(slots_of(c, {4}, d));        // t6: 4 (1,6): now 0, 2, 4 all used once
  put(c, {5}, d);                      // t7: tie on uses → least recent, 0 (last use t2)
  EXPECT_EQ(held(c, 10, d), (Held{2, 4, 5}));
  put(c, {6, 7}, d);                   // t8: 5 (0,7) goes, then 2 (1,3) before 4 (1,6)
  EXPECT_EQ(held(c, 10, d), (Held{4, 6, 7}));
  // 6 and 7: uses 0, last use t8 both; 6 took 5's slot 0, 7 took 2's slot 2: slot 0 goes.
  EXPECT_LT(slot_of(c, 6, d), slot_of(c, 7, d));
  put(c, {8}, d);
  EXPECT_EQ(held(c, 10, d), (Held{4, 7, 8}));
  EXPECT_EQ(c.stats().evictions, 6);
  // A slot repeated in one touch call gets one use per occurrence, all in one tick.
  c.touch(slots_of(c, {7, 7}, d));      // 7 (2, t10)
  c.touch(slots_of(c, {8}, d));         // 8 (1, t11), 4 (1, t6)
  put(c, {9}, d);                       // 4: one use, least recent
  EXPECT_EQ(held(c, 10, d), (Held{7, 8, 9}));
}

// LRU through the SkipCache interface, as the policies use it: a fetch with use −1 only lends
// the value; uses g ≥ 0 touch, one tick per distinct g in ascending g (not in row order).
TEST(LocalCache, LruIsTouchedByHitsNotByLentValues) {
  const int64_t d = 16;
  LocalCache c(d, 1, opts(3, Eviction::lru));
  auto handle = [&](int64_t i) {
    SkipCache::Match m = c.search(basis(i, d), 1);
    return m.similarity[0][0].item<float>() > 0.999f ? m.handle[0][0].item<int64_t>() : int64_t{-1};
  };
  auto holds = [&](int64_t n) {
    Held out;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t h = handle(i);
      if (h < 0) continue;
      out.push_back(i);
      at::Tensor v = c.fetch(at::tensor({h}), at::tensor({int64_t{-1}}), at::kCPU);
      EXPECT_EQ(v[0][0].item<float>(), static_cast<float>(i));
    }
    return out;
  };
  auto insert = [&](const std::vector<int64_t>& ids) {
    std::vector<at::Tensor> r;
    for (int64_t i : ids) r.push_back(basis(i, d));
    c.insert(at::cat(r, 0), at::tensor(std::vector<float>(ids.begin(), ids.end())).view({-1, 1}));
  };
  insert({0, 1, 2});                                                   // t1
  at::Tensor lent = c.fetch(at::tensor({handle(0)}), at::tensor({int64_t{-1}}), at::kCPU);
  EXPECT_EQ(lent[0][0].item<float>(), 0.0f);                           // no tick
  c.fetch(at::tensor({handle(1), handle(2)}), at::tensor({int64_t{0}, int64_t{0}}), at::kCPU);  // t2
  insert({3});                                                         // t3: 0 goes
  EXPECT_EQ(holds(10), (Held{1, 2, 3}));
  // Row order 2, 1 but g order 1 (t4) before 2 (t5).
  c.fetch(at::tensor({handle(2), handle(1)}), at::tensor({int64_t{1}, int64_t{0}}), at::kCPU);
  insert({4});                                                         // 3 (t3) goes
  EXPECT_EQ(holds(10), (Held{1, 2, 4}));
  insert({5});                                                         // 1 (t4) goes
  EXPECT_EQ(holds(10), (Held{2, 4, 5}));
  // A −1 handle fetches a zero row and touches nothing.
  at::Tensor z = c.fetch(at::tensor({int64_t{-1}}), at::tensor({int64_t{0}}), at::kCPU);
  EXPECT_EQ(z[0][0].item<float>(), 0.0f);
  EXPECT_EQ(c.stats().evictions, 3);
}

// Values are stored in the value dtype: a read returns the inserted value rounded to
// bf16 / fp16, not the fp32 one; value_bytes counts the stored width.
TEST(SemanticCache, ValuesRoundTripAtTheValueDtype) {
  const int64_t d = 16, vd = 24, n = 3;
  at::Tensor v = at::randn({n, vd}, seeded(21));
  for (auto [dt, st, bytes] : {std::tuple{DType::fp32, at::kFloat, 4}, std::tuple{DType::bf16, at::kBFloat16, 2},
                               std::tuple{DType::fp16, at::kHalf, 2}}) {
    CacheOptions o = opts(8, Eviction::lru);
    o.value_dtype = dt;
    SemanticCache c(d, vd, o);
    c.insert(rows({0, 1, 2}, d), v);
    at::Tensor got = c.values(slots_of(c, {0, 1, 2}, d), at::kCPU);
    EXPECT_EQ(got.scalar_type(), st);
    at::Tensor rounded = v.to(st).to(at::kFloat);
    EXPECT_TRUE(at::equal(got.to(at::kFloat), rounded)) << dtype_name(dt);
    if (dt == DType::fp32) {
      EXPECT_TRUE(at::equal(got, v));
    } else {
      EXPECT_GT((got.to(at::kFloat) - v).abs().max().item<float>(), 0.0f) << dtype_name(dt);
    }
    EXPECT_EQ(c.stats().value_bytes, n * vd * bytes) << dtype_name(dt);
  }
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

// The keys of `keys` [n, d] (distinct unit directions) that the cache holds: those found
// again at similarity 1.
static std::vector<bool> admitted(SemanticCache& c, const at::Tensor& keys) {
  SemanticCache::Match m = c.search(keys, 1);
  std::vector<bool> in(static_cast<size_t>(keys.size(0)));
  for (int64_t i = 0; i < keys.size(0); ++i) in[static_cast<size_t>(i)] = m.similarity[i][0].item<float>() > 0.9999f;
  return in;
}

TEST(SemanticCache, SampledAdmissionIsSeededAndProportional) {
  const int64_t d = 64, n = 1000;
  // 1000 random directions in 64 dimensions: no two closer than cos 0.9999.
  at::Tensor keys = at::randn({n, d}, seeded(1), at::TensorOptions().dtype(at::kFloat));
  keys = keys / keys.norm(2, -1, true);
  auto run = [&](uint64_t seed) {
    CacheOptions o = opts(2 * n, Eviction::lru);
    o.admit_prob = parse_admission("sample:0.25", "test");
    o.seed = seed;
    SemanticCache c(d, 1, o);
    c.insert(keys, at::zeros({n, 1}));
    EXPECT_EQ(c.stats().insertions + c.stats().rejected, n);
    EXPECT_EQ(c.size(), c.stats().insertions);
    std::vector<bool> in = admitted(c, keys);
    EXPECT_EQ(std::count(in.begin(), in.end(), true), c.stats().insertions);
    return in;
  };
  const std::vector<bool> a = run(11), b = run(11), other = run(12);
  EXPECT_EQ(a, b);       // same seed, same admitted set
  EXPECT_NE(a, other);   // another seed, another set
  // Binomial(n, 0.25): sd 13.7 around 250; ±4 sd. Also in each half, so that admission is a
  // draw per miss and not a prefix of the batch (sd 9.7 around 125).
  const auto first = std::count(a.begin(), a.begin() + n / 2, true);
  const auto second = std::count(a.begin() + n / 2, a.end(), true);
  EXPECT_NEAR(static_cast<double>(first + second), 250.0, 55.0);
  EXPECT_NEAR(static_cast<double>(first), 125.0, 39.0);
  EXPECT_NEAR(static_cast<double>(second), 125.0, 39.0);
  // The fraction of other seeds' sets that agree with `a` on a key is that of independent
  // draws: p² + (1−p)² = 0.625 (sd 0.015 over 1000 keys).
  int64_t agree = 0;
  for (int64_t i = 0; i < n; ++i) agree += a[static_cast<size_t>(i)] == other[static_cast<size_t>(i)];
  EXPECT_NEAR(static_cast<double>(agree) / n, 0.625, 0.06);
  // all-misses admits everything.
  SemanticCache all(d, 1, opts(2 * n, Eviction::lru));
  all.insert(keys, at::zeros({n, 1}));
  EXPECT_EQ(all.stats().insertions, n);
  EXPECT_EQ(all.stats().rejected, 0);
  EXPECT_THROW(parse_admission("sample:0", "x"), Error);
  EXPECT_THROW(parse_admission("sample:1.5", "x"), Error);
  EXPECT_THROW(parse_admission("lottery", "x"), Error);
  EXPECT_DOUBLE_EQ(parse_admission("sample:0.4", "x"), 0.4);
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
  const int64_t in = 32, kd = 8;
  KeyProjection p(KeyProjectionKind::random, in, kd, 7);
  EXPECT_EQ(p.key_dim(), kd);
  at::Tensor h = at::randn({5, in}, seeded(3));
  FlopCounter f;
  at::Tensor k = p(h, &f, 1);
  ASSERT_EQ(k.sizes(), (std::vector<int64_t>{5, kd}));
  EXPECT_TRUE(at::allclose(k.norm(2, -1), at::ones({5}), 1e-5, 1e-5));
  EXPECT_EQ(f.by_group(OpGroup::key_proj), 2 * 5 * kd * in);
  // Same seed, same map; another seed, another map.
  KeyProjection q(KeyProjectionKind::random, in, kd, 7);
  EXPECT_TRUE(at::allclose(q(h), k));
  KeyProjection other(KeyProjectionKind::random, in, kd, 8);
  EXPECT_FALSE(at::allclose(other(h), k, 1e-2, 1e-2));

  // The map M [in, kd] seen through the keys: key(x) = x·M / ‖x·M‖. Row i of M up to its
  // length r_i is key(e_i); the ratios r_i / r_0 follow from key(e_0 + e_i), which lies
  // along r_0·key(e_0) + r_i·key(e_i). That recovers M up to one factor, which the keys'
  // normalisation removes anyway.
  at::Tensor u = p(at::eye(in)).to(at::kDouble);  // [in, kd]
  at::Tensor pairs = at::eye(in);
  pairs.select(1, 0).add_(1.0);
  at::Tensor o = p(pairs).to(at::kDouble);        // row i along r_0·u_0 + r_i·u_i
  at::Tensor m = at::empty({in, kd}, at::kDouble);
  m[0] = u[0];
  for (int64_t i = 1; i < in; ++i) {
    at::Tensor basis2 = at::stack({u[0], u[i]}, 1);  // [kd, 2]
    at::Tensor coef = std::get<0>(at::linalg_lstsq(basis2, o[i].unsqueeze(1))).squeeze(1);
    m[i] = u[i] * (coef[1] / coef[0]);
  }
  // Orthonormal columns: MᵀM = I (here up to the common factor).
  at::Tensor gram = at::matmul(m.t(), m);
  gram = gram / (gram.trace() / kd);
  EXPECT_LT((gram - at::eye(kd, at::kDouble)).abs().max().item<double>(), 1e-5);

  // Vectors in the column span, x = y·Mᵀ: the key is y itself (normalised), so norms and
  // inner products of such vectors are preserved exactly.
  at::Tensor y = at::randn({6, kd}, seeded(4), at::TensorOptions().dtype(at::kDouble));
  at::Tensor x = at::matmul(y, m.t());
  at::Tensor kx = p(x.to(at::kFloat)).to(at::kDouble);
  at::Tensor yn = y / y.norm(2, -1, true);
  EXPECT_LT((kx - yn).abs().max().item<double>(), 1e-5);
  at::Tensor xn = x / x.norm(2, -1, true);
  EXPECT_LT((at::matmul(kx, kx.t()) - at::matmul(xn, xn.t())).abs().max().item<double>(), 1e-5);
  // Any vectors: the keys' cosines are those of the orthogonal projections P·x onto that
  // span (P computed from the span alone, by least squares) — true only for orthonormal M.
  at::Tensor g = at::randn({6, in}, seeded(5), at::TensorOptions().dtype(at::kDouble));
  at::Tensor proj = at::matmul(m, std::get<0>(at::linalg_lstsq(m, g.t()))).t();  // [6, in]
  at::Tensor pn = proj / proj.norm(2, -1, true);
  at::Tensor kg = p(g.to(at::kFloat)).to(at::kDouble);
  EXPECT_LT((at::matmul(kg, kg.t()) - at::matmul(pn, pn.t())).abs().max().item<double>(), 1e-5);
  EXPECT_THROW(KeyProjection(KeyProjectionKind::random, 16, 17, 0), Error);
  EXPECT_THROW(KeyProjection(KeyProjectionKind::random, 16, 0, 0), Error);
  // `none` keeps the width and only normalises.
  KeyProjection none(KeyProjectionKind::none, in, 4, 0);
  EXPECT_EQ(none.key_dim(), in);
  EXPECT_TRUE(at::allclose(none(h), h / h.norm(2, -1, true), 1e-6, 1e-6));
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
