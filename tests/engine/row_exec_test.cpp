// The row-execution modes of a planned layer (model/layer_plan.h): gather, bucket and mask give
// the same logits and greedy tokens for the same decisions (static, random and residual
// policies on the dense and MoE tiny models, left-padded prefill and decode steps); the FLOPs
// counted follow the executed shapes, checked against the full model and, for a hand-made
// skip, against pairs and rows counted by hand; the bucket sizes are the documented ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <memory>

#include <ATen/CPUGeneratorImpl.h>

#include "../model/model_test_util.h"
#include "core/error.h"
#include "engine/run_config.h"
#include "engine/skip_engine.h"
#include "metrics/flop_counter.h"
#include "model/fixed_decode.h"
#include "model/layer_plan.h"
#include "skip/skip_policy.h"

using namespace semskip;
using namespace semskip::test;

namespace {

constexpr RowExec kModes[] = {RowExec::gather, RowExec::bucket, RowExec::mask};

Transformer load_embedded(const std::string& name) {
  ModelOptions o;
  o.dtype = DType::fp32;
  return Transformer::load(embedded_model(name), o);
}

StepContext step_ctx(const Transformer& m, const at::Tensor& valid, bool prefill) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < valid.size(0); ++b) rows.push_back(b);
  return StepContext(m.config().n_layers, m.config().hidden_size, valid, rows, prefill);
}

struct ModeRun {
  at::Tensor logits;            // every step's logits, [B, repeats · (S + steps), V]
  std::vector<int64_t> tokens;  // greedy tokens of every step, row after row
  FlopCounter flops;
  LayerCounts counts;
};

// `repeats` times the same requests (a cache policy replays the later ones): a left-padded
// prefill of ids [B, S] and `steps` greedy decode steps, under `descriptor` and `mode`.
ModeRun prefill_and_decode(const Transformer& m, RowExec mode, const std::string& descriptor, const at::Tensor& ids,
                       const at::Tensor& valid, int64_t steps, int repeats) {
  const int64_t B = ids.size(0), S = ids.size(1);
  PolicyEnv env = model_policy_env(m.config());
  env.index_descriptor = "torch:flat";
  env.capacity = 1024;
  const std::unique_ptr<SkipPolicy> policy = make_policy(descriptor, env);
  const SkipEngine engine(m, nullptr, mode);
  EXPECT_EQ(engine.row_exec(), mode);
  ModeRun r;
  r.counts = LayerCounts(m.config().n_layers);
  std::vector<at::Tensor> logits;
  for (int rep = 0; rep < repeats; ++rep) {
    for (int64_t b = 0; b < B; ++b) policy->begin_request(b);
    SkipKvCache kv = engine.make_cache(B, S + steps);
    StepContext pc = step_ctx(m, valid, true);
    pc.flops = &r.flops;
    at::Tensor out = engine.step(ids, pc, kv, *policy, &r.flops, &r.counts);
    logits.push_back(out);
    at::Tensor next = out.select(1, S - 1).argmax(-1);  // [B]
    for (int64_t s = 0; s < steps; ++s) {
      for (int64_t t : to_vector(next)) r.tokens.push_back(t);
      StepContext dc = step_ctx(m, at::ones({B, 1}, at::kBool), false);
      dc.flops = &r.flops;
      out = engine.step(next.view({B, 1}), dc, kv, *policy, &r.flops, &r.counts);
      logits.push_back(out);
      next = out.select(1, 0).argmax(-1);
    }
  }
  r.logits = at::cat(logits, 1);
  return r;
}

struct Case {
  std::string model, policy;
  int repeats;
  bool full_flops;  // mask charges exactly the full model (no hidden keys shorten the attention)
};

