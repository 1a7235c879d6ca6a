// Non-finite values during a run (metrics/finite_check.h, StepFiniteGuard): a NaN that enters
// the residual stream of one sequence is an error naming the run, the first layer it left and
// that sequence's request, raised before the policy's end of step, so a semantic cache never
// receives it; the semantic cache refuses non-finite entries itself; a finite step is the
// same with the guard as without it.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "../model/model_test_util.h"
#include "../skip/policy_test_env.h"
#include "core/error.h"
#include "engine/skip_engine.h"
#include "metrics/finite_check.h"
#include "skip/baseline_policies.h"
#include "skip/residual_policy.h"
#include "skip/semantic_cache.h"

using namespace semskip;
using namespace semskip::test;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

Transformer load_tiny_dense() {
  ModelOptions o;
  o.dtype = DType::fp32;
  return Transformer::load(embedded_model("tiny-dense"), o);
}

// Two sequences of 6 tokens, no padding.
at::Tensor two_rows() { return at::arange(12, at::kLong).remainder(100).add(3).reshape({2, 6}); }

StepContext prefill_ctx(const Transformer& m, int64_t B, int64_t S) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < B; ++b) rows.push_back(b);
  return StepContext(m.config().n_layers, m.config().hidden_size, at::ones({B, S}, at::kBool), rows, true);
}

// A residual cache policy whose step adds NaN to row 1's residual stream before block
// `layer` (a jump, as a cache hit adds a cached update): what a poisoned weight or an
// overflow does, in one sequence and from one known layer on.
class NanJumpResidual : public ResidualPolicy {
 public:
  NanJumpResidual(const Transformer& m, int64_t layer)
      : ResidualPolicy(Descriptor::parse("residual:p=2,r=6,tau=0.99"), policy_env(m.config(), 1024),
                       m.config().n_layers, m.config().hidden_size),
        layer_(layer) {}
  void begin_step(StepContext& ctx) override {
    ResidualPolicy::begin_step(ctx);
    if (poison) ctx.jump(layer_, at::TensorOptions().dtype(at::kFloat))[1].fill_(kNaN);
  }
  bool poison = true;

 private:
  int64_t layer_;
};

}  // namespace

TEST(StepFiniteGuard, NamesTheFirstLayerAndTheRowsWithNonFiniteLogits) {
  const at::Tensor finite = at::ones({2, 3, 4});
  {
    StepFiniteGuard g(5, at::kCPU, "the full model", 7, {"0 (a.jsonl:1)", "1 (a.jsonl:2)"});
    for (int64_t l = 0; l < 5; ++l) g.fold_layer(l, finite);
    g.fold_logits(finite);
    EXPECT_NO_THROW(g.check(finite, true));
  }
  {
    StepFiniteGuard g(5, at::kCPU, "the full model", 7, {"0 (a.jsonl:1)", "1 (a.jsonl:2)"});
    at::Tensor h = finite.clone();
    h[1][2][3] = kNaN;
    at::Tensor logits = finite.clone();
    logits[1][0][0] = std::numeric_limits<float>::infinity();
    for (int64_t l = 0; l < 5; ++l) g.fold_layer(l, l >= 3 ? h : finite);
    g.fold_logits(logits);
    const std::string msg = error_of([&] { g.check(logits, true); });
    EXPECT_NE(msg.find("non-finite values (NaN or inf) in the full model at step 7 (prefill), first at the output "
                       "of layer 3 of 5; request: 1 (a.jsonl:2);"),
              std::string::npos)
        << msg;
  }
  {
    // Only the logits: a decode step, both rows named when the logits of both are bad.
    StepFiniteGuard g(2, at::kCPU, "policy 'static:k=1'", 0, {"4 (b:1)", "5 (b:2)"});
    g.fold_layer(0, finite);
    g.fold_layer(1, finite);
    const at::Tensor logits = at::full({2, 1, 4}, kNaN);
    g.fold_logits(logits);
    const std::string msg = error_of([&] { g.check(logits, false); });
    EXPECT_NE(msg.find("in policy 'static:k=1' at step 0 (a decode step), first in the logits; requests: 4 (b:1), "
                       "5 (b:2);"),
              std::string::npos)
        << msg;
  }
  // Integer tensors are finite by definition.
  StepFiniteGuard g(1, at::kCPU, "x", 0, {"0 (c:1)"});
  g.fold_layer(0, at::zeros({1, 2}, at::kLong));
  EXPECT_NO_THROW(g.check(at::Tensor(), true));
}

