// The cascade descriptor (skip/cascade_policy.h): its canonical form, the segments it names,
// the refusals of bad segment lists, and a two-segment step on hand-made states whose keys,
// skips and updates are known.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "metrics/flop_counter.h"
#include "policy_test_env.h"
#include "skip/cascade_policy.h"
#include "skip/state_io.h"

using namespace semskip;

namespace {

PolicyEnv env(int64_t n_layers = 10, int64_t hidden = 8) { return test::policy_env(n_layers, hidden, 64); }

StepContext ctx_of(int64_t S, int64_t n_layers, int64_t hidden) {
  return StepContext(n_layers, hidden, at::ones({1, S}, at::kBool), {0}, true);
}

// The refusal of descriptor d, or "" when it is accepted.
std::string refusal(const std::string& d, const PolicyEnv& e = env()) {
  try {
    make_policy(d, e);
  } catch (const Error& err) {
    return err.what();
  }
  return "";
}

std::vector<std::string> texts(const std::vector<Descriptor>& ds) {
  std::vector<std::string> out;
  for (const Descriptor& d : ds) out.push_back(d.text());
  return out;
}

}  // namespace

TEST(Cascade, CanonicalFormAndItsSegments) {
  const Descriptor d = Descriptor::parse("cascade:tau=0.9850+0.95,target=mlp,cap=8192+4096,r=7+9,p=1+7,kdim=4,proj=pca");
  EXPECT_EQ(d.text(), "cascade:p=1+7,r=7+9,tau=0.985+0.95,target=mlp,proj=pca,kdim=4,cap=8192+4096");
  EXPECT_EQ(texts(CascadePolicy::segment_descriptors(d, 10)),
            (std::vector<std::string>{"residual:p=1,r=7,tau=0.985,target=mlp,proj=pca,kdim=4,cap=8192",
                                      "residual:p=7,r=9,tau=0.95,target=mlp,proj=pca,kdim=4,cap=4096"}));
  const auto pol = make_policy(d.text(), env());
  EXPECT_EQ(pol->describe(), d.text());
  EXPECT_EQ(pol->index_descriptor(), "torch:flat");
  EXPECT_TRUE(pol->needs_calibration());  // PCA keys
  EXPECT_FALSE(pol->skips_routed_only());
  const auto& c = dynamic_cast<const CascadePolicy&>(*pol);
  ASSERT_EQ(c.n_segments(), 2);
  EXPECT_EQ(c.segment(0).describe(), "residual:p=1,r=7,tau=0.985,target=mlp,proj=pca,kdim=4,cap=8192");
  EXPECT_EQ(c.segment(1).probe(), 7);
  EXPECT_EQ(c.segment(1).resume(), 9);
  EXPECT_EQ(pol->cache_stats().capacity, 8192 + 4096);
  EXPECT_EQ(pol->cache_stats().key_dim, 4);
  // The MLP outputs are wanted where a segment replaces them: 2..7 and 8..9.
  for (int64_t l = 0; l < 10; ++l) EXPECT_EQ(pol->wants_mlp_out(l), l >= 2) << l;
  // One segment.
  EXPECT_EQ(texts(CascadePolicy::segment_descriptors(Descriptor::parse("cascade:p=2,r=5,tau=0.9,kv=mask"), 10)),
            std::vector<std::string>{"residual:p=2,r=5,tau=0.9,kv=mask"});
  EXPECT_EQ(make_policy("cascade:p=2,r=5,tau=0.9,kv=mask", env())->kv_mode(), KvMode::mask);
}

