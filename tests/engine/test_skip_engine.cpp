// The skipping layer loop against independent paths: Transformer::forward (with hooks that
// turn a block into the identity), greedy generation of the model, and the fixtures.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "../model/model_test_util.h"
#include "../skip/policy_test_env.h"
#include "engine/skip_engine.h"
#include "metrics/flop_counter.h"
#include "model/generation.h"
#include "skip/baseline_policies.h"
#include "skip/residual_policy.h"
#include "tokenizer/tokenizer.h"

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

class EnginePerFixture : public ::testing::TestWithParam<std::string> {};

// tiny-dense (models/tiny-dense/config.json): hidden 256, intermediate 704, 4 heads of 64,
// 2 KV heads, q/k/v biases (qwen2; bias adds are not counted, as FlopCounterMode), 10 layers.
constexpr int64_t kD = 256, kI = 704, kH = 4, kHkv = 2, kHd = 64;
// One token's K and V projections: 2 × 2·d·(n_kv_heads·head_dim).
constexpr int64_t kKvPropagateFlopsPerToken = 2 * (2 * kD * kHkv * kHd);  // 131072
// One token through one block, without the attention products: q, k, v, o and SwiGLU.
constexpr int64_t kBlockFlopsPerToken =
    2 * kD * (kH * kHd) + 2 * (2 * kD * kHkv * kHd) + 2 * (kH * kHd) * kD + 3 * (2 * kD * kI);  // 1474560
// QKᵀ and AV of one (query, key) pair over all heads.
constexpr int64_t kAttnFlopsPerPair = 2 * (2 * kHd) * kH;  // 1024

Transformer load_tiny_dense(DType dtype = DType::fp32) {
  ModelOptions o;
  o.dtype = dtype;
  Transformer m = Transformer::load(embedded_model("tiny-dense"), o);
  const ModelConfig& c = m.config();
  // The constants above are this model's shapes.
  EXPECT_EQ(c.hidden_size, kD);
  EXPECT_EQ(c.intermediate_size, kI);
  EXPECT_EQ(c.n_heads, kH);
  EXPECT_EQ(c.n_kv_heads, kHkv);
  EXPECT_EQ(c.head_dim, kHd);
  return m;
}

// Real text of the held-out sample, tokenized: [1, n].
at::Tensor text_ids(int64_t n, int64_t skip_tokens = 0) {
  const Tokenizer tok = Tokenizer::from_file(embedded_model("tiny-dense") + "/tokenizer.json");
  const std::string text = read_file(std::string(SEMSKIP_SOURCE_DIR) + "/workloads/samples/heldout_sample.txt");
  const std::vector<int32_t> ids = tok.encode(text.substr(0, 20000));
  EXPECT_GE(static_cast<int64_t>(ids.size()), skip_tokens + n);
  std::vector<int64_t> v(ids.begin() + skip_tokens, ids.begin() + skip_tokens + n);
  return at::tensor(v, at::kLong).unsqueeze(0);
}

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
    const Transformer m = load_tiny_dense();
    const at::Tensor ids = fixture_ids("qwen2-tied", 1).remainder(m.config().vocab_size).unsqueeze(0);
    const int64_t p = 2, r = 6, L = m.config().n_layers;
    ResidualPolicy policy(Descriptor::parse(fmt::format("residual:p={},r={},tau=0.999,target={}", p, r, target)),
                          policy_env(m.config(), 1024), L, m.config().hidden_size);
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
        EXPECT_EQ(counts[1].n_kv_propagated[l], T);
        // kv=propagate: only the K/V projections of the skipped tokens are charged, each a
        // [1, d] × [d, n_kv_heads·head_dim] matmul (bias adds free), nothing else of the layer.
        EXPECT_EQ(f[1].by_layer(li), T * kKvPropagateFlopsPerToken) << l;
      } else {
        EXPECT_EQ(counts[1].n_mlp_skip[l], T);
        EXPECT_EQ(counts[1].n_block_run[l], T);
      }
    }
    if (std::string(target) == "block")
      EXPECT_EQ(f[1].by_group(OpGroup::kv_propagate), (r - p) * T * kKvPropagateFlopsPerToken);
    else
      EXPECT_EQ(f[1].by_group(OpGroup::kv_propagate), 0);  // attention runs: K/V are exact
    EXPECT_LT(f[1].total_model(), f[0].total_model()) << target;
    // Exact flat lookup over T stored keys of width d: 2·d·T per query, T queries.
    EXPECT_EQ(f[1].by_group(OpGroup::lookup), T * 2 * m.config().hidden_size * T) << target;
  }
}

namespace {

// A hand-built skip: token `token` of the prefill skips block `layer`; nothing else skips.
class OneTokenSkip : public SkipPolicy {
 public:
  OneTokenSkip(int64_t layer, int64_t token, KvMode kv) : layer_(layer), token_(token), kv_(kv) {}
  std::string describe() const override { return "one-token"; }
  KvMode kv_mode() const override { return kv_; }
  void begin_step(StepContext& ctx) override {
    if (ctx.prefill()) ctx.skip_block(layer_)[0][token_].fill_(true);
  }

