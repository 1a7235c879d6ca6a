// The model's forward under an execution plan (model/layer_plan.h) against independent paths:
// the plain forward with hooks that replace an MLP's output, each prompt of a padded batch
// run alone, a hand-filled KV cache, and a scripted decode loop.
#include <gtest/gtest.h>

#include <vector>

#include "metrics/flop_counter.h"
#include "model/generation.h"
#include "model/layer_plan.h"
#include "model_test_util.h"

namespace semskip::test {
namespace {

at::Tensor fixture_ids(const std::string& name, int i) {
  const SafetensorsFile ref(fixture_dir(name) + "/reference.safetensors");
  return ref.tensor(fmt::format("ids_{}", i)).clone().unsqueeze(0);  // int64 [1, T]
}

// A fixed plan: at `layer`, rows `mlp_rows` take `replacement` in place of their MLP.
class ReplaceMlp final : public ExecutionPlan {
 public:
  ReplaceMlp(int64_t layer, at::Tensor skip_mlp, at::Tensor replacement)
      : layer_(layer), skip_mlp_(std::move(skip_mlp)), replacement_(std::move(replacement)) {}
  LayerPlan layer(int64_t l, const at::Tensor&) override {
    LayerPlan p;
    if (l == layer_) {
      p.skip_mlp = skip_mlp_;
      p.mlp_replacement = replacement_;
      p.want_mlp_out = true;
    }
    return p;
  }
  void after_mlp(int64_t l, const at::Tensor& out) override {
    if (l == layer_) mlp_out = out.clone();
  }
  int64_t n_layers_seen = 0;
  void after_layer(int64_t, const at::Tensor&) override { ++n_layers_seen; }
  at::Tensor mlp_out;

 private:
  int64_t layer_;
  at::Tensor skip_mlp_, replacement_;
};

// Every LayerPlan default: the full model.
class EmptyPlan final : public ExecutionPlan {
 public:
  LayerPlan layer(int64_t, const at::Tensor&) override { return {}; }
};

class PlanPerFixture : public ::testing::TestWithParam<std::string> {};

// Rows 3, 4 and 10 of layer 1 take a given MLP output: the same as the plain forward with a
// hook that writes it into hook_mlp_out at those rows; the MLP runs on the other rows only.
TEST_P(PlanPerFixture, ReplacedMlpRowsEqualAHookThatReplacesThem) {
  const Transformer m = load_fixture(GetParam());
  const at::Tensor ids = fixture_ids(GetParam(), 1);  // [1, 29]
  const int64_t T = ids.size(1), d = m.config().hidden_size, layer = 1;
  at::Tensor skip = at::zeros({1, T}, at::kBool);
  for (int64_t t : {3, 4, 10}) skip[0][t] = true;
  const at::Tensor replacement = at::randn({1, T, d}, at::TensorOptions().dtype(m.dtype())) * 0.1;
  HookSet hooks;
  hooks.add(layer, HookPoint::mlp_out, [&](const at::Tensor& y, const HookSite&) {
    return std::optional<at::Tensor>(at::where(skip.unsqueeze(-1), replacement, y));
  });
  FlopCounter f_ref, f_plan;
  ForwardOptions ref_o;
  ref_o.hooks = &hooks;
  ref_o.flops = &f_ref;
  const at::Tensor ref = m.forward(ids, ref_o);
  ReplaceMlp plan(layer, skip, replacement);
  ForwardOptions o;
  o.plan = &plan;
  o.flops = &f_plan;
  const at::Tensor out = m.forward(ids, o);
  EXPECT_LT(rel_err(out, ref), 1e-5);
  EXPECT_EQ(plan.n_layers_seen, m.n_layers());
  // after_mlp sees zero at the replaced rows and the MLP's output elsewhere.
  EXPECT_EQ(plan.mlp_out.select(1, 3).abs().max().item<double>(), 0.0);
  EXPECT_GT(plan.mlp_out.select(1, 2).abs().max().item<double>(), 0.0);
  EXPECT_LT(f_plan.total(), f_ref.total());
  if (!m.layer(layer).is_moe()) {
    // A dense MLP costs the same per token: 3 of T tokens fewer at one of L layers.
    const int64_t L = m.n_layers();
    EXPECT_EQ(f_plan.by_group(OpGroup::mlp) * L * T, f_ref.by_group(OpGroup::mlp) * (L * T - 3));
  }
}

// The empty plan on a left-padded batch: every real token gets the logits it gets alone,
// padding runs nothing (zero logits), and the FLOPs are those of the prompts alone.
TEST_P(PlanPerFixture, EmptyPlanOnAPaddedBatchIsEachPromptAlone) {
  const Transformer m = load_fixture(GetParam());
  const at::Tensor a = fixture_ids(GetParam(), 0), b = fixture_ids(GetParam(), 1);
  const int64_t S = b.size(1), pad = S - a.size(1);
  ASSERT_GT(pad, 0);
  at::Tensor ids = at::zeros({2, S}, at::kLong), valid = at::zeros({2, S}, at::kBool);
  ids[0].narrow(0, pad, S - pad).copy_(a[0]);
  valid[0].narrow(0, pad, S - pad).fill_(true);
  ids[1].copy_(b[0]);
  valid[1].fill_(true);
  EmptyPlan plan;
  FlopCounter f_plan, f_a, f_b;
  ForwardOptions o;
  o.plan = &plan;
  o.attention_mask = valid;
  o.flops = &f_plan;
  const at::Tensor out = m.forward(ids, o);
  ForwardOptions oa, ob;
  oa.flops = &f_a;
  ob.flops = &f_b;
  EXPECT_LT(rel_err(out[0].narrow(0, pad, S - pad), m.forward(a, oa)[0]), 1e-5);
  EXPECT_LT(rel_err(out[1], m.forward(b, ob)[0]), 1e-5);
  EXPECT_EQ(out[0].narrow(0, 0, pad).abs().max().item<double>(), 0.0);
  const auto no_rotary = [](const FlopCounter& f, AttnConvention c) { return f.total(c) - f.by_group(OpGroup::rotary); };
  // (The dense convention counts every key of the padded block per query, so only the causal one matches.)
  EXPECT_EQ(no_rotary(f_plan, AttnConvention::causal),
            no_rotary(f_a, AttnConvention::causal) + no_rotary(f_b, AttnConvention::causal));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PlanPerFixture, ::testing::ValuesIn(fixture_names()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n) c = (c == '-') ? '_' : c;
  return n;
});

}  // namespace

