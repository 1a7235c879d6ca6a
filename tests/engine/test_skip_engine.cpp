// The skipping layer loop against independent paths: Transformer::forward (with hooks that
// turn a block into the identity), greedy generation of the model, and the fixtures.
#include <gtest/gtest.h>

#include "../model/model_test_util.h"
#include "engine/skip_engine.h"
#include "metrics/flop_counter.h"
#include "model/generation.h"
#include "skip/baseline_policies.h"
#include "skip/residual_policy.h"

using namespace semskip;
using namespace semskip::test;

namespace {

at::Tensor fixture_ids(const std::string& name, int i) {
  SafetensorsFile ref(fixture_dir(name) + "/reference.safetensors");
  return ref.tensor("ids_" + std::to_string(i)).clone();  // int64 [T]
}

StepContext prefill_ctx(const Transformer& m, const at::Tensor& valid) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < valid.size(0); ++b) rows.push_back(b);
  return StepContext(m.config().n_layers, m.config().hidden_size, valid, rows, true);
}

PolicyEnv env_of(const Transformer& m) {
  PolicyEnv e;
  e.n_layers = m.config().n_layers;
  e.hidden = m.config().hidden_size;
  e.index_descriptor = "torch:flat";
  e.capacity = 1024;
  return e;
}

class EnginePerFixture : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(EnginePerFixture, WithoutSkipsEqualsTheModelForwardAndItsFlops) {
  const Transformer m = load_fixture(GetParam());
  const at::Tensor ids = fixture_ids(GetParam(), 1).unsqueeze(0);  // [1, 29]
  FlopCounter f_model, f_engine;
  ForwardOptions fo;
  fo.flops = &f_model;
  const at::Tensor ref = m.forward(ids, fo);
  SkipEngine engine(m);
  NonePolicy none(Descriptor::parse("none"));
  StepContext ctx = prefill_ctx(m, at::ones(ids.sizes(), at::kBool));
  SkipKvCache kv = engine.make_cache(1, ids.size(1));
  const at::Tensor out = engine.step(ids, ctx, kv, none, &f_engine, nullptr);
  EXPECT_LT(rel_err(out, ref), 1e-5);
  SafetensorsFile golden(fixture_dir(GetParam()) + "/reference.safetensors");
  EXPECT_LT(rel_err(out[0], golden.tensor("logits_1")), 1e-4);
  for (AttnConvention c : {AttnConvention::causal, AttnConvention::dense}) EXPECT_EQ(f_engine.total(c), f_model.total(c));
}

TEST_P(EnginePerFixture, DecodeStepsReproduceGreedyGeneration) {
  const Transformer m = load_fixture(GetParam());
  const at::Tensor ids = fixture_ids(GetParam(), 0).unsqueeze(0);
  SafetensorsFile golden(fixture_dir(GetParam()) + "/reference.safetensors");
  const std::vector<int64_t> want = to_vector(golden.tensor("greedy_0"));
  SkipEngine engine(m);
  NonePolicy none(Descriptor::parse("none"));
  SkipKvCache kv = engine.make_cache(1, 4);  // grows as tokens come
  StepContext ctx = prefill_ctx(m, at::ones(ids.sizes(), at::kBool));
  at::Tensor logits = engine.step(ids, ctx, kv, none, nullptr, nullptr);
  std::vector<int64_t> got;
  at::Tensor next = logits[0][-1].argmax();
  while (got.size() < want.size()) {
    got.push_back(next.item<int64_t>());
    StepContext dc(m.config().n_layers, m.config().hidden_size, at::ones({1, 1}, at::kBool), {0}, false);
    next = engine.step(next.view({1, 1}), dc, kv, none, nullptr, nullptr)[0][0].argmax();
  }
  EXPECT_EQ(got, want);
}

TEST_P(EnginePerFixture, LeftPaddedBatchEqualsSequencesOneByOne) {
  const Transformer m = load_fixture(GetParam());
  const at::Tensor a = fixture_ids(GetParam(), 0), b = fixture_ids(GetParam(), 1);  // 13, 29 tokens
  const int64_t S = b.size(0), pad = S - a.size(0);
  at::Tensor ids = at::zeros({2, S}, at::kLong);
  at::Tensor valid = at::zeros({2, S}, at::kBool);
  ids[0].slice(0, pad, S).copy_(a);
  valid[0].slice(0, pad, S).fill_(true);
  ids[1].copy_(b);
  valid[1].fill_(true);
  SkipEngine engine(m);
  NonePolicy none(Descriptor::parse("none"));
  StepContext ctx = prefill_ctx(m, valid);
  SkipKvCache kv = engine.make_cache(2, S);
  const at::Tensor out = engine.step(ids, ctx, kv, none, nullptr, nullptr);
  EXPECT_LT(rel_err(out[0].slice(0, pad, S), m.forward(a.unsqueeze(0))[0]), 1e-5);
  EXPECT_LT(rel_err(out[1], m.forward(b.unsqueeze(0))[0]), 1e-5);
}