 private:
  int64_t layer_, token_;
  KvMode kv_;
};

// Second implementation: the model's own forward, with hooks at `layer` that (1) recompute
// the attention output by hand, with token `token`'s key hidden from every other query when
// `hide` (kv=mask) or the plain causal mask otherwise (kv=propagate: its K/V come from its
// unchanged state), and (2) give `token` its block input back as output (an identity block).
at::Tensor forward_with_one_token_skipped(const Transformer& m, const at::Tensor& ids, int64_t layer, int64_t token,
                                          bool hide) {
  const DecoderLayer& blk = m.layer(layer);
  const Attention& attn = blk.attention;
  const int64_t T = ids.size(1);
  at::Tensor pre;
  HookSet hooks;
  hooks.add(layer, HookPoint::resid_pre, [&](const at::Tensor& x, const HookSite&) {
    pre = x.clone();
    return std::optional<at::Tensor>();
  });
  hooks.add(layer, HookPoint::attn_out, [&](const at::Tensor&, const HookSite&) {
    const at::Tensor xn = blk.input_norm.forward(pre);
    const RopeTable rope = m.rotary().table(at::arange(T, at::kLong).unsqueeze(0), pre.scalar_type());
    const Qkv qkv = attn.project_qkv(xn, rope);
    const int64_t group = attn.n_heads / attn.n_kv_heads;
    const at::Tensor k = qkv.k.repeat_interleave(group, 1), v = qkv.v.repeat_interleave(group, 1);
    at::Tensor scores = at::matmul(qkv.q, k.transpose(-1, -2)) / std::sqrt(static_cast<double>(attn.head_dim));
    at::Tensor allowed = at::ones({T, T}, at::kBool).tril();
    if (hide) {
      allowed.select(1, token).fill_(false);
      allowed[token][token] = true;  // its own row does not matter: the block is the identity for it
    }
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
    const at::Tensor o = at::matmul(at::softmax(scores, -1), v).transpose(1, 2).reshape({1, T, -1});
    return std::optional<at::Tensor>(attn.project_out(o));
  });
  hooks.add(layer, HookPoint::resid_post, [&](const at::Tensor& x, const HookSite&) {
    at::Tensor y = x.clone();
    y[0][token].copy_(pre[0][token]);
    return std::optional<at::Tensor>(y);
  });
  ForwardOptions fo;
  fo.hooks = &hooks;
  return m.forward(ids, fo);
}

}  // namespace

// kv=mask hides a block-skipped token from the later tokens at that layer, in the prefill and
// in later decode steps; kv=propagate lets them attend to K/V computed from its state. Both
// against the model's forward with a hand-made attention mask, and the FLOPs by hand.
TEST(KvMode, MaskHidesTheSkippedTokenAndPropagateChargesItsKv) {
  const Transformer m = load_tiny_dense();
  const int64_t layer = 4, token = 5, T = 24;
  const at::Tensor all = text_ids(T + 1);  // the prefill and one decode token
  const at::Tensor ids = all.slice(1, 0, T);
  SkipEngine engine(m);
  at::Tensor ref[2], out[2];
  for (int mode = 0; mode < 2; ++mode) {
    const bool mask = mode == 0;
    OneTokenSkip policy(layer, token, mask ? KvMode::mask : KvMode::propagate);
    FlopCounter f;
    LayerCounts counts(m.config().n_layers);
    StepContext ctx = prefill_ctx(m, at::ones(ids.sizes(), at::kBool));
    ctx.flops = &f;
    SkipKvCache kv = engine.make_cache(1, 4);
    const at::Tensor prefill = engine.step(ids, ctx, kv, policy, &f, &counts);
    StepContext dc(m.config().n_layers, m.config().hidden_size, at::ones({1, 1}, at::kBool), {0}, false);
    const at::Tensor decode = engine.step(all.slice(1, T, T + 1), dc, kv, policy, nullptr, nullptr);
    out[mode] = at::cat({prefill, decode}, 1);
    ref[mode] = forward_with_one_token_skipped(m, all, layer, token, mask);
    EXPECT_LT(rel_err(out[mode], ref[mode]), 1e-5) << (mask ? "mask" : "propagate");
    EXPECT_LT(rel_err(out[mode][0][T], ref[mode][0][T]), 1e-5) << "decode, " << (mask ? "mask" : "propagate");

    // FLOPs of the prefill at the skipped layer: T − 1 tokens run the block; the queries'
    // (query, key) pairs are the causal ones less the skipped token's own row and, under
    // kv=mask, less its column too; kv=propagate adds its K and V projections.
    const int64_t causal_pairs = T * (T + 1) / 2;
    const int64_t pairs = mask ? causal_pairs - (token + 1) - (T - 1 - token) : causal_pairs - (token + 1);
    const int64_t kv_prop = mask ? 0 : kKvPropagateFlopsPerToken;
    EXPECT_EQ(f.by_layer(static_cast<int>(layer)), (T - 1) * kBlockFlopsPerToken + pairs * kAttnFlopsPerPair + kv_prop);
    EXPECT_EQ(f.by_group(OpGroup::kv_propagate), kv_prop);
    EXPECT_EQ(f.total_overhead(), kv_prop);
    EXPECT_EQ(f.by_layer(0), T * kBlockFlopsPerToken + causal_pairs * kAttnFlopsPerPair);
    EXPECT_EQ(counts.n_block_skip[layer], 1);
    EXPECT_EQ(counts.n_block_run[layer], T - 1);
    EXPECT_EQ(counts.n_kv_propagated[layer], mask ? 0 : 1);
  }
  // The two modes agree before the skipped token and differ after it.
  EXPECT_LT(rel_err(out[0].slice(1, 0, token + 1), out[1].slice(1, 0, token + 1)), 1e-6);
  EXPECT_GT(rel_err(out[0].slice(1, token + 1), out[1].slice(1, token + 1)), 1e-3);
}

