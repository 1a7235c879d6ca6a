// Sync rules (skip/sync_rule.h), the LocalCache's tick order, and what a lockstep run relies
// on in one process: a step of zero sequences computes and counts nothing, and a policy's
// refused hits run as misses.
#include <gtest/gtest.h>

#include "../model/model_test_util.h"
#include "core/error.h"
#include "engine/skip_engine.h"
#include "engine/step_batch.h"
#include "metrics/flop_counter.h"
#include "skip/local_cache.h"
#include "skip/residual_policy.h"
#include "skip/sync_rule.h"

using namespace semskip;
using namespace semskip::test;

namespace {

PolicyEnv env_of(int64_t n_layers, int64_t hidden, const std::string& sync = "token") {
  PolicyEnv e;
  e.n_layers = n_layers;
  e.hidden = hidden;
  e.index_descriptor = "torch:flat";
  e.capacity = 64;
  e.sync = SyncRule::parse(sync, "--sync");
  return e;
}

StepContext ctx_of(int64_t B, int64_t S, int64_t L, int64_t d) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < B; ++b) rows.push_back(b);
  return StepContext(L, d, at::ones({B, S}, at::kBool), rows, true);
}

at::Tensor unit(int64_t i, int64_t d) {
  at::Tensor x = at::zeros({1, d});
  x[0][i] = 1.0f;
  return x;
}

}  // namespace

TEST(SyncRule, ParsesDescribesAndRefuses) {
  EXPECT_EQ(SyncRule::parse("token", "--sync").mode, SyncMode::token);
  const SyncRule b = SyncRule::parse("batch:0.25", "--sync");
  EXPECT_EQ(b.mode, SyncMode::batch);
  EXPECT_DOUBLE_EQ(b.fraction, 0.25);
  const SyncRule g = SyncRule::parse("global", "--sync");
  EXPECT_EQ(g.mode, SyncMode::global);
  EXPECT_DOUBLE_EQ(g.fraction, 0.5);
  EXPECT_FALSE(g.over_group);
  const SyncRule gg = SyncRule::parse("global:group", "--sync");
  EXPECT_TRUE(gg.mode == SyncMode::global && gg.over_group);
  EXPECT_DOUBLE_EQ(gg.fraction, 0.5);
  EXPECT_EQ(gg.describe(), "global:group:0.5");
  const SyncRule gq = SyncRule::parse("global:group:0.25", "--sync");
  EXPECT_TRUE(gq.over_group);
  EXPECT_DOUBLE_EQ(gq.fraction, 0.25);
  for (const char* s : {"token", "batch:0.25", "global:0.5", "global:1", "batch:0", "global:group:0.75"})
    EXPECT_EQ(SyncRule::parse(SyncRule::parse(s, "x").describe(), "x").describe(), SyncRule::parse(s, "x").describe());
  for (const char* s : {"batch", "batch:1.5", "global:-0.1", "tokens", "batch:x", "global:group:2", "global:groups",
                        "global:group:"})
    EXPECT_THROW(SyncRule::parse(s, "--sync"), Error) << s;
}

TEST(SyncRule, BatchAppliesIffTheFractionHitsAndGlobalAloneIsTheSame) {
  const SyncRule batch = SyncRule::parse("batch:0.5", "x");
  EXPECT_TRUE(decide_sync(SyncRule{}, nullptr, 6, 1).apply);  // token: always
  EXPECT_TRUE(decide_sync(batch, nullptr, 6, 3).apply);
  EXPECT_FALSE(decide_sync(batch, nullptr, 6, 2).apply);
  EXPECT_FALSE(decide_sync(batch, nullptr, 0, 0).apply);  // nothing looked up: nothing to apply
  EXPECT_FALSE(decide_sync(batch, nullptr, 6, 6).all_skip);  // batch never claims to know the others
  const SyncRule global = SyncRule::parse("global:0.5", "x");
  EXPECT_FALSE(decide_sync(global, nullptr, 6, 2).apply);
  const SyncDecision all = decide_sync(global, nullptr, 6, 6);
  EXPECT_TRUE(all.apply && all.all_skip);
}