TEST(Cascade, RefusesBadSegmentListsNamingTheProblem) {
  const auto expect_refused = [](const std::string& d, const std::string& says) {
    const std::string why = refusal(d);
    EXPECT_NE(why.find(says), std::string::npos) << d << "\n  refused with: " << (why.empty() ? "(accepted)" : why);
  };
  expect_refused("cascade:p=1+3,r=4+6,tau=0.9+0.9",
                 "segments 1 (p=1, r=4) and 2 (p=3, r=6) overlap or are out of order: each segment must probe at or "
                 "after the previous one's resume layer (p2 ≥ r1)");
  expect_refused("cascade:p=5+1,r=7+3,tau=0.9+0.9", "segments 1 (p=5, r=7) and 2 (p=1, r=3) overlap or are out of order");
  expect_refused("cascade:p=1+4+6,r=3+6,tau=0.9", "p and r give one value per segment, joined by '+': p has 3 "
                 "value(s), r 2");
  expect_refused("cascade:p=1+5,r=4,tau=0.9+0.9", "p has 2 value(s), r 1");
  expect_refused("cascade:p=1+5,r=4+8,tau=0.9+0.9+0.9", "tau takes one value for every segment or one per segment "
                 "(2), not 3");
  expect_refused("cascade:p=1+5,r=4+12,tau=0.9+0.9",
                 "segment 2 (p=5, r=12) is not a span of the model's layers: need 0 ≤ p < r ≤ 9 (the last layer)");
  expect_refused("cascade:p=-1+5,r=4+8,tau=0.9+0.9", "segment 1 (p=-1, r=4) is not a span of the model's layers");
  expect_refused("cascade:p=3+5,r=3+8,tau=0.9+0.9", "segment 1 (p=3, r=3) is not a span of the model's layers");
  expect_refused("cascade:p=1+5,r=4+8,tau=0.9+0.9,cap=1+2+3",
                 "cap takes one value for every segment or one per segment (2), not 3");
  expect_refused("cascade:p=1+5,r=4+8,tau=0.9+0.9,target=mlp+block",
                 "target applies to every segment alike (one value, not 2)");
  expect_refused("cascade:p=1+5,r=4+8,tau=0.9+0.9,kv=mask+propagate", "kv applies to every segment alike");
  expect_refused("cascade:p=1+5,r=4+8", "'tau' is required (one value for every segment or one per segment");
  expect_refused("cascade:r=4+8,tau=0.9", "'p' is required (one value per segment, joined by '+')");
  expect_refused("cascade:p=1+5,r=4+8,tau=0.9+0.9,layers=2", "unknown key 'layers'");
  // A segment's own refusal names the cascade, the segment and the residual descriptor.
  expect_refused("cascade:p=1+5,r=4+8,tau=0.9+2", "policy descriptor 'cascade:p=1+5,r=4+8,tau=0.9+2', segment 2: "
                 "policy descriptor 'residual:p=5,r=8,tau=2': tau must be in [-1, 1]");
  expect_refused("cascade:p=1+5,r=4+8,tau=0.9+0.9,kdim=4", "segment 1: policy descriptor 'residual:p=1,r=4,tau=0.9,kdim=4': "
                 "kdim needs a projection");
  // Adjacent segments (p2 = r1) and the last layer are accepted.
  EXPECT_EQ(refusal("cascade:p=1+4,r=4+9,tau=0.9+0.9"), "");
  EXPECT_EQ(refusal("cascade:p=0+1+2,r=1+2+9,tau=0.9+0.8+0.7,k=2,spread=0.5+0.6+0.7"), "");
}