namespace {

struct Pass {
  at::Tensor logits;                       // [B, S, V]
  std::vector<at::Tensor> skip;            // per layer: bool [B, S] decisions (false if none)
  LayerCounts counts;
};

Pass run_step(const SkipEngine& engine, const Transformer& m, const at::Tensor& ids, const at::Tensor& valid,
              bool prefill, SkipKvCache& kv, SkipPolicy& policy) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < ids.size(0); ++b) rows.push_back(b);
  StepContext ctx(m.config().n_layers, m.config().hidden_size, valid, rows, prefill);
  Pass p;
  p.counts = LayerCounts(m.config().n_layers);
  p.logits = engine.step(ids, ctx, kv, policy, nullptr, &p.counts);
  for (int64_t l = 0; l < m.config().n_layers; ++l) {
    const at::Tensor& s = ctx.skip_block_or_null(l);
    p.skip.push_back(s.defined() ? s.clone() : at::zeros(ids.sizes(), at::kBool));
  }
  return p;
}

}  // namespace

// Left padding under a cache policy: a batch of two prompts of different lengths gives for
// every real token what each prompt gives alone (logits, decisions, cache traffic), pads are
// never looked up, inserted or skipped, and greedy decode steps on the padded batch equal
// each sequence's own.
TEST(ResidualEngine, LeftPaddedBatchEqualsEachPromptAloneAndPadsNeverReachTheCache) {
  const Transformer m = load_tiny_dense();
  const int64_t L = m.config().n_layers;
  const std::string desc = "residual:p=2,r=6,tau=0.999";
  SkipEngine engine(m);
  // P: real text continued greedily by the full model, so that a prefix of it decodes P again.
  at::Tensor P = text_ids(14);
  for (int i = 0; i < 12; ++i) P = at::cat({P, m.forward(P)[0][-1].argmax().view({1, 1})}, 1);
  const at::Tensor A = text_ids(21, 300);       // unrelated text, 21 tokens: misses
  const at::Tensor Bq = P.slice(1, 0, 15);      // a prefix of P, 15 tokens: hits, then hits while decoding
  const int64_t SA = A.size(1), SB = Bq.size(1), pad = SA - SB, n_decode = 5;

  auto make_policy = [&]() {
    return std::make_unique<ResidualPolicy>(Descriptor::parse(desc), policy_env(m.config(), 1024), L,
                                            m.config().hidden_size);
  };
  auto warm = [&](SkipPolicy& pol) {  // the step before: P alone fills the cache
    SkipKvCache kv = engine.make_cache(1, P.size(1));
    run_step(engine, m, P, at::ones(P.sizes(), at::kBool), true, kv, pol);
  };
  // Each prompt alone, prefill then greedy decode.
  struct Alone {
    std::unique_ptr<ResidualPolicy> policy;
    std::vector<Pass> passes;
  };
  auto alone = [&](const at::Tensor& ids) {
    Alone a{make_policy(), {}};
    warm(*a.policy);
    SkipKvCache kv = engine.make_cache(1, 4);
    a.passes.push_back(run_step(engine, m, ids, at::ones(ids.sizes(), at::kBool), true, kv, *a.policy));
    for (int64_t t = 0; t < n_decode; ++t) {
      const at::Tensor next = a.passes.back().logits[0][-1].argmax().view({1, 1});
      a.passes.push_back(run_step(engine, m, next, at::ones({1, 1}, at::kBool), false, kv, *a.policy));
    }
    return a;
  };
  const Alone a = alone(A), b = alone(Bq);
  const CacheStats warm_stats = [&] {
    auto q = make_policy();
    warm(*q);
    return q->cache_stats();
  }();

  // The same two prompts, left-padded into one batch.
  auto batch_policy = make_policy();
  warm(*batch_policy);
  at::Tensor ids = at::zeros({2, SA}, at::kLong), valid = at::zeros({2, SA}, at::kBool);
  ids[0].copy_(A[0]);
  valid[0].fill_(true);
  ids[1].slice(0, pad, SA).copy_(Bq[0]);
  ids[1].slice(0, 0, pad).fill_(7);  // pad ids are arbitrary: nothing may depend on them
  valid[1].slice(0, pad, SA).fill_(true);
  SkipKvCache kv = engine.make_cache(2, 4);
  std::vector<Pass> batch;
  batch.push_back(run_step(engine, m, ids, valid, true, kv, *batch_policy));
  const CacheStats after_prefill = batch_policy->cache_stats();
  for (int64_t t = 0; t < n_decode; ++t) {
    const at::Tensor last = batch.back().logits.select(1, batch.back().logits.size(1) - 1);  // [2, V]
    const at::Tensor next = last.argmax(-1).view({2, 1});
    batch.push_back(run_step(engine, m, next, at::ones({2, 1}, at::kBool), false, kv, *batch_policy));
  }

  // Prefill: every real token as alone; pads neither skip nor count.
  const Pass& p0 = batch[0];
  EXPECT_LT(rel_err(p0.logits[0], a.passes[0].logits[0]), 1e-5);
  EXPECT_LT(rel_err(p0.logits[1].slice(0, pad, SA), b.passes[0].logits[0]), 1e-5);
  int64_t b_skips = 0;
  for (int64_t l = 0; l < L; ++l) {
    EXPECT_TRUE(at::equal(p0.skip[l][0], a.passes[0].skip[l][0])) << l;
    EXPECT_TRUE(at::equal(p0.skip[l][1].slice(0, pad, SA), b.passes[0].skip[l][0])) << l;
    EXPECT_FALSE(p0.skip[l][1].slice(0, 0, pad).any().item<bool>()) << "a pad skipped layer " << l;
    b_skips += b.passes[0].skip[l][0].sum().item<int64_t>();
    EXPECT_EQ(p0.counts.n_block_run[l] + p0.counts.n_block_skip[l], SA + SB) << l;
    EXPECT_EQ(p0.counts.n_block_skip[l], a.passes[0].counts.n_block_skip[l] + b.passes[0].counts.n_block_skip[l]);
  }
  EXPECT_EQ(b_skips, SB * 4);  // a prefix of P: every token hits and skips blocks 3..6
  // Cache traffic of the batched prefill: one lookup per real token, the misses inserted.
  const CacheStats sa = a.policy->cache_stats();
  EXPECT_EQ(after_prefill.lookups - warm_stats.lookups, SA + SB);
  EXPECT_EQ(warm_stats.lookups, P.size(1));
  // Decode: each sequence's token equals its own greedy decode.
  for (int64_t t = 1; t <= n_decode; ++t) {
    const Pass& p = batch[static_cast<size_t>(t)];
    EXPECT_LT(rel_err(p.logits[0], a.passes[t].logits[0]), 1e-5) << t;
    EXPECT_LT(rel_err(p.logits[1], b.passes[t].logits[0]), 1e-5) << t;
    for (int64_t l = 0; l < L; ++l) {
      EXPECT_TRUE(at::equal(p.skip[l][0], a.passes[t].skip[l][0])) << t << " " << l;
      EXPECT_TRUE(at::equal(p.skip[l][1], b.passes[t].skip[l][0])) << t << " " << l;
    }
    EXPECT_TRUE(p.skip[3][1][0].item<bool>()) << "the prefix of P decodes P and hits, step " << t;
  }
  // Totals: the batch's cache saw what the two prompts saw alone, P counted once.
  const CacheStats sbatch = batch_policy->cache_stats();
  const CacheStats sb2 = b.policy->cache_stats();
  EXPECT_EQ(sbatch.lookups, sa.lookups + sb2.lookups - warm_stats.lookups);
  EXPECT_EQ(sbatch.lookups, P.size(1) + SA + SB + 2 * (n_decode));
  EXPECT_EQ(sbatch.hits, sa.hits + sb2.hits - warm_stats.hits);
  EXPECT_EQ(sbatch.insertions, sa.insertions + sb2.insertions - warm_stats.insertions);
  EXPECT_EQ(sbatch.lookups - sbatch.hits, sbatch.insertions);  // every miss offered, nothing else
}