TEST(LocalCache, UsesAreTicksInAscendingOrderAndMissingHandlesAreZero) {
  const int64_t d = 4;
  for (bool e1_last : {true, false}) {
    LocalCache c(d, 2, [] {
      CacheOptions o;
      o.index_descriptor = "torch:flat";
      o.capacity = 2;
      return o;
    }());
    c.insert(at::cat({unit(0, d), unit(1, d)}), at::tensor({1.0f, 1.0f, 2.0f, 2.0f}).view({2, 2}));
    const SkipCache::Match m = c.search(at::cat({unit(0, d), unit(1, d)}), 1);
    const at::Tensor handles = at::cat({m.handle.select(1, 0), at::full({1}, -1, at::kLong)});  // e0, e1, none
    // Tick g: the entry with the larger g is used later, so the other is the LRU victim.
    const at::Tensor use = e1_last ? at::tensor({0, 1, -1}, at::kLong) : at::tensor({1, 0, -1}, at::kLong);
    const at::Tensor v = c.fetch(handles, use, at::kCPU);
    EXPECT_TRUE(at::equal(v, at::tensor({1.0f, 1.0f, 2.0f, 2.0f, 0.0f, 0.0f}).view({3, 2})));
    c.insert(unit(2, d), at::zeros({1, 2}));
    const int64_t kept = e1_last ? 1 : 0, evicted = e1_last ? 0 : 1;
    EXPECT_GT(c.search(unit(kept, d), 1).similarity[0][0].item<float>(), 0.99f);
    EXPECT_LT(c.search(unit(evicted, d), 1).similarity[0][0].item<float>(), 0.5f);
  }
}

TEST(ResidualPolicy, RefusedHitsRunAsMissesAndAreCountedAsVetoed) {
  const int64_t L = 6, d = 8;
  const at::Tensor hp = at::randn({1, 4, d});
  // Step 1 stores tokens 0 and 1; step 2 looks up tokens 0..3: 2 of 4 match, under 0.75.
  ResidualPolicy q(Descriptor::parse("residual:p=1,r=3,tau=0.99"), env_of(L, d, "batch:0.75"), L, d);
  StepContext s1 = ctx_of(1, 2, L, d);
  q.begin_step(s1);
  q.after_layer(1, hp.slice(1, 0, 2), s1);
  q.after_layer(3, hp.slice(1, 0, 2) + 1.0, s1);
  q.end_step(s1);
  ASSERT_EQ(q.cache_stats().insertions, 2);
  StepContext s2 = ctx_of(1, 4, L, d);
  q.begin_step(s2);
  q.after_layer(1, hp, s2);
  EXPECT_FALSE(s2.skip_block_or_null(2).defined());  // refused: nobody skips
  q.after_layer(3, hp + 1.0, s2);
  q.end_step(s2);
  EXPECT_EQ(q.cache_stats().hits, 0);
  EXPECT_EQ(q.cache_stats().vetoed, 2);
  EXPECT_EQ(q.cache_stats().lookups, 6);
  EXPECT_EQ(q.cache_stats().insertions, 6);  // the refused matches were offered like misses
}

TEST(SkipEngine, AStepOfNoSequencesComputesAndCountsNothing) {
  const Transformer m = Transformer::load(embedded_model("tiny-dense"), ModelOptions{});
  const ModelConfig& c = m.config();
  SkipEngine engine(m);
  ResidualPolicy policy(Descriptor::parse("residual:p=2,r=5,tau=0.9"), env_of(c.n_layers, c.hidden_size),
                        c.n_layers, c.hidden_size);
  const StepBatch empty = empty_batch(m.device());
  StepContext ctx(c.n_layers, c.hidden_size, empty.valid, {}, true);
  FlopCounter f;
  ctx.flops = &f;
  LayerCounts counts(c.n_layers);
  SkipKvCache kv = engine.make_cache(0, 1);
  const at::Tensor logits = engine.step(empty.ids, ctx, kv, policy, &f, &counts);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{0, 1, c.vocab_size}));
  EXPECT_EQ(f.total(), 0);
  EXPECT_EQ(counts.n_block_run[0], 0);
  EXPECT_EQ(policy.cache_stats().lookups, 0);
  EXPECT_EQ(policy.cache_stats().insertions, 0);
}
