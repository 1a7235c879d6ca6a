// The saved state of `semskip run --resume`: a cache, policy or FLOP counter restored from its
// saved bytes behaves exactly as the original from then on (the same searches, slots, values,
// counters and draws), on every index backend whose internal structure a restore must rebuild
// (flat, IVF trained on the first keys added, HNSW's graph); damaged or mismatched state is refused.

#include <gtest/gtest.h>
#include <ATen/CPUGeneratorImpl.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "metrics/flop_counter.h"
#include "skip/baseline_policies.h"
#include "skip/semantic_cache.h"
#include "skip/state_io.h"

namespace semskip {
namespace {

// A stream of keys with near-duplicates, so searches hit, ties and evictions occur.
struct KeyStream {
  KeyStream(uint64_t seed, int64_t d)
      : gen(at::make_generator<at::CPUGeneratorImpl>(seed)), base(at::randn({40, d}, gen)) {}
  at::Tensor next(int64_t n, int64_t d) {
    at::Tensor pick = at::randint(0, 40, {n}, gen, at::kLong);
    return (base.index_select(0, pick) + 0.05 * at::randn({n, d}, gen)).contiguous();
  }
  at::Generator gen;
  at::Tensor base;  // fp32 [40, d]: centres, so keys have near-duplicates
};

// One round of what a policy does to its cache in a step: search, use the hits, insert misses.
void round(SemanticCache& c, KeyStream& keys, int64_t d) {
  const at::Tensor q = keys.next(5, d);
  SemanticCache::Match m = c.search(q, 2);
  const at::Tensor hit = m.similarity.select(1, 0).ge(0.95);
  if (hit.any().item<bool>()) c.touch(m.slot.select(1, 0).masked_select(hit));
  c.count_lookups(q.size(0), hit.sum().item<int64_t>(), 0);
  const at::Tensor miss = hit.logical_not().nonzero().squeeze(1);
  c.insert(q.index_select(0, miss), q.index_select(0, miss) * 3.0);
}

void expect_same(SemanticCache& a, SemanticCache& b, KeyStream& qa, KeyStream& qb, int64_t d, const std::string& what) {
  const at::Tensor q = qa.next(7, d);
  ASSERT_TRUE(at::equal(q, qb.next(7, d)));
  SemanticCache::Match ma = a.search(q, 3), mb = b.search(q, 3);
  EXPECT_TRUE(at::equal(ma.slot, mb.slot)) << what;
  EXPECT_TRUE(at::equal(ma.similarity, mb.similarity)) << what;
  const at::Tensor live = ma.slot.select(1, 0).clamp_min(0);
  EXPECT_TRUE(at::equal(a.values(live, at::kCPU), b.values(live, at::kCPU))) << what;
  const CacheStats sa = a.stats(), sb = b.stats();
  EXPECT_EQ(sa.lookups, sb.lookups) << what;
  EXPECT_EQ(sa.hits, sb.hits) << what;
  EXPECT_EQ(sa.insertions, sb.insertions) << what;
  EXPECT_EQ(sa.evictions, sb.evictions) << what;
  EXPECT_EQ(sa.rejected, sb.rejected) << what;
  EXPECT_EQ(a.size(), b.size()) << what;
}

class CacheRestore : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(CacheRestore, ContinuesExactlyAsTheOriginal) {
  const auto& [index, eviction] = GetParam();
  const int64_t d = 16;
  CacheOptions o;
  o.index_descriptor = index;
  o.capacity = index.find("HNSW") != std::string::npos ? 400 : 24;  // HNSW cannot remove: no eviction
  o.eviction = parse_eviction(eviction, "test");
  o.admit_prob = 0.7;
  o.seed = 11;
  SemanticCache a(d, d, o);
  KeyStream ka(3, d);
  for (int i = 0; i < 12; ++i) round(a, ka, d);
  StateWriter w;
  a.save_state(w);

  SemanticCache b(d, d, o);
  StateReader r(w.bytes(), "state.bin");
  b.load_state(r);
  EXPECT_TRUE(r.at_end());
  // b continues from a's key stream position: copy the generator state.
  KeyStream kb(3, d);
  kb.gen.set_state(ka.gen.get_state());
  for (int i = 0; i < 10; ++i) {
    round(a, ka, d);
    round(b, kb, d);
    expect_same(a, b, ka, kb, d, index + " " + eviction + " round " + std::to_string(i));
  }
  EXPECT_GT(a.stats().hits, 0);
  if (o.capacity == 24) EXPECT_GT(a.stats().evictions, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, CacheRestore,
                         ::testing::Combine(::testing::Values("torch:flat", "faiss:Flat", "faiss:IVF4,Flat|nprobe=2|train_size=24",
                                                              "faiss:HNSW32"),
                                            ::testing::Values("lru", "lfu", "fifo")));

TEST(CacheRestore, RefusesDamagedOrMismatchedState) {
  CacheOptions o;
  o.capacity = 8;
  SemanticCache a(4, 4, o);
  a.insert(at::randn({3, 4}), at::randn({3, 4}));
  StateWriter w;
  a.save_state(w);
  {
    SemanticCache b(4, 4, o);
    StateReader r(w.bytes().substr(0, w.bytes().size() / 2), "half.state");
    EXPECT_THROW(
        {
          try {
            b.load_state(r);
          } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("half.state"), std::string::npos) << e.what();
            throw;
          }
        },
        Error);
    EXPECT_EQ(b.size(), 0);  // nothing applied from a damaged state
  }
  CacheOptions bigger = o;
  bigger.capacity = 9;
  SemanticCache c(4, 4, bigger);
  StateReader r(w.bytes(), "other.state");
  EXPECT_THROW(c.load_state(r), Error);
}

TEST(PolicyRestore, RandomPolicyContinuesItsStream) {
  const Descriptor desc = Descriptor::parse("random:rate=0.5,seed=3");
  RandomPolicy a(desc, 6, 0), b(desc, 6, 0);
  auto draw = [](RandomPolicy& p) {
    const at::Tensor valid = at::ones({2, 5}, at::kBool);
    StepContext ctx(6, 8, valid, {0, 1}, true);
    p.begin_step(ctx);
    return ctx.skip_block(2).clone();
  };
  draw(a);
  draw(a);
  StateWriter w;
  a.save_state(w);
  StateReader r(w.bytes(), "random.state");
  b.load_state(r);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(at::equal(draw(a), draw(b)));
  // A state of another descriptor is refused.
  RandomPolicy other(Descriptor::parse("random:rate=0.25,seed=3"), 6, 0);
  StateReader r2(w.bytes(), "random.state");
  EXPECT_THROW(other.load_state(r2), Error);
}

TEST(FlopCounterState, RoundTripsEveryCount) {
  FlopCounter c;
  c.add_matmul(0, OpGroup::attn_proj, 3, 4, 5);
  c.add_attention(1, 2, 8, 100, 55);
  c.add(FlopCounter::kNoLayer, OpGroup::lookup, 17);
  const FlopCounter d = FlopCounter::from_flat(c.to_flat());
  EXPECT_EQ(d.to_flat(), c.to_flat());
  EXPECT_EQ(d.total(AttnConvention::dense), c.total(AttnConvention::dense));
  EXPECT_EQ(d.total(AttnConvention::causal), c.total(AttnConvention::causal));
  std::vector<int64_t> bad = c.to_flat();
  bad.pop_back();
  EXPECT_THROW(FlopCounter::from_flat(bad), Error);
}

}  // namespace
}  // namespace semskip