// bf16 against fp32 on tiny-dense's real weights and 96 tokens of real text. Bounds: logits
// within 2% relative (bf16 keeps 8 mantissa bits; measured 0.45%, the replay 0.46%), top-1
// agreement of the no-skip engine ≥ 95% (measured 100%), and a residual policy replays a
// repeated request with the same hits (every token) in both dtypes.
TEST(Bf16Engine, NoSkipAndAReplayedRequestStayCloseToFp32) {
  const Transformer m32 = load_tiny_dense(DType::fp32), m16 = load_tiny_dense(DType::bf16);
  const at::Tensor ids = text_ids(96);
  const int64_t T = ids.size(1), L = m32.config().n_layers;
  at::Tensor none_out[2];
  int64_t hits[2][2];
  at::Tensor replay[2];
  for (int i = 0; i < 2; ++i) {
    const Transformer& m = i == 0 ? m32 : m16;
    SkipEngine engine(m);
    NonePolicy none(Descriptor::parse("none"));
    StepContext ctx = prefill_ctx(m, at::ones(ids.sizes(), at::kBool));
    SkipKvCache kv = engine.make_cache(1, T);
    none_out[i] = engine.step(ids, ctx, kv, none, nullptr, nullptr).to(at::kFloat);
    ResidualPolicy policy(Descriptor::parse("residual:p=2,r=6,tau=0.99"), policy_env(m.config(), 1024), L,
                          m.config().hidden_size);
    for (int pass = 0; pass < 2; ++pass) {
      StepContext c = prefill_ctx(m, at::ones(ids.sizes(), at::kBool));
      SkipKvCache k = engine.make_cache(1, T);
      const CacheStats before = policy.cache_stats();
      const at::Tensor out = engine.step(ids, c, k, policy, nullptr, nullptr);
      hits[i][pass] = policy.cache_stats().hits - before.hits;
      if (pass == 1) replay[i] = out.to(at::kFloat);
    }
  }
  EXPECT_EQ(m16.dtype(), at::kBFloat16);
  const double err = rel_err(none_out[1], none_out[0]);
  EXPECT_LT(err, 0.02);
  EXPECT_GT(err, 1e-4);  // it did run in bf16
  const double agree = none_out[1].argmax(-1).eq(none_out[0].argmax(-1)).to(at::kDouble).mean().item<double>();
  RecordProperty("logits_rel_err", std::to_string(err));
  RecordProperty("top1_agreement", std::to_string(agree));
  RecordProperty("replay_rel_err", std::to_string(rel_err(replay[1], replay[0])));
  EXPECT_GE(agree, 0.95);
  EXPECT_EQ(hits[0][0], 0);
  EXPECT_EQ(hits[1][0], 0);
  EXPECT_EQ(hits[0][1], T);
  EXPECT_EQ(hits[1][1], T);
  EXPECT_LT(rel_err(replay[1], replay[0]), 0.02);
  EXPECT_LT(rel_err(replay[0], none_out[0]), 1e-4);  // the replay is the full model's output
}