// Two block segments on hand-made states, p=0,r=1 and p=1,r=2 of a 4-layer model: in the
// second step both hit; the first's update lands before block 2, so the second's key is the
// state entering block 2 (h after block 1, which the hit skipped, plus the first's update),
// which is what the first step stored there.
TEST(Cascade, ADeeperSegmentKeysOnTheStateAnEarlierHitLeft) {
  const int64_t L = 4, d = 8;
  auto pol = make_policy("cascade:p=0+1,r=1+2,tau=0.99", env(L, d));
  at::Tensor h0 = at::randn({1, 3, d}), h1 = h0 + at::randn({1, 3, d}), h2 = h1 + at::randn({1, 3, d});
  FlopCounter f;
  // Step 1: empty caches, all miss; the first stores h1 − h0 under h0, the second h2 − h1 under h1.
  StepContext c1 = ctx_of(3, L, d);
  c1.flops = &f;
  pol->begin_step(c1);
  pol->after_layer(0, h0, c1);
  pol->after_layer(1, h1, c1);
  pol->after_layer(2, h2, c1);
  pol->end_step(c1);
  EXPECT_EQ(pol->cache_stats().insertions, 6);
  // Step 2: the first hits, skips block 1 (the identity: after it the state is still h0) and
  // schedules h1 − h0 before block 2; the second keys on h0 + (h1 − h0) = h1, hits, skips block
  // 2 and schedules h2 − h1 before block 3.
  StepContext c2 = ctx_of(3, L, d);
  c2.flops = &f;
  pol->begin_step(c2);
  pol->after_layer(0, h0, c2);
  EXPECT_TRUE(c2.skip_block(1).all().item<bool>());
  EXPECT_TRUE(at::allclose(c2.jump(2, h0.options()), h1 - h0, 1e-5, 1e-6));
  pol->after_layer(1, h0, c2);  // block 1 skipped: its output is its input
  EXPECT_TRUE(c2.skip_block(2).all().item<bool>());
  EXPECT_TRUE(at::allclose(c2.jump(3, h0.options()), h2 - h1, 1e-5, 1e-6));
  pol->after_layer(2, h1, c2);
  pol->end_step(c2);
  const auto& c = dynamic_cast<const CascadePolicy&>(*pol);
  EXPECT_EQ(c.segment(0).cache_stats().hits, 3);
  EXPECT_EQ(c.segment(1).cache_stats().hits, 3);
  EXPECT_EQ(pol->cache_stats().hits, 6);
  EXPECT_EQ(pol->cache_stats().lookups, 12);
  EXPECT_EQ(pol->cache_stats().insertions, 6);  // hits are not inserted
  // Each segment charges its own probe layer, the same for both here (3 queries against 3 keys).
  EXPECT_GT(f.by_layer_overhead(0), 0);
  EXPECT_EQ(f.by_layer_overhead(0), f.by_layer_overhead(1));
}

// Two segments whose updates land before the same block: p=1,r=2 and p=2,r=3 of a 4-layer
// model. The first's update lands before block 3 (p + 2); the second's, p + 1 being the last
// layer, before block 3 too: both are applied.
TEST(Cascade, UpdatesLandingBeforeTheSameBlockAddUp) {
  const int64_t L = 4, d = 8;
  auto pol = make_policy("cascade:p=1+2,r=2+3,tau=0.99", env(L, d));
  at::Tensor h1 = at::randn({1, 2, d}), h2 = h1 + at::randn({1, 2, d}), h3 = h2 + at::randn({1, 2, d});
  for (int pass = 0; pass < 2; ++pass) {
    StepContext c = ctx_of(2, L, d);
    pol->begin_step(c);
    pol->after_layer(1, h1, c);
    pol->after_layer(2, pass == 0 ? h2 : h1, c);  // a hit skips block 2: its output is h1
    if (pass == 1) {
      EXPECT_TRUE(c.skip_block(2).all().item<bool>());
      EXPECT_TRUE(c.skip_block(3).all().item<bool>());
      EXPECT_TRUE(at::allclose(c.jump(3, h1.options()), h3 - h1, 1e-5, 1e-5));
    }
    pol->after_layer(3, pass == 0 ? h3 : h1 + c.jump(3, h1.options()), c);
    pol->end_step(c);
  }
  EXPECT_EQ(pol->cache_stats().hits, 4);
}

TEST(Cascade, StateRoundTripsSegmentBySegment) {
  const int64_t L = 6, d = 8;
  const std::string desc = "cascade:p=0+2,r=2+4,tau=0.9,cap=3+5";
  auto a = make_policy(desc, env(L, d));
  at::Tensor h = at::randn({1, 4, d});
  StepContext c = ctx_of(4, L, d);
  a->begin_step(c);
  for (int64_t l = 0; l < L; ++l) a->after_layer(l, h + static_cast<double>(l), c);
  a->end_step(c);
  StateWriter w;
  a->save_state(w);
  auto b = make_policy(desc, env(L, d));
  StateReader r(w.bytes(), "state");
  b->load_state(r);
  EXPECT_EQ(b->cache_stats().size, a->cache_stats().size);
  EXPECT_EQ(b->cache_stats().size, 3 + 4);
  auto other = make_policy("cascade:p=0+2,r=2+4,tau=0.9,cap=3+6", env(L, d));
  StateReader r2(w.bytes(), "state");
  EXPECT_THROW(other->load_state(r2), Error);
}