class RowExecModes : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST(RowBucket, SizesAreThePowersOfTwoThenMultiplesOfTheStepCappedByTheRows) {
  EXPECT_EQ(kRowBucketStep, 256);
  const std::vector<std::array<int64_t, 3>> cases = {
      // n, rows of the forward, bucket: worked out by hand from the rule.
      {0, 64, 0},      {1, 64, 1},      {2, 64, 2},        {3, 64, 4},        {5, 64, 8},
      {9, 64, 16},     {17, 64, 32},    {33, 64, 64},      {64, 64, 64},      {33, 40, 40},
      {15, 24, 16},    {23, 24, 24},    {9, 24, 16},       {255, 4096, 256},  {256, 4096, 256},
      {257, 4096, 512}, {511, 4096, 512}, {513, 4096, 768}, {4000, 4096, 4096}, {999, 1000, 1000},
  };
  for (const auto& c : cases) EXPECT_EQ(row_bucket(c[0], c[1]), c[2]) << c[0] << " of " << c[1];
  EXPECT_EQ(row_buckets(40), (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 40}));
  EXPECT_EQ(row_buckets(1), (std::vector<int64_t>{1}));
  EXPECT_EQ(row_buckets(1000), (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1000}));
  // Every count of a forward lands on a listed bucket at least as large.
  for (int64_t N : {1, 7, 32, 300, 777}) {
    const std::vector<int64_t> list = row_buckets(N);
    for (int64_t n = 1; n <= N; ++n) {
      const int64_t b = row_bucket(n, N);
      EXPECT_GE(b, n);
      EXPECT_NE(std::find(list.begin(), list.end(), b), list.end()) << n << " of " << N;
    }
  }
}

TEST(RowExecNames, RoundTripAndAnUnknownNameIsRefusedNamingTheOption) {
  for (RowExec m : kModes) EXPECT_EQ(parse_row_exec(row_exec_name(m), "option --skip-exec"), m);
  EXPECT_STREQ(row_exec_name(RowExec::bucket), "bucket");
  try {
    parse_row_exec("sparse", "option --skip-exec");
    ADD_FAILURE() << "accepted 'sparse'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("option --skip-exec: unknown row execution 'sparse' (expected gather, "
                                         "bucket or mask)"),
              std::string::npos)
        << e.what();
  }
}

// The same decisions in the three modes: the same tokens, logits within 1e-5; FLOPs: gather
// below the full model, bucket at least gather, mask the full model's (kv=propagate, MLP
// skips) or at most it (kv=mask hides keys from the rows that run).
TEST_P(RowExecModes, SameTokensAndLogitsAndTheFlopsOfTheExecutedShapes) {
  const Case c = GetParam();
  const Transformer m = load_embedded(c.model);
  const int64_t B = 2, S = 24, pad = 5, steps = 6;
  at::Tensor ids = at::randint(1, m.config().vocab_size, {B, S}, at::make_generator<at::CPUGeneratorImpl>(7), at::kLong);
  at::Tensor valid = at::ones({B, S}, at::kBool);
  valid[0].narrow(0, 0, pad).fill_(false);
  ids[0].narrow(0, 0, pad).fill_(0);
  const ModeRun full = prefill_and_decode(m, RowExec::gather, "none", ids, valid, steps, c.repeats);
  ModeRun runs[3];
  for (int i = 0; i < 3; ++i) runs[i] = prefill_and_decode(m, kModes[i], c.policy, ids, valid, steps, c.repeats);
  const ModeRun& gather = runs[0];
  int64_t skips = 0;
  for (size_t l = 0; l < gather.counts.n_block_skip.size(); ++l)
    skips += gather.counts.n_block_skip[l] + gather.counts.n_mlp_skip[l];
  EXPECT_GT(skips, 0) << "the policy skipped nothing";
  for (int i = 1; i < 3; ++i) {
    const char* name = row_exec_name(kModes[i]);
    EXPECT_EQ(runs[i].tokens, gather.tokens) << name;
    EXPECT_LT(rel_err(runs[i].logits, gather.logits), 1e-5) << name;
    // The decisions were the same: the counts of skipped and run tokens agree.
    EXPECT_EQ(runs[i].counts.n_block_skip, gather.counts.n_block_skip) << name;
    EXPECT_EQ(runs[i].counts.n_mlp_skip, gather.counts.n_mlp_skip) << name;
  }
  const int64_t f_full = full.flops.total_model(), f_gather = gather.flops.total_model();
  const int64_t f_bucket = runs[1].flops.total_model(), f_mask = runs[2].flops.total_model();
  EXPECT_LT(f_gather, f_full);
  EXPECT_GE(f_bucket, f_gather);
  EXPECT_GE(runs[1].flops.total(), gather.flops.total());
  if (c.full_flops) EXPECT_EQ(f_mask, f_full);
  else EXPECT_LE(f_mask, f_full);
  EXPECT_GT(f_mask, f_gather);
  EXPECT_EQ(runs[2].flops.by_group(OpGroup::kv_propagate), 0);  // every row computes its K/V in the block
}