// target=routed: on a MoE layer a skipped token keeps attention and the shared expert (with
// its sigmoid gate); only the router and the routed experts' weighted sum are skipped and
// replaced (by zero for static/random, by the neighbour's cached routed term for residual).
namespace {

// tiny-moe (models/tiny-moe/config.json): hidden 256, 8 routed experts of width 192, top-2,
// a shared expert of width 384 with a [1, d] gate, 6 layers, every one MoE.
constexpr int64_t kMoeE = 8, kMoeK = 2, kMoeW = 192, kMoeWs = 384;
// One token's router and routed experts (k SwiGLUs: gate, up, down), and its shared expert and gate.
constexpr int64_t kRoutedFlopsPerToken = 2 * kD * kMoeE + kMoeK * 3 * (2 * kD * kMoeW);  // 594944
constexpr int64_t kSharedFlopsPerToken = 3 * (2 * kD * kMoeWs) + 2 * kD;                 // 590336

Transformer load_tiny_moe() {
  Transformer m = Transformer::load(embedded_model("tiny-moe"), ModelOptions{});
  const ModelConfig& c = m.config();
  EXPECT_EQ(c.hidden_size, kD);
  EXPECT_EQ(c.n_experts, kMoeE);
  EXPECT_EQ(c.n_experts_per_tok, kMoeK);
  EXPECT_EQ(c.expert_intermediate_size(), kMoeW);
  EXPECT_EQ(c.n_moe_layers(), c.n_layers);
  return m;
}

PolicyEnv moe_env_of(const Transformer& m) {
  PolicyEnv e = policy_env(m.config(), 1024);
  e.moe_layers = m.config().moe_layers();
  return e;
}

// x [N, d] (the post-attention norm's output) -> the routed term by hand: softmax of the
// router logits, top-k, each token's k experts weighted (renormalised iff norm_topk_prob).
at::Tensor routed_term_by_hand(const MoeBlock& moe, const at::Tensor& x) {
  const at::Tensor probs = at::softmax(at::matmul(x, moe.router.weight.t()).to(at::kFloat), -1);
  auto [w, ids] = at::topk(probs, moe.top_k, -1);
  if (moe.norm_topk_prob) w = w / w.sum(-1, true);
  at::Tensor out = at::zeros_like(x);
  for (int64_t n = 0; n < x.size(0); ++n)
    for (int64_t j = 0; j < moe.top_k; ++j) {
      const SwiGluMlp& e = moe.experts[static_cast<size_t>(ids[n][j].item<int64_t>())];
      out[n] += w[n][j].item<float>() * e.forward(x[n].unsqueeze(0))[0];
    }
  return out;
}

// The model's own forward with the routed term of `layer` removed: a hook puts the layer's
// shared expert, sigmoid(gate(x)) · shared(x) computed by hand from its resid_mid, in place
// of the MoE output (zero without a shared expert).
at::Tensor forward_without_routed_term(const Transformer& m, const at::Tensor& ids, int64_t layer) {
  const DecoderLayer& dl = m.layer(layer);
  at::Tensor mid;
  HookSet hooks;
  hooks.add(layer, HookPoint::resid_mid, [&](const at::Tensor& x, const HookSite&) {
    mid = x.clone();
    return std::optional<at::Tensor>();
  });
  hooks.add(layer, HookPoint::mlp_out, [&](const at::Tensor& y, const HookSite&) {
    const at::Tensor x = dl.post_attention_norm.forward(mid).reshape({-1, y.size(-1)});
    at::Tensor s = at::zeros_like(x);
    if (dl.moe->shared)
      s = at::sigmoid(at::matmul(x, dl.moe->shared_gate.weight.t())) * dl.moe->shared->forward(x);
    return std::optional<at::Tensor>(s.view(y.sizes()));
  });
  ForwardOptions fo;
  fo.hooks = &hooks;
  return m.forward(ids, fo);
}

struct RoutedRun {
  at::Tensor logits;
  FlopCounter flops;
  LayerCounts counts;
};

RoutedRun prefill_under(const Transformer& m, const at::Tensor& ids, SkipPolicy& policy) {
  SkipEngine engine(m);
  StepContext ctx = prefill_ctx(m, at::ones(ids.sizes(), at::kBool));
  RoutedRun r;
  ctx.flops = &r.flops;
  r.counts = LayerCounts(m.config().n_layers);
  SkipKvCache kv = engine.make_cache(ids.size(0), ids.size(1));
  r.logits = engine.step(ids, ctx, kv, policy, &r.flops, &r.counts);
  return r;
}

}  // namespace