// Per-layer visibility: slots hidden at one layer stay visible at the others, padding is
// hidden everywhere, and the rows written land at their (sequence, slot).
TEST(KvCacheVisibility, HiddenSlotsArePerLayerAndRowsLandInPlace) {
  KvCache kv(3, 2, 1, 2, 4, at::kFloat, at::kCPU);
  at::Tensor valid = at::ones({2, 3}, at::kBool);
  valid[0][0] = false;  // left padding of sequence 0
  kv.set_valid(0, 3, valid);
  at::Tensor visible = at::ones({2, 3}, at::kBool);
  visible[1][1] = false;  // sequence 1's token 1 skipped layer 1 with its keys hidden
  const at::Tensor rows = at::tensor({1, 5}, at::kLong);  // (0, 1) and (1, 2) of [2·3]
  const at::Tensor k = at::tensor({1.f, 2.f, 3.f, 4.f}).view({2, 1, 2});
  for (int64_t l = 0; l < 3; ++l) {
    kv.write_rows(l, 3, rows, k, k * 10);
    kv.advance(l, 3, l == 1 ? visible : at::Tensor());
  }
  EXPECT_EQ(kv.length(1), 3);
  EXPECT_FALSE(kv.has_hidden(0));
  EXPECT_TRUE(kv.has_hidden(1));
  at::Tensor want1 = valid.clone();
  want1[1][1] = false;
  EXPECT_TRUE(at::equal(kv.key_valid(0, 3), valid));
  EXPECT_TRUE(at::equal(kv.key_valid(1, 3), want1));
  EXPECT_TRUE(at::equal(kv.key_valid(2, 3), valid));
  const at::Tensor keys = kv.keys(1, 3);  // [2, 1, 3, 2]
  EXPECT_TRUE(at::equal(keys[0][0][1], at::tensor({1.f, 2.f})));
  EXPECT_TRUE(at::equal(keys[1][0][2], at::tensor({3.f, 4.f})));
  EXPECT_TRUE(at::equal(kv.values(1, 3)[1][0][2], at::tensor({30.f, 40.f})));
  EXPECT_EQ(keys[1][0][0].abs().sum().item<float>(), 0.f);  // never written: zero, not garbage
  // A later step of the layer: its new slots follow the padding mask again.
  kv.set_valid(3, 1, at::Tensor());
  kv.advance(1, 1, at::Tensor());
  EXPECT_TRUE(kv.key_valid(1, 4)[1][3].item<bool>());
  EXPECT_FALSE(kv.key_valid(1, 4)[1][1].item<bool>());
  kv.clear();
  EXPECT_FALSE(kv.has_hidden(1));
}

// The decode loop on a scripted step (step t's logits peak at token 10 + t): rows stop at eos
// and stop being live, and a lockstep that goes on takes idle steps until max_new_tokens.
TEST(DecodeGreedy, StopsRowsAtEosAndTakesIdleStepsInLockstep) {
  const int64_t V = 32;
  int64_t n_step = 0, n_idle = 0;
  std::vector<at::Tensor> lives;
  GreedyLoop loop;
  loop.max_new_tokens = 6;
  loop.eos_token_id = 11;
  loop.step = [&](const at::Tensor& tokens, const at::Tensor& live) {
    lives.push_back(live.clone());
    ++n_step;
    at::Tensor logits = at::zeros({tokens.size(0), 1, V});
    for (int64_t b = 0; b < tokens.size(0); ++b) logits[b][0][10 + n_step + b].fill_(1.f);
    return logits;
  };
  loop.go_on = [](bool) { return true; };
  loop.idle_step = [&] { ++n_idle; };
  int64_t steps = 0;
  // Row 0 yields 5, 11 (eos); row 1 yields 6, 12, 13, 14, 15, 16 (max_new_tokens).
  const auto out = decode_greedy(at::tensor({5, 6}, at::kLong), loop, &steps);
  EXPECT_EQ(out[0], (std::vector<int64_t>{5, 11}));
  EXPECT_EQ(out[1], (std::vector<int64_t>{6, 12, 13, 14, 15, 16}));
  EXPECT_EQ(n_step, 5);
  EXPECT_EQ(n_idle, 0);
  EXPECT_EQ(steps, 5);
  EXPECT_TRUE(lives[0][0][0].item<bool>());
  EXPECT_FALSE(lives[1][0][0].item<bool>());  // row 0 stopped after eos
  // One row that stops at once: the lockstep keeps this process stepping idle.
  n_step = 0;
  const auto idle = decode_greedy(at::tensor({11}, at::kLong), loop, &steps);
  EXPECT_EQ(idle[0], (std::vector<int64_t>{11}));
  EXPECT_EQ(n_step, 0);
  EXPECT_EQ(n_idle, 5);
}

}  // namespace semskip::test