TEST_P(EnginePerFixture, StaticSkipEqualsIdentityBlocksThroughHooks) {
  const Transformer m = load_fixture(GetParam());
  const at::Tensor ids = fixture_ids(GetParam(), 1).unsqueeze(0);
  const int64_t skipped = 1;
  // Independent path: the model's own forward, block `skipped` made an identity by a hook
  // that returns its input as its output.
  at::Tensor resid_pre;
  HookSet hooks;
  hooks.add(skipped, HookPoint::resid_pre, [&](const at::Tensor& x, const HookSite&) {
    resid_pre = x.clone();
    return std::optional<at::Tensor>();
  });
  hooks.add(skipped, HookPoint::resid_post,
            [&](const at::Tensor&, const HookSite&) { return std::optional<at::Tensor>(resid_pre); });
  ForwardOptions fo;
  fo.hooks = &hooks;
  const at::Tensor ref = m.forward(ids, fo);
  SkipEngine engine(m);
  StaticPolicy policy(Descriptor::parse("static:layers=1"), m.config().n_layers);
  StepContext ctx = prefill_ctx(m, at::ones(ids.sizes(), at::kBool));
  SkipKvCache kv = engine.make_cache(1, ids.size(1));
  FlopCounter f;
  LayerCounts counts(m.config().n_layers);
  const at::Tensor out = engine.step(ids, ctx, kv, policy, &f, &counts);
  EXPECT_LT(rel_err(out, ref), 1e-5);
  EXPECT_EQ(counts.n_block_run[skipped], 0);
  EXPECT_EQ(counts.n_block_skip[skipped], ids.size(1));
  EXPECT_EQ(f.by_layer(static_cast<int>(skipped)), 0);  // no work, no K/V propagation
  EXPECT_GT(f.by_layer(0), 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EnginePerFixture, ::testing::ValuesIn(fixture_names()),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) c = (c == '-') ? '_' : c;
                           return n;
                         });

// A request seen before is replayed from the cache: its second pass hits at every token,
// skips blocks p+1..r entirely and still produces the full model's logits.
TEST(ResidualEngine, RepeatedRequestIsReplayedExactlyFromTheCache) {
  for (const char* target : {"block", "mlp"}) {
    const Transformer m = Transformer::load(embedded_model("tiny-dense"), ModelOptions{});
    const at::Tensor ids = fixture_ids("qwen2-tied", 1).remainder(m.config().vocab_size).unsqueeze(0);
    const int64_t p = 2, r = 6, L = m.config().n_layers;
    ResidualPolicy policy(Descriptor::parse(fmt::format("residual:p={},r={},tau=0.999,target={}", p, r, target)),
                          env_of(m), L, m.config().hidden_size);
    SkipEngine engine(m);
    const at::Tensor full = m.forward(ids);
    at::Tensor out[2];
    FlopCounter f[2];
    LayerCounts counts[2] = {LayerCounts(L), LayerCounts(L)};
    for (int pass = 0; pass < 2; ++pass) {
      StepContext ctx = prefill_ctx(m, at::ones(ids.sizes(), at::kBool));
      ctx.flops = &f[pass];
      SkipKvCache kv = engine.make_cache(1, ids.size(1));
      out[pass] = engine.step(ids, ctx, kv, policy, &f[pass], &counts[pass]);
    }
    const int64_t T = ids.size(1);
    EXPECT_LT(rel_err(out[0], full), 1e-5) << target;  // empty cache: all misses
    EXPECT_LT(rel_err(out[1], full), 1e-4) << target;  // all hits, replayed updates
    EXPECT_EQ(policy.cache_stats().hits, T) << target;
    EXPECT_EQ(policy.cache_stats().insertions, T) << target;
    for (int64_t l = p + 1; l <= r; ++l) {
      const int li = static_cast<int>(l);
      if (std::string(target) == "block") {
        EXPECT_EQ(counts[1].n_block_skip[l], T);
        // kv=propagate: only the K/V projections of the skipped tokens are charged.
        EXPECT_EQ(f[1].by_layer(li), f[1].by_group(OpGroup::kv_propagate) / (r - p));
      } else {
        EXPECT_EQ(counts[1].n_mlp_skip[l], T);
        EXPECT_EQ(counts[1].n_block_run[l], T);
      }
    }
    EXPECT_LT(f[1].total_model(), f[0].total_model()) << target;
    // Exact flat lookup over T stored keys of width d: 2·d·T per query, T queries.
    EXPECT_EQ(f[1].by_group(OpGroup::lookup), T * 2 * m.config().hidden_size * T) << target;
  }
}