// (1) A routed policy that skips nothing is the full model: logits and every FLOP, on every
// layer the shared expert computed apart from the routed term (a rate-0 draw, a residual cache's
// first pass of misses, which records the routed terms), also on a model mixing dense layers.
TEST(RoutedTarget, SkippingNothingIsTheFullModel) {
  for (const std::string name : {"tiny-moe", "qwen2moe-mixed"}) {
    const Transformer m = name == "tiny-moe" ? load_tiny_moe() : load_fixture(name);
    const at::Tensor ids = name == "tiny-moe" ? text_ids(48) : fixture_ids(name, 1).unsqueeze(0);
    FlopCounter f_full;
    ForwardOptions fo;
    fo.flops = &f_full;
    const at::Tensor full = m.forward(ids, fo);
    const int64_t L = m.config().n_layers;
    for (const std::string desc : {"random:rate=0,target=routed", "residual:p=0,r=3,tau=0.99,target=routed"}) {
      const std::unique_ptr<SkipPolicy> policy = make_policy(desc, moe_env_of(m));
      ASSERT_TRUE(policy->skips_routed_only());
      RoutedRun r = prefill_under(m, ids, *policy);
      EXPECT_LT(rel_err(r.logits, full), 1e-5) << name << " " << desc;
      EXPECT_EQ(r.flops.total_model(), f_full.total_model()) << name << " " << desc;
      for (OpGroup g : {OpGroup::router, OpGroup::experts, OpGroup::shared_expert, OpGroup::mlp})
        EXPECT_EQ(r.flops.by_group(g), f_full.by_group(g)) << name << " " << desc << " " << op_group_name(g);
      for (int64_t l = 0; l < L; ++l) EXPECT_EQ(r.counts.n_mlp_skip[l], 0) << name << " " << desc;
    }
  }
}