TEST(StepFiniteGuard, ANanInOneSequenceStopsTheStepBeforeTheCacheInsertsIt) {
  const Transformer m = load_tiny_dense();
  SkipEngine engine(m);
  const at::Tensor ids = two_rows();
  NanJumpResidual policy(m, 4);
  StepContext ctx = prefill_ctx(m, 2, 6);
  StepFiniteGuard guard(m.config().n_layers, m.device(), "policy 'residual'", 3,
                        {"10 (w.jsonl:11)", "11 (w.jsonl:12)"});
  ctx.finite = &guard;
  SkipKvCache kv = engine.make_cache(2, 6);
  const std::string msg = error_of([&] { engine.step(ids, ctx, kv, policy, nullptr, nullptr); });
  // Row 1 only: attention never mixes sequences, so row 0's logits stay finite.
  EXPECT_NE(msg.find("in policy 'residual' at step 3 (prefill), first at the output of layer 4 of 10; request: "
                     "11 (w.jsonl:12);"),
            std::string::npos)
      << msg;
  // The step's misses were never inserted.
  EXPECT_EQ(policy.cache_stats().insertions, 0);
  EXPECT_EQ(policy.cache_stats().size, 0);

  // The same policy on a finite step inserts as before: every token of both rows.
  policy.poison = false;
  StepContext ok_ctx = prefill_ctx(m, 2, 6);
  StepFiniteGuard ok_guard(m.config().n_layers, m.device(), "policy 'residual'", 4, {"10 (w:11)", "11 (w:12)"});
  ok_ctx.finite = &ok_guard;
  SkipKvCache ok_kv = engine.make_cache(2, 6);
  EXPECT_NO_THROW(engine.step(ids, ok_ctx, ok_kv, policy, nullptr, nullptr));
  EXPECT_EQ(policy.cache_stats().insertions, 12);
}

TEST(StepFiniteGuard, AFiniteStepIsTheSameWithTheGuard) {
  const Transformer m = load_tiny_dense();
  SkipEngine engine(m);
  const at::Tensor ids = two_rows();
  NonePolicy none(Descriptor::parse("none"));
  StepContext plain = prefill_ctx(m, 2, 6);
  SkipKvCache kv_plain = engine.make_cache(2, 6);
  const at::Tensor ref = engine.step(ids, plain, kv_plain, none, nullptr, nullptr);
  StepContext guarded = prefill_ctx(m, 2, 6);
  StepFiniteGuard guard(m.config().n_layers, m.device(), "the full model", 0, {"0 (w:1)", "1 (w:2)"});
  guarded.finite = &guard;
  SkipKvCache kv_guarded = engine.make_cache(2, 6);
  const at::Tensor out = engine.step(ids, guarded, kv_guarded, none, nullptr, nullptr);
  EXPECT_TRUE(at::isfinite(ref).all().item<bool>());
  EXPECT_TRUE(at::equal(out, ref));

  // What the guard costs per step: the run's default step (1 sequence, a chunk of 128) and a
  // decode step, median of 15 after a warm-up, with and without it (recorded, not asserted:
  // timings on a shared machine are noisy).
  const at::Tensor chunk = at::arange(128, at::kLong).remainder(4000).add(5).unsqueeze(0);
  for (const int64_t S : {int64_t{128}, int64_t{1}}) {
    double median_ns[2];
    for (int with_guard = 0; with_guard < 2; ++with_guard) {
      std::vector<int64_t> ns;
      for (int rep = 0; rep < 16; ++rep) {
        StepContext c = prefill_ctx(m, 1, S);
        StepFiniteGuard g(m.config().n_layers, m.device(), "the full model", 0, {"0 (w:1)"});
        if (with_guard) c.finite = &g;
        SkipKvCache kv = engine.make_cache(1, S);
        const auto t0 = std::chrono::steady_clock::now();
        engine.step(chunk.slice(1, 0, S), c, kv, none, nullptr, nullptr);
        const auto t1 = std::chrono::steady_clock::now();
        if (rep > 0) ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      }
      std::sort(ns.begin(), ns.end());
      median_ns[with_guard] = static_cast<double>(ns[ns.size() / 2]);
    }
    const std::string key = S == 1 ? "decode_step" : "prefill_step_128";
    RecordProperty(key + "_ns_without_guard", std::to_string(median_ns[0]));
    RecordProperty(key + "_ns_with_guard", std::to_string(median_ns[1]));
    std::printf("%s: %.0f us without the guard, %.0f us with it\n", key.c_str(), median_ns[0] / 1e3,
                median_ns[1] / 1e3);
  }
}

TEST(SemanticCacheFinite, RefusesNonFiniteKeysOrValuesAndInsertsNothing) {
  CacheOptions o;
  o.index_descriptor = "torch:flat";
  o.capacity = 8;
  SemanticCache cache(4, 3, o);
  const at::Tensor keys = at::eye(4).slice(0, 0, 3);  // fp32 [3, 4]
  at::Tensor values = at::ones({3, 3});
  values[2][1] = kNaN;
  std::string msg = error_of([&] { cache.insert(keys, values); });
  EXPECT_NE(msg.find("semantic cache: 1 of 3 entries about to be inserted hold non-finite keys or values (NaN or "
                     "inf), first entry 2"),
            std::string::npos)
      << msg;
  at::Tensor bad_keys = keys.clone();
  bad_keys[0][0] = -std::numeric_limits<float>::infinity();
  bad_keys[1][0] = kNaN;
  msg = error_of([&] { cache.insert(bad_keys, at::ones({3, 3})); });
  EXPECT_NE(msg.find("2 of 3 entries about to be inserted hold non-finite keys or values (NaN or inf), first entry 0"),
            std::string::npos)
      << msg;
  EXPECT_EQ(cache.stats().insertions, 0);
  EXPECT_EQ(cache.stats().size, 0);
  cache.insert(keys, at::ones({3, 3}));
  EXPECT_EQ(cache.stats().insertions, 3);
  EXPECT_EQ(cache.search(keys, 1).slot.ge(0).sum().item<int64_t>(), 3);
}
