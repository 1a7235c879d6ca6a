#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "metrics/accuracy.h"
#include "skip/baseline_policies.h"
#include "skip/block_influence.h"
#include "skip/plan_policy.h"
#include "skip/residual_policy.h"

using namespace semskip;

namespace {

PolicyEnv env(int64_t n_layers = 6, int64_t hidden = 8) {
  PolicyEnv e;
  e.n_layers = n_layers;
  e.hidden = hidden;
  e.index_descriptor = "torch:flat";
  e.capacity = 64;
  return e;
}

StepContext ctx_of(int64_t B, int64_t S, int64_t n_layers = 6, int64_t hidden = 8) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < B; ++b) rows.push_back(b);
  return StepContext(n_layers, hidden, at::ones({B, S}, at::kBool), rows, true);
}

}  // namespace

TEST(BlockInfluence, MatchesHandComputedCosines) {
  // Two tokens, two blocks. Block 0 rotates token 0 by 90° (BI 1) and leaves token 1 (BI 0);
  // block 1 leaves both unchanged.
  at::Tensor s = at::zeros({3, 2, 2});
  s[0][0] = at::tensor({1.0f, 0.0f});
  s[0][1] = at::tensor({0.0f, 2.0f});
  s[1][0] = at::tensor({0.0f, 1.0f});
  s[1][1] = at::tensor({0.0f, 2.0f});
  s[2] = s[1];
  at::Tensor bi = block_influence(s);
  EXPECT_NEAR(bi[0].item<double>(), 0.5, 1e-12);
  EXPECT_NEAR(bi[1].item<double>(), 0.0, 1e-12);
  at::Tensor rel = relative_update(s);
  EXPECT_NEAR(rel[0][0].item<float>(), std::sqrt(2.0f), 1e-6);
  EXPECT_NEAR(rel[1][1].item<float>(), 0.0f, 1e-6);
}

TEST(Policies, FactoryBuildsEveryKindAndRejectsBadDescriptors) {
  PolicyEnv e = env();
  for (const char* d : {"none", "static:layers=2+3", "static:k=2", "random:rate=0.3", "oracle:eps=0.1",
                        "residual:p=1,r=3,tau=0.9", "residual:p=1,r=3,tau=0.9,target=mlp,k=2,proj=random,kdim=4",
                        "plan:p=1,beta=0.1,tau=0.9"}) {
    EXPECT_EQ(make_policy(d, e)->describe(), d);
  }
  for (const char* d : {"bogus", "static", "static:k=2,layers=1", "static:layers=9", "static:layers=2+2",
                        "random:rate=2", "residual:p=3,r=3,tau=0.9", "residual:p=1,r=6,tau=0.9",
                        "residual:p=1,r=3", "residual:p=1,r=3,tau=0.9,target=mlp,kv=mask",
                        "residual:p=1,r=3,tau=0.9,kdim=4", "residual:p=1,r=3,tau=0.9,evict=random",
                        "plan:p=5,beta=0.1,tau=0.9", "none:x=1"}) {
    EXPECT_THROW(make_policy(d, e), Error) << d;
  }
}

TEST(Policies, StaticKPicksLowestBlockInfluence) {
  // Calibration states whose blocks 1 and 4 change nothing.
  at::Tensor s = at::randn({7, 10, 8});
  s[2] = s[1];
  s[5] = s[4];
  StaticPolicy p(Descriptor::parse("static:k=2"), 6);
  EXPECT_TRUE(p.needs_calibration());
  p.calibrate({s});
  EXPECT_EQ(p.layers(), (std::vector<int64_t>{1, 4}));
  StepContext ctx = ctx_of(2, 3);
  p.begin_step(ctx);
  EXPECT_TRUE(ctx.skip_block(1).all().item<bool>());
  EXPECT_FALSE(ctx.skip_block_or_null(2).defined());
  EXPECT_TRUE(p.skips_layer_everywhere(4));
  EXPECT_FALSE(p.skips_layer_everywhere(0));
}