// (2) static:layers=l,target=routed is the model with layer l's routed term removed and its
// shared expert kept (hooks on the model's own forward, the shared expert by hand); it differs
// from the full model and from target=mlp, which drops the shared expert too. On a layer mix
// the dense layer listed runs as it is; on Mixtral (no shared expert) routed is target=mlp.
TEST(RoutedTarget, StaticRoutedSkipIsTheModelWithoutThatLayersRoutedTerm) {
  const Transformer m = load_tiny_moe();
  const at::Tensor ids = text_ids(40);
  const at::Tensor full = m.forward(ids);
  for (int64_t layer : {1, 4}) {
    StaticPolicy routed(Descriptor::parse(fmt::format("static:layers={},target=routed", layer)), m.config().n_layers,
                        m.config().moe_layers());
    StaticPolicy mlp(Descriptor::parse(fmt::format("static:layers={},target=mlp", layer)), m.config().n_layers);
    const at::Tensor want = forward_without_routed_term(m, ids, layer);
    const at::Tensor got = prefill_under(m, ids, routed).logits;
    EXPECT_LT(rel_err(got, want), 1e-5) << layer;
    EXPECT_GT(rel_err(got, full), 1e-3) << layer;
    EXPECT_GT(rel_err(got, prefill_under(m, ids, mlp).logits), 1e-3) << layer;
  }
  const Transformer mixed = load_fixture("qwen2moe-mixed");  // layers 0 and 2 dense, 1 and 3 MoE
  ASSERT_EQ(mixed.config().moe_layers(), (std::vector<int64_t>{1, 3}));
  const at::Tensor mids = fixture_ids("qwen2moe-mixed", 1).unsqueeze(0);
  StaticPolicy two(Descriptor::parse("static:layers=0+1,target=routed"), 4, mixed.config().moe_layers());
  EXPECT_EQ(two.layers(), (std::vector<int64_t>{1}));
  EXPECT_LT(rel_err(prefill_under(mixed, mids, two).logits, forward_without_routed_term(mixed, mids, 1)), 1e-5);
  const Transformer mixtral = load_fixture("mixtral");
  const at::Tensor xids = fixture_ids("mixtral", 1).unsqueeze(0);
  StaticPolicy xr(Descriptor::parse("static:layers=1,target=routed"), 3, mixtral.config().moe_layers());
  StaticPolicy xm(Descriptor::parse("static:layers=1,target=mlp"), 3);
  RoutedRun a = prefill_under(mixtral, xids, xr), b = prefill_under(mixtral, xids, xm);
  EXPECT_LT(rel_err(a.logits, b.logits), 1e-6);
  EXPECT_EQ(a.flops.total(), b.flops.total());
  EXPECT_GT(rel_err(a.logits, mixtral.forward(xids)), 1e-3);
}

// (3) The FLOPs saved are exactly the router and routed experts of the skipped (token, layer)
// pairs; the shared expert (and attention) of every token is still charged. target=mlp saves
// the shared expert too.
TEST(RoutedTarget, SavesExactlyTheRouterAndRoutedExpertsOfTheSkippedPairs) {
  const Transformer m = load_tiny_moe();
  const at::Tensor ids = text_ids(40);
  const int64_t T = ids.size(1);
  FlopCounter f_full;
  ForwardOptions fo;
  fo.flops = &f_full;
  m.forward(ids, fo);
  StaticPolicy st(Descriptor::parse("static:layers=2+3,target=routed"), m.config().n_layers, m.config().moe_layers());
  const RoutedRun s = prefill_under(m, ids, st);
  EXPECT_EQ(f_full.total_model() - s.flops.total_model(), 2 * T * kRoutedFlopsPerToken);
  EXPECT_EQ(f_full.by_group(OpGroup::router) - s.flops.by_group(OpGroup::router), 2 * T * 2 * kD * kMoeE);
  EXPECT_EQ(s.flops.by_group(OpGroup::shared_expert), f_full.by_group(OpGroup::shared_expert));
  EXPECT_EQ(s.flops.by_group(OpGroup::shared_expert), m.config().n_layers * T * kSharedFlopsPerToken);
  EXPECT_EQ(s.counts.n_mlp_skip[2], T);
  EXPECT_EQ(s.counts.n_block_run[2], T);
  StaticPolicy sm(Descriptor::parse("static:layers=2+3,target=mlp"), m.config().n_layers);
  EXPECT_EQ(f_full.total_model() - prefill_under(m, ids, sm).flops.total_model(),
            2 * T * (kRoutedFlopsPerToken + kSharedFlopsPerToken));
  // Random pairs: whatever the draw, each skipped pair saves one token's router and experts.
  const std::unique_ptr<SkipPolicy> rnd = make_policy("random:rate=0.3,target=routed", moe_env_of(m));
  const RoutedRun r = prefill_under(m, ids, *rnd);
  int64_t pairs = 0;
  for (int64_t n : r.counts.n_mlp_skip) pairs += n;
  EXPECT_GT(pairs, 0);
  EXPECT_EQ(f_full.total_model() - r.flops.total_model(), pairs * kRoutedFlopsPerToken);
  EXPECT_EQ(r.flops.by_group(OpGroup::shared_expert), f_full.by_group(OpGroup::shared_expert));
  EXPECT_EQ(r.flops.by_group(OpGroup::attn_proj), f_full.by_group(OpGroup::attn_proj));
}