INSTANTIATE_TEST_SUITE_P(
    Policies, RowExecModes,
    ::testing::Values(Case{"tiny-dense", "static:layers=2+5", 1, true}, Case{"tiny-moe", "static:layers=2+4", 1, true},
                      Case{"tiny-dense", "random:rate=0.25", 1, true}, Case{"tiny-moe", "random:rate=0.25", 1, true},
                      Case{"tiny-dense", "random:rate=0.25,kv=mask", 1, false},
                      Case{"tiny-moe", "random:rate=0.25,target=mlp", 1, true},
                      Case{"tiny-dense", "residual:p=2,r=6,tau=0.999", 2, true},
                      Case{"tiny-moe", "residual:p=1,r=4,tau=0.999", 2, true},
                      Case{"tiny-moe", "residual:p=1,r=4,tau=0.999,target=mlp", 2, true},
                      Case{"tiny-moe", "random:rate=0.25,target=routed", 1, true},
                      Case{"tiny-moe", "residual:p=1,r=4,tau=0.999,target=routed", 2, true}),
    [](const auto& info) {
      std::string n = info.param.model + "_" + info.param.policy;
      for (char& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

namespace {

// tiny-dense (models/tiny-dense/config.json): hidden 256, intermediate 704, 4 heads of 64,
// 2 KV heads (the constants of test_skip_engine.cpp's accounting test).
constexpr int64_t kD = 256, kI = 704, kH = 4, kHkv = 2, kHd = 64;
constexpr int64_t kKvPropagateFlopsPerToken = 2 * (2 * kD * kHkv * kHd);
constexpr int64_t kBlockFlopsPerToken = 2 * kD * (kH * kHd) + 2 * (2 * kD * kHkv * kHd) + 2 * (kH * kHd) * kD + 3 * (2 * kD * kI);
constexpr int64_t kAttnFlopsPerPair = 2 * (2 * kHd) * kH;

// Tokens [first, last] of the prefill skip block `layer`.
class TokensSkip : public SkipPolicy {
 public:
  TokensSkip(int64_t layer, int64_t first, int64_t last, KvMode kv) : layer_(layer), first_(first), last_(last), kv_(kv) {}
  std::string describe() const override { return "tokens"; }
  KvMode kv_mode() const override { return kv_; }
  void begin_step(StepContext& ctx) override {
    if (ctx.prefill()) ctx.skip_block(layer_)[0].narrow(0, first_, last_ - first_ + 1).fill_(true);
  }

 private:
  int64_t layer_, first_, last_;
  KvMode kv_;
};

// (query, key) pairs of T causal queries: query q counted when counted(q); key k <= q let
// through when sees(q, k) or k = q (a query always sees its own slot).
int64_t count_pairs(int64_t T, const std::function<bool(int64_t)>& counted,
                    const std::function<bool(int64_t, int64_t)>& sees) {
  int64_t n = 0;
  for (int64_t q = 0; q < T; ++q)
    for (int64_t k = 0; k <= q && counted(q); ++k) n += (k == q || sees(q, k)) ? 1 : 0;
  return n;
}

}  // namespace

// 9 of 24 prefill tokens (3..11) skip block 4 of tiny-dense. gather runs 15 rows; bucket pads
// them to 16 with the first row that skips (token 3), whose attention row is charged, and the
// 9 propagated K/V rows to 16; mask runs all 24, the skipping ones attending to every key.
TEST(RowExecFlops, HandCountedRowsAndPairsOfEachMode) {
  const Transformer m = load_embedded("tiny-dense");
  ASSERT_EQ(m.config().hidden_size, kD);
  ASSERT_EQ(m.config().intermediate_size, kI);
  const int64_t layer = 4, first = 3, last = 11, T = 24;
  const auto skipped = [&](int64_t t) { return t >= first && t <= last; };
  const at::Tensor ids = at::randint(1, m.config().vocab_size, {1, T}, at::make_generator<at::CPUGeneratorImpl>(3), at::kLong);
  for (KvMode kv : {KvMode::mask, KvMode::propagate}) {
    const bool hide = kv == KvMode::mask;
    const auto layer_sees = [&](int64_t, int64_t k) { return !(hide && skipped(k)); };
    at::Tensor logits[3];
    for (int i = 0; i < 3; ++i) {
      const RowExec mode = kModes[i];
      TokensSkip policy(layer, first, last, kv);
      SkipEngine engine(m);
      engine.set_row_exec(mode);
      FlopCounter f;
      SkipKvCache cache = engine.make_cache(1, T);
      StepContext ctx = step_ctx(m, at::ones({1, T}, at::kBool), true);
      logits[i] = engine.step(ids, ctx, cache, policy, &f, nullptr);
      int64_t rows = 0, pairs = 0, kv_rows = 0;
      if (mode == RowExec::gather) {
        rows = T - (last - first + 1);
        pairs = count_pairs(T, [&](int64_t q) { return !skipped(q); }, layer_sees);
        kv_rows = hide ? 0 : last - first + 1;
      } else if (mode == RowExec::bucket) {
        rows = 16;  // row_bucket(15, 24)
        pairs = count_pairs(T, [&](int64_t q) { return !skipped(q) || q == first; }, layer_sees);
        kv_rows = hide ? 0 : 16;  // row_bucket(9, 24)
      } else {
        rows = T;
        pairs = count_pairs(T, [](int64_t) { return true; },
                            [&](int64_t q, int64_t k) { return skipped(q) || layer_sees(q, k); });
      }
      const char* name = row_exec_name(mode);
      EXPECT_EQ(f.by_group(OpGroup::kv_propagate), kv_rows * kKvPropagateFlopsPerToken) << name;
      EXPECT_EQ(f.by_layer(static_cast<int>(layer)),
                rows * kBlockFlopsPerToken + pairs * kAttnFlopsPerPair + kv_rows * kKvPropagateFlopsPerToken)
          << name << (hide ? ", kv=mask" : ", kv=propagate");
      // The other layers run every token, in every mode.
      EXPECT_EQ(f.by_layer(0), T * kBlockFlopsPerToken + T * (T + 1) / 2 * kAttnFlopsPerPair) << name;
    }
    EXPECT_LT(rel_err(logits[1], logits[0]), 1e-5);
    EXPECT_LT(rel_err(logits[2], logits[0]), 1e-5);
  }
}

namespace {

// A policy's decisions with decides_at_begin_step() as given: the same policy counted by the
// engine before the forward (LayerPlan::n_run…) or by the forward itself (nonzero / one read
// per layer).
class CountedOrNot final : public SkipPolicy {
 public:
  CountedOrNot(std::unique_ptr<SkipPolicy> inner, bool upfront) : inner_(std::move(inner)), upfront_(upfront) {}
  std::string describe() const override { return inner_->describe(); }
  KvMode kv_mode() const override { return inner_->kv_mode(); }
  bool skips_layer_everywhere(int64_t l) const override { return inner_->skips_layer_everywhere(l); }
  bool decides_at_begin_step() const override { return upfront_; }
  void begin_step(StepContext& ctx) override { inner_->begin_step(ctx); }

 private:
  std::unique_ptr<SkipPolicy> inner_;
  bool upfront_;
};

}  // namespace

// Counting every layer's rows before the forward changes nothing but the host reads: the same
// logits (bit for bit) and FLOPs as counting them layer by layer, for block and MLP skips,
// kv=propagate and kv=mask, with a left-padded prefill and decode steps, in gather and bucket.
TEST(RowExecCounts, CountsGivenUpFrontEqualCountsReadPerLayer) {
  for (const std::string model : {"tiny-dense", "tiny-moe"}) {
    const Transformer m = load_embedded(model);
    const int64_t B = 3, S = 20, steps = 4;
    at::Tensor ids = at::randint(1, m.config().vocab_size, {B, S}, at::make_generator<at::CPUGeneratorImpl>(11), at::kLong);
    at::Tensor valid = at::ones({B, S}, at::kBool);
    valid[1].narrow(0, 0, 6).fill_(false);
    PolicyEnv env;
    env.n_layers = m.config().n_layers;
    env.hidden = m.config().hidden_size;
    for (const std::string desc : {"random:rate=0.3", "random:rate=0.3,kv=mask", "random:rate=0.4,target=mlp"}) {
      for (const RowExec mode : {RowExec::gather, RowExec::bucket}) {
        at::Tensor logits[2];
        int64_t flops[2] = {0, 0};
        for (int upfront = 0; upfront < 2; ++upfront) {
          CountedOrNot policy(make_policy(desc, env), upfront == 1);
          const SkipEngine engine(m, nullptr, mode);
          FlopCounter f;
          SkipKvCache kv = engine.make_cache(B, S + steps);
          StepContext pc = step_ctx(m, valid, true);
          std::vector<at::Tensor> out{engine.step(ids, pc, kv, policy, &f, nullptr)};
          at::Tensor next = out.back().select(1, S - 1).argmax(-1);
          for (int64_t s = 0; s < steps; ++s) {
            StepContext dc = step_ctx(m, at::ones({B, 1}, at::kBool), false);
            out.push_back(engine.step(next.view({B, 1}), dc, kv, policy, &f, nullptr));
            next = out.back().select(1, 0).argmax(-1);
          }
          logits[upfront] = at::cat(out, 1);
          flops[upfront] = f.total();
        }
        const std::string what = model + ", " + desc + ", " + row_exec_name(mode);
        EXPECT_TRUE(at::equal(logits[0], logits[1])) << what;
        EXPECT_EQ(flops[0], flops[1]) << what;
        EXPECT_GT(flops[0], 0) << what;
      }
    }
  }
}

// Whole-layer skipping in the fixed-shape step (model/fixed_decode.h, `bypass`): after a
// static policy's planned prefill of a left-padded batch, decode_fixed without the policy's
// layers gives the tokens of the engine's eager planned steps, and the cache it leaves (the
// skipped layers' new slots hidden) continues into the same next-step logits; the bypass is
// not ignored (the full model's continuation differs). A layer outside the model is refused.
TEST(FixedDecodeBypass, EqualsTheEagerPlannedStepsOfAStaticPolicy) {
  for (const auto& [model, desc] : {std::pair<std::string, std::string>{"tiny-dense", "static:layers=2+5"},
                                    std::pair<std::string, std::string>{"tiny-moe", "static:layers=1+2"}}) {
    const Transformer m = load_embedded(model);
    const int64_t B = 2, S = 12, steps = 7;
    at::Tensor ids = at::randint(1, m.config().vocab_size, {B, S}, at::make_generator<at::CPUGeneratorImpl>(5), at::kLong);
    at::Tensor valid = at::ones({B, S}, at::kBool);
    valid[0].narrow(0, 0, 4).fill_(false);
    ids[0].narrow(0, 0, 4).fill_(0);
    PolicyEnv env;
    env.n_layers = m.config().n_layers;
    env.hidden = m.config().hidden_size;
    const SkipEngine engine(m);
    // The policy's prefill, then `steps` greedy steps eagerly or fixed; the next step's logits.
    const auto run = [&](const std::string& policy_desc, bool fixed, std::vector<int64_t>& tokens) {
      const std::unique_ptr<SkipPolicy> policy = make_policy(policy_desc, env);
      SkipKvCache kv = engine.make_cache(B, S + steps + 1);
      StepContext pc = step_ctx(m, valid, true);
      at::Tensor next = engine.step(ids, pc, kv, *policy, nullptr, nullptr).select(1, S - 1).argmax(-1);
      if (fixed) {
        const std::optional<std::vector<int64_t>> bypass = policy->bypass_layers();
        EXPECT_TRUE(bypass.has_value());
        const FixedDecodeResult r = decode_fixed(m, kv, next, steps, /*graph=*/false, std::nullopt, *bypass);
        EXPECT_EQ(r.n_steps, steps);
        tokens = to_vector(r.tokens.narrow(1, 1, steps).reshape({-1}));
        next = r.tokens.select(1, steps).to(m.device());
      } else {
        at::Tensor out = at::empty({B, steps}, at::kLong);
        for (int64_t s = 0; s < steps; ++s) {
          StepContext dc = step_ctx(m, at::ones({B, 1}, at::kBool), false);
          next = engine.step(next.view({B, 1}), dc, kv, *policy, nullptr, nullptr).select(1, 0).argmax(-1);
          out.select(1, s).copy_(next);
        }
        tokens = to_vector(out.reshape({-1}));
      }
      StepContext dc = step_ctx(m, at::ones({B, 1}, at::kBool), false);
      return engine.step(next.view({B, 1}), dc, kv, *policy, nullptr, nullptr);
    };
    std::vector<int64_t> eager_tokens, fixed_tokens, full_tokens;
    const at::Tensor eager_next = run(desc, false, eager_tokens);
    const at::Tensor fixed_next = run(desc, true, fixed_tokens);
    const at::Tensor full_next = run("none", true, full_tokens);
    EXPECT_EQ(fixed_tokens, eager_tokens) << model;
    EXPECT_LT(rel_err(fixed_next, eager_next), 1e-5) << model;
    EXPECT_GT(rel_err(full_next, eager_next), 1e-3) << model;
  }
  const Transformer m = load_embedded("tiny-dense");
  KvCache kv = m.make_kv_cache(1, 8);
  kv.extend(2);
  try {
    decode_fixed(m, kv, at::zeros({1}, at::kLong), 2, false, std::nullopt, {m.n_layers()});
    ADD_FAILURE() << "a bypassed layer outside the model was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bypassed layer 10 is outside the model's 0..9"), std::string::npos) << e.what();
  }
}