TEST(Policies, RandomSkipsAtTheRateAndIsSeeded) {
  RandomPolicy a(Descriptor::parse("random:rate=0.25,layers=1+2"), 6, 3);
  RandomPolicy b(Descriptor::parse("random:rate=0.25,layers=1+2"), 6, 3);
  StepContext ca = ctx_of(4, 1000), cb = ctx_of(4, 1000);
  a.begin_step(ca);
  b.begin_step(cb);
  EXPECT_TRUE(at::equal(ca.skip_block(1), cb.skip_block(1)));
  const double rate = ca.skip_block(1).to(at::kFloat).mean().item<double>();
  EXPECT_NEAR(rate, 0.25, 0.02);
  EXPECT_FALSE(ca.skip_block_or_null(3).defined());
}

TEST(Policies, OracleSkipsWhereTheFullUpdateIsSmall) {
  OraclePolicy p(Descriptor::parse("oracle:eps=0.5,layers=0+1"), 2);
  StepContext ctx = ctx_of(1, 2, 2, 2);
  EXPECT_THROW(p.begin_step(ctx), Error);  // needs the full states
  at::Tensor s = at::zeros({3, 1, 2, 2});
  s[0][0][0] = at::tensor({1.0f, 0.0f});
  s[0][0][1] = at::tensor({1.0f, 0.0f});
  s[1][0][0] = at::tensor({1.1f, 0.0f});  // token 0: small update at block 0
  s[1][0][1] = at::tensor({3.0f, 0.0f});  // token 1: large
  s[2] = s[1];                            // block 1 changes nothing
  ctx.full_states = s;
  p.begin_step(ctx);
  EXPECT_TRUE(at::equal(ctx.skip_block(0), at::tensor({1, 0}, at::kInt).view({1, 2}).to(at::kBool)));
  EXPECT_TRUE(ctx.skip_block(1).all().item<bool>());
}

TEST(Policies, ResidualHitsRepeatedStatesAndReplaysTheirUpdate) {
  const int64_t L = 6, d = 8;
  ResidualPolicy p(Descriptor::parse("residual:p=1,r=3,tau=0.99"), env(L, d), L, d);
  at::Tensor hp = at::randn({1, 4, d});
  at::Tensor hr = hp + at::randn({1, 4, d});
  // Step 1: empty cache, every token misses; the update h_r − h_p is stored.
  StepContext c1 = ctx_of(1, 4, L, d);
  p.begin_step(c1);
  p.after_layer(1, hp, c1);
  EXPECT_FALSE(c1.skip_block_or_null(2).defined());
  p.after_layer(3, hr, c1);
  p.end_step(c1);
  EXPECT_EQ(p.cache_stats().insertions, 4);
  // Step 2: the same states hit; blocks 2..3 skipped, the jump before block 2 is the update.
  StepContext c2 = ctx_of(1, 4, L, d);
  p.begin_step(c2);
  p.after_layer(1, hp, c2);
  for (int64_t l : {2, 3}) EXPECT_TRUE(c2.skip_block(l).all().item<bool>());
  EXPECT_FALSE(c2.skip_block_or_null(4).defined());
  EXPECT_TRUE(at::allclose(c2.jump(2, hp.options()), hr - hp, 1e-5, 1e-6));
  p.end_step(c2);
  EXPECT_EQ(p.cache_stats().hits, 4);
  EXPECT_EQ(p.cache_stats().lookups, 8);
  EXPECT_EQ(p.cache_stats().insertions, 4);  // hits are not inserted
}

TEST(Policies, ResidualWithTwoNeighboursAveragesBySimilarity) {
  const int64_t L = 4, d = 4;
  ResidualPolicy p(Descriptor::parse("residual:p=0,r=1,tau=0.5,k=2"), env(L, d), L, d);
  at::Tensor hp = at::zeros({1, 2, d});
  hp[0][0][0] = 1.0f;                       // e0
  hp[0][1][0] = 1.0f, hp[0][1][1] = 1.0f;   // (e0 + e1)/√2 direction
  at::Tensor hr = hp.clone();
  hr[0][0][3] += 2.0f;                      // Δ0 = 2·e3
  hr[0][1][3] += 4.0f;                      // Δ1 = 4·e3
  StepContext c1 = ctx_of(1, 2, L, d);
  p.begin_step(c1);
  p.after_layer(0, hp, c1);
  p.after_layer(1, hr, c1);
  p.end_step(c1);
  // Query e0: similarities 1 and 1/√2, both ≥ 0.5: Δ = (1·2 + 0.7071·4) / 1.7071 along e3.
  at::Tensor q = at::zeros({1, 1, d});
  q[0][0][0] = 1.0f;
  StepContext c2 = ctx_of(1, 1, L, d);
  p.begin_step(c2);
  p.after_layer(0, q, c2);
  const double s = 1.0 / std::sqrt(2.0);
  EXPECT_NEAR(c2.jump(1, q.options())[0][0][3].item<float>(), (2.0 + s * 4.0) / (1.0 + s), 1e-5);
}