namespace {

// Passes every call on to a residual policy and keeps, at each step's end, the routed-term
// replacements and MLP skips it decided for layers p+1..r.
class Watched : public SkipPolicy {
 public:
  explicit Watched(ResidualPolicy& inner) : inner_(inner) {}
  std::string describe() const override { return inner_.describe(); }
  bool skips_routed_only() const override { return inner_.skips_routed_only(); }
  void begin_step(StepContext& ctx) override { inner_.begin_step(ctx); }
  void after_layer(int64_t l, const at::Tensor& h, StepContext& ctx) override { inner_.after_layer(l, h, ctx); }
  bool wants_mlp_out(int64_t l) const override { return inner_.wants_mlp_out(l); }
  void after_mlp(int64_t l, const at::Tensor& y, StepContext& ctx) override { inner_.after_mlp(l, y, ctx); }
  void end_step(StepContext& ctx) override {
    replacement.clear();
    skipped.clear();
    for (int64_t l = inner_.probe() + 1; l <= inner_.resume(); ++l) {
      const at::Tensor& rep = ctx.mlp_replacement_or_null(l);
      const at::Tensor& sm = ctx.skip_mlp_or_null(l);
      replacement.push_back(rep.defined() ? rep.clone() : at::Tensor());
      skipped.push_back(sm.defined() ? sm.clone() : at::Tensor());
    }
    inner_.end_step(ctx);
  }
  std::vector<at::Tensor> replacement, skipped;  // per layer p+1..r: [B, S, d], bool [B, S]

 private:
  ResidualPolicy& inner_;
};

}  // namespace

// (4) residual:…,tau=-1,target=routed one token a step: the first token misses and is
// inserted, every later one hits it, and the value each hit takes at layers p+1..r is that
// token's own routed term there (by hand from the full model's run of it alone).
TEST(RoutedTarget, ResidualHitsTakeTheNeighboursRecordedRoutedTerm) {
  const Transformer m = load_tiny_moe();
  const at::Tensor ids = text_ids(5);
  const int64_t p = 1, r = 4, L = m.config().n_layers, T = ids.size(1);
  // The routed term of token 0 at each layer, from the full model on that token alone.
  std::vector<at::Tensor> want(static_cast<size_t>(L));
  HookSet hooks;
  for (int64_t l = 0; l < L; ++l)
    hooks.add(l, HookPoint::resid_mid, [&, l](const at::Tensor& x, const HookSite&) {
      const DecoderLayer& dl = m.layer(l);
      want[static_cast<size_t>(l)] = routed_term_by_hand(*dl.moe, dl.post_attention_norm.forward(x).reshape({-1, kD}));
      return std::optional<at::Tensor>();
    });
  ForwardOptions fo;
  fo.hooks = &hooks;
  m.forward(ids.slice(1, 0, 1), fo);
  ResidualPolicy inner(Descriptor::parse(fmt::format("residual:p={},r={},tau=-1,target=routed", p, r)), moe_env_of(m),
                       L, kD);
  Watched policy(inner);
  SkipEngine engine(m);
  SkipKvCache kv = engine.make_cache(1, T);
  for (int64_t t = 0; t < T; ++t) {
    StepContext ctx(L, kD, at::ones({1, 1}, at::kBool), {0}, t == 0);
    LayerCounts counts(L);
    const at::Tensor logits = engine.step(ids.slice(1, t, t + 1), ctx, kv, policy, nullptr, &counts);
    EXPECT_TRUE(logits.isfinite().all().item<bool>()) << t;
    for (int64_t l = p + 1; l <= r; ++l) {
      const size_t i = static_cast<size_t>(l - p - 1);
      EXPECT_EQ(counts.n_mlp_skip[l], t == 0 ? 0 : 1) << t << " " << l;
      EXPECT_EQ(counts.n_block_run[l], 1) << t << " " << l;  // attention (and the shared expert) ran
      if (t == 0) {
        EXPECT_FALSE(policy.skipped[i].defined()) << l;
        continue;
      }
      ASSERT_TRUE(policy.skipped[i].defined() && policy.skipped[i].all().item<bool>()) << t << " " << l;
      EXPECT_LT(rel_err(policy.replacement[i].reshape({1, kD}), want[static_cast<size_t>(l)]), 1e-5) << t << " " << l;
    }
  }
  EXPECT_EQ(inner.cache_stats().insertions, 1);
  EXPECT_EQ(inner.cache_stats().hits, T - 1);
  // The values differ by layer: a value holds one routed term per layer, in layer order.
  EXPECT_GT(rel_err(want[2], want[3]), 0.1);
}

// (5) target=routed on a dense model has no routed term to skip: refused, naming the
// descriptor, its layers and the model's (absent) MoE layers.
TEST(RoutedTarget, RefusedOnADenseModel) {
  const Transformer m = load_tiny_dense();
  PolicyEnv e = moe_env_of(m);
  ASSERT_TRUE(e.moe_layers.empty());
  for (const std::string desc : {"static:layers=3,target=routed", "random:rate=0.1,target=routed",
                                 "residual:p=2,r=6,tau=0.9,target=routed", "static:k=2,target=routed"}) {
    try {
      make_policy(desc, e);
      ADD_FAILURE() << desc << " was built";
    } catch (const Error& err) {
      const std::string msg = err.what();
      EXPECT_NE(msg.find("'" + desc + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("MoE layers"), std::string::npos) << msg;
    }
  }
  EXPECT_NO_THROW(make_policy("static:layers=3,target=mlp", e));
}