TEST(Policies, PlanCacheAppliesTheNeighboursPlanToTheWholeRequest) {
  const int64_t L = 4, d = 4;
  PlanPolicy p(Descriptor::parse("plan:p=0,beta=0.01,tau=0.9"), env(L, d), L, d);
  // A request whose blocks 1 and 3 change nothing, block 2 rotates everything.
  at::Tensor h0 = at::zeros({1, 3, d});
  h0.select(2, 0).fill_(1.0f);
  at::Tensor h2 = at::zeros({1, 3, d});
  h2.select(2, 1).fill_(1.0f);
  p.begin_request(0);
  StepContext c1 = ctx_of(1, 3, L, d);
  p.begin_step(c1);
  p.after_layer(0, h0, c1);
  p.after_layer(1, h0, c1);
  p.after_layer(2, h2, c1);
  p.after_layer(3, h2, c1);
  p.end_step(c1);
  EXPECT_EQ(p.cache_stats().insertions, 1);
  // A second request with the same pooled key gets plan {1, 3}, in prefill and in decode.
  p.begin_request(0);
  StepContext c2 = ctx_of(1, 3, L, d);
  p.begin_step(c2);
  p.after_layer(0, h0, c2);
  EXPECT_TRUE(c2.skip_block(1).all().item<bool>());
  EXPECT_FALSE(c2.skip_block_or_null(2).defined());
  EXPECT_TRUE(c2.skip_block(3).all().item<bool>());
  p.end_step(c2);
  StepContext dec(L, d, at::ones({1, 1}, at::kBool), {0}, false);
  p.begin_step(dec);
  EXPECT_TRUE(dec.skip_block(1).all().item<bool>());
  EXPECT_EQ(p.cache_stats().hits, 1);
}

TEST(Accuracy, HandComputedAgreementKlAndPerplexity) {
  // Position 0: identical distributions; position 1: argmax differs.
  at::Tensor full = at::log(at::tensor({0.5f, 0.25f, 0.25f, 0.2f, 0.6f, 0.2f}).view({2, 3}));
  at::Tensor skip = at::log(at::tensor({0.5f, 0.25f, 0.25f, 0.6f, 0.2f, 0.2f}).view({2, 3}));
  RequestAccuracy a = compare_logits(full, skip, at::tensor({1, -1}, at::kLong));
  EXPECT_EQ(a.n_positions, 2);
  EXPECT_EQ(a.n_top1_match, 1);
  const double kl1 = 0.2 * std::log(0.2 / 0.6) + 0.6 * std::log(0.6 / 0.2);
  EXPECT_NEAR(a.kl_sum, kl1, 1e-6);
  EXPECT_EQ(a.n_targets, 1);
  EXPECT_NEAR(a.nll_full_sum, -std::log(0.25), 1e-6);
  std::vector<RequestAccuracy> reqs = {a, a};
  AccuracySummary s = summarize_accuracy(reqs, 200, 1);
  EXPECT_NEAR(s.top1_agreement.value, 0.5, 1e-12);
  EXPECT_NEAR(s.top1_agreement.lo, 0.5, 1e-12);  // identical requests: no spread
  EXPECT_NEAR(s.ppl_full.value, 4.0, 1e-5);
  compare_generations({1, 2, 3, 4}, {1, 2, 9, 4}, a);
  EXPECT_EQ(a.matched_prefix, 2);
  EXPECT_FALSE(a.exact_match);
}

TEST(Accuracy, BootstrapIntervalCoversTheRatioAndWidensWithSpread) {
  std::vector<double> num = {1, 0, 1, 1, 0, 1, 0, 1, 1, 1}, den(10, 1.0);
  Interval i = bootstrap_ratio(num, den, 2000, 5);
  EXPECT_NEAR(i.value, 0.7, 1e-12);
  EXPECT_LT(i.lo, 0.7);
  EXPECT_GT(i.hi, 0.7);
  EXPECT_GE(i.lo, 0.3);
  EXPECT_LE(i.hi, 1.0);
}
