// The shared blocks against direct, loop-by-loop computations of their definitions.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "model/kv_cache.h"
#include "model/layers/attention.h"
#include "model/layers/attention_mask.h"
#include "model/layers/moe_block.h"
#include "model/layers/rms_norm.h"
#include "model/layers/rotary.h"
#include "model_test_util.h"

namespace semskip::test {
namespace {

TEST(Rotary, DefaultFrequenciesAreThetaPowers) {
  const at::Tensor f = rope_inv_freq(8, 10000.0, RopeScaling{}, "test");
  ASSERT_EQ(f.numel(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(f[i].item<double>(), std::pow(10000.0, -2.0 * i / 8), 1e-7 * f[i].item<double>());
  RopeScaling bad;
  bad.rope_type = "dynamic";
  EXPECT_THROW(rope_inv_freq(8, 10000.0, bad, "test"), Error);
}

TEST(Rotary, LinearScalingDividesEveryFrequency) {
  RopeScaling s;
  s.rope_type = "linear";
  s.factor = 4.0;
  const at::Tensor base = rope_inv_freq(64, 10000.0, RopeScaling{}, "test");
  EXPECT_TRUE(at::allclose(rope_inv_freq(64, 10000.0, s, "test"), base / 4.0));
}

// Llama 3.1's published recipe (theta 500000, head_dim 128, factor 8, low 1, high 4, original
// context 8192), evaluated per frequency in double precision.
TEST(Rotary, Llama3ScalingFollowsTheRecipe) {
  RopeScaling s;
  s.rope_type = "llama3";
  s.factor = 8.0;
  s.low_freq_factor = 1.0;
  s.high_freq_factor = 4.0;
  s.original_max_position_embeddings = 8192;
  const at::Tensor scaled = rope_inv_freq(128, 500000.0, s, "test");
  const at::Tensor base = rope_inv_freq(128, 500000.0, RopeScaling{}, "test");
  int n_kept = 0, n_divided = 0, n_smoothed = 0;
  for (int i = 0; i < 64; ++i) {
    const double f = base[i].item<double>();
    const double wavelen = 2 * M_PI / f;
    double expected;
    if (wavelen < 8192.0 / 4.0) {
      expected = f;
      ++n_kept;
    } else if (wavelen > 8192.0 / 1.0) {
      expected = f / 8.0;
      ++n_divided;
    } else {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      expected = (1 - smooth) * f / 8.0 + smooth * f;
      ++n_smoothed;
    }
    EXPECT_NEAR(scaled[i].item<double>(), expected, 1e-6 * f) << "frequency " << i;
  }
  EXPECT_GT(n_kept, 0);
  EXPECT_GT(n_divided, 0);
  EXPECT_GT(n_smoothed, 0);
}

TEST(Rotary, RotatesPairsByPositionTimesFrequency) {
  ModelConfig c;
  c.head_dim = 4;
  c.rope_theta = 100.0;
  const Rotary rot(c, at::kCPU);
  const at::Tensor x = at::randn({1, 1, 3, 4});
  const at::Tensor pos = at::tensor({0, 5, 2}, at::kLong).unsqueeze(0);
  const at::Tensor y = Rotary::apply(x, rot.table(pos, at::kFloat));
  for (int t = 0; t < 3; ++t) {
    const double p = pos[0][t].item<double>();
    for (int i = 0; i < 2; ++i) {
      const double angle = p * std::pow(100.0, -2.0 * i / 4);
      const double a = x[0][0][t][i].item<double>(), b = x[0][0][t][i + 2].item<double>();
      EXPECT_NEAR(y[0][0][t][i].item<double>(), a * std::cos(angle) - b * std::sin(angle), 1e-5);
      EXPECT_NEAR(y[0][0][t][i + 2].item<double>(), b * std::cos(angle) + a * std::sin(angle), 1e-5);
    }
  }
}

// Heads-after-tokens input (a fused q/k projection rotated in one pass) gives what the
// heads-first layout gives, and in bf16 both are bit-identical to the reference's arithmetic,
// x·cos + cat(−x₂, x₁)·sin, each product and the sum rounded to bf16.
TEST(Rotary, TokensFirstLayoutAndBf16MatchTheReferenceFormula) {
  ModelConfig c;
  c.head_dim = 8;
  c.rope_theta = 10000.0;
  const Rotary rot(c, at::kCPU);
  const at::Tensor pos = at::tensor({3, 0, 7, 1, 900}, at::kLong).view({1, 5});
  for (const at::ScalarType dt : {at::kFloat, at::kBFloat16}) {
    const RopeTable table = rot.table(pos, dt);
    const at::Tensor x = at::randn({1, 3, 5, 8}).to(dt);  // [B, H, T, hd]
    const at::Tensor ref = x * table.cos.unsqueeze(1) +
                           at::cat({-x.narrow(-1, 4, 4), x.narrow(-1, 0, 4)}, -1) * table.sin.unsqueeze(1);
    EXPECT_TRUE(at::equal(Rotary::apply(x, table), ref)) << c10::toString(dt);
    const at::Tensor tokens_first = Rotary::apply_tokens_first(x.transpose(1, 2).contiguous(), table);
    EXPECT_TRUE(at::equal(tokens_first.transpose(1, 2), ref)) << c10::toString(dt);
  }
}

TEST(RmsNorm, MatchesDefinition) {
  const at::Tensor x = at::randn({2, 3, 8});
  const RmsNorm n{at::rand({8}), 1e-5};
  const at::Tensor expected = x / at::sqrt(x.pow(2).mean(-1, true) + 1e-5) * n.weight;
  EXPECT_TRUE(at::allclose(n.forward(x), expected, 1e-5, 1e-6));
  const RmsNorm bf{n.weight.to(at::kBFloat16), 1e-5};
  const at::Tensor y = bf.forward(x.to(at::kBFloat16));
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::allclose(y.to(at::kFloat), expected, 2e-2, 2e-2));
}

// softmax(q·k/√d + mask)·v for one head at a time, with key head h / rep.
at::Tensor naive_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& allowed /* bool [B, Tq, Tk] */) {
  const int64_t batch = q.size(0), heads = q.size(1), tq = q.size(2), hd = q.size(3);
  const int64_t rep = heads / k.size(1);
  at::Tensor out = at::zeros({batch, tq, heads * hd}, at::kDouble);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h) {
      const at::Tensor s = at::matmul(q[b][h].to(at::kDouble), k[b][h / rep].to(at::kDouble).t()) / std::sqrt(double(hd));
      const at::Tensor p = at::softmax(s.masked_fill(allowed[b].logical_not(), -std::numeric_limits<double>::infinity()), -1);
      out[b].narrow(1, h * hd, hd).copy_(at::matmul(p, v[b][h / rep].to(at::kDouble)));
    }
  return out;
}

Attention make_attention(int64_t heads, int64_t kv_heads, int64_t hd, AttnImpl impl) {
  Attention a;
  a.n_heads = heads;
  a.n_kv_heads = kv_heads;
  a.head_dim = hd;
  a.impl = impl;
  return a;
}

TEST(Attention, GroupedHeadsCausalAndPaddedMasksMatchNaive) {
  for (AttnImpl impl : {AttnImpl::eager, AttnImpl::sdpa}) {
    for (int64_t kv_heads : {1, 2, 4}) {
      const Attention a = make_attention(4, kv_heads, 8, impl);
      const int64_t batch = 2, tk = 7;
      const at::Tensor k = at::randn({batch, kv_heads, tk, 8}), v = at::randn({batch, kv_heads, tk, 8});
      for (int64_t tq : {1, 3, 7}) {
        const at::Tensor q = at::randn({batch, 4, tq, 8});
        const at::Tensor slots = at::arange(tk - tq, tk, at::kLong);
        const at::Tensor causal = (at::arange(tk, at::kLong) <= slots.unsqueeze(1)).unsqueeze(0).expand({batch, tq, tk});
        // Plain causal (bottom-right aligned when Tq < Tk).
        const AttentionMask m = AttentionMask::causal_block(batch, tq, tk);
        EXPECT_TRUE(at::allclose(a.attend(q, k, v, m).to(at::kDouble), naive_attention(q, k, v, causal), 1e-5, 1e-5))
            << attn_impl_name(impl) << " kv " << kv_heads << " tq " << tq;
        // Sequence 0 left-padded by 2 slots.
        at::Tensor valid = at::ones({batch, tk}, at::kBool);
        valid[0].narrow(0, 0, 2).fill_(false);
        const AttentionMask pm = AttentionMask::from_slots(slots, valid, batch, tk, at::kFloat, true);
        at::Tensor allowed = causal.logical_and(valid.unsqueeze(1));
        allowed = allowed.logical_or(at::arange(tk, at::kLong) == slots.unsqueeze(1));
        EXPECT_TRUE(at::allclose(a.attend(q, k, v, pm).to(at::kDouble), naive_attention(q, k, v, allowed), 1e-5, 1e-5));
        EXPECT_EQ(pm.pairs_causal, allowed.sum().item<int64_t>());
        EXPECT_EQ(pm.pairs_dense, batch * tq * tk);
        EXPECT_EQ(m.pairs_causal, causal.sum().item<int64_t>());
      }
    }
  }
}

// Long query blocks under a per-row mask take the other sdpa layout (K/V repeated to every
// head, the mask broadcast), from 2·n_kv_heads·head_dim queries on: both layouts against the
// naive definition, on each side of that bound.
TEST(Attention, LongPaddedQueryBlocksMatchNaiveInBothLayouts) {
  for (AttnImpl impl : {AttnImpl::eager, AttnImpl::sdpa}) {
    for (int64_t kv_heads : {1, 2}) {
      const Attention a = make_attention(4, kv_heads, 8, impl);
      const int64_t batch = 3, tk = 40;
      const at::Tensor k = at::randn({batch, kv_heads, tk, 8}), v = at::randn({batch, kv_heads, tk, 8});
      for (int64_t tq : {1, 15, 16, 17, 33, 40}) {
        const at::Tensor q = at::randn({batch, 4, tq, 8});
        const at::Tensor slots = at::arange(tk - tq, tk, at::kLong);
        at::Tensor valid = at::ones({batch, tk}, at::kBool);
        valid[0].narrow(0, 0, 5).fill_(false);
        valid[2].narrow(0, 0, 11).fill_(false);
        const AttentionMask pm = AttentionMask::from_slots(slots, valid, batch, tk, at::kFloat, false);
        const at::Tensor causal = (at::arange(tk, at::kLong) <= slots.unsqueeze(1)).unsqueeze(0).expand({batch, tq, tk});
        const at::Tensor allowed =
            causal.logical_and(valid.unsqueeze(1)).logical_or(at::arange(tk, at::kLong) == slots.unsqueeze(1));
        EXPECT_TRUE(at::allclose(a.attend(q, k, v, pm).to(at::kDouble), naive_attention(q, k, v, allowed), 1e-5, 1e-5))
            << attn_impl_name(impl) << " kv " << kv_heads << " tq " << tq;
      }
    }
  }
}

TEST(MoeBlock, RoutesCombinesAndSharesAsThePerTokenDefinition) {
  const int64_t d = 6, inter = 5, n_experts = 4, n_tokens = 9;
  const auto lin = [](int64_t out, int64_t in) { return Linear{at::randn({out, in}) * 0.3, at::Tensor()}; };
  const auto mlp = [&](int64_t width) { return SwiGluMlp{lin(width, d), lin(width, d), lin(d, width)}; };
  for (bool norm : {false, true}) {
    MoeBlock moe;
    moe.router = lin(n_experts, d);
    for (int64_t e = 0; e < n_experts; ++e) moe.experts.push_back(mlp(inter));
    moe.top_k = 2;
    moe.norm_topk_prob = norm;
    moe.shared = mlp(3);
    moe.shared_gate = lin(1, d);
    const at::Tensor x = at::randn({n_tokens, d});
    FlopCounter flops;
    Routing r;
    const at::Tensor y = moe.forward(x, &flops, 0, &r);
    for (int64_t t = 0; t < n_tokens; ++t) {
      const at::Tensor p = at::softmax(at::matmul(moe.router.weight, x[t]), 0);
      const auto [w, ids] = at::topk(p, 2);
      EXPECT_TRUE(at::equal(r.topk_ids[t], ids));
      const at::Tensor weights = norm ? w / w.sum() : w;
      at::Tensor expected = at::sigmoid(at::dot(moe.shared_gate.weight[0], x[t])) * moe.shared->forward(x[t]);
      for (int j = 0; j < 2; ++j) expected = expected + weights[j] * moe.experts[ids[j].item<int64_t>()].forward(x[t]);
      EXPECT_TRUE(at::allclose(y[t], expected, 1e-5, 1e-5)) << "token " << t;
    }
    // Only the routed rows are charged to the experts: k rows per token.
    EXPECT_EQ(flops.by_group(OpGroup::experts), n_tokens * 2 * 6 * d * inter);
    EXPECT_EQ(flops.by_group(OpGroup::router), 2 * n_tokens * n_experts * d);
    EXPECT_EQ(flops.by_group(OpGroup::shared_expert), n_tokens * (6 * d * 3 + 2 * d));
    const ExpertDispatch plan = moe.dispatch(r);
    int64_t sum = 0;
    for (int64_t c : plan.counts) sum += c;
    EXPECT_EQ(sum, n_tokens * 2);
    EXPECT_EQ(moe.n_params_active(), moe.n_params() - 2 * moe.experts[0].n_params());
    // No rows at all (a rank whose tokens all skipped this layer still joins it).
    const at::Tensor none = moe.forward(at::zeros({0, d}));
    EXPECT_EQ(none.sizes(), (at::IntArrayRef{0, d}));
  }
}

// Exactly tied router logits. Hugging Face routes with torch.topk on the fp32 softmax of the
// router logits, so ties resolve in topk's order; at::topk on the same probabilities is the
// second implementation here (not an assumed order: a stable sort or a lowest-index rule
// would differ on token 2). Token t's logits are column t of the
// router weight (x_t = e_t), chosen exactly representable: a tie for first place, a tie for
// the last routed slot, all experts equal, and a tie just below the routed slots.
TEST(MoeBlock, TiedRouterLogitsResolveAsTopkOfTheSoftmax) {
  const int64_t d = 4, n_experts = 5, inter = 3;
  at::manual_seed(11);
  const auto lin = [](int64_t out, int64_t in) { return Linear{at::randn({out, in}) * 0.3, at::Tensor()}; };
  const at::Tensor logits = at::tensor({0.5f, 2.0f, 1.0f, 2.0f, -1.0f,    // token 0: experts 1 and 3 tie for first
                                        0.5f, 1.0f, 2.0f, 1.0f, -1.0f,    // token 1: 1 and 3 tie for second
                                        0.25f, 0.25f, 0.25f, 0.25f, 0.25f,  // token 2: all equal
                                        3.0f, 2.0f, 0.0f, 0.0f, 0.0f})      // token 3: 2, 3, 4 tie below top-2
                                .view({d, n_experts});
  const at::Tensor x = at::eye(d);
  for (bool norm : {false, true}) {
    SCOPED_TRACE(norm ? "norm_topk_prob" : "raw weights");
    MoeBlock moe;
    moe.router = Linear{logits.t().contiguous(), at::Tensor()};  // [E, d]: column t = token t's logits
    for (int64_t e = 0; e < n_experts; ++e) moe.experts.push_back({lin(inter, d), lin(inter, d), lin(d, inter)});
    moe.top_k = 2;
    moe.norm_topk_prob = norm;
    Routing r;
    const at::Tensor y = moe.forward(x, nullptr, 0, &r);
    ASSERT_TRUE(at::equal(r.router_logits, logits));  // the ties are exact
    const auto [want_w, want_ids] = at::topk(at::softmax(logits, -1, at::kFloat), 2, -1);
    EXPECT_TRUE(at::equal(r.topk_ids, want_ids)) << r.topk_ids << "\nwant\n" << want_ids;
    // Weights: the softmax computed by hand in fp64, renormalised over the two when asked.
    const at::Tensor p = at::softmax(logits.to(at::kDouble), -1);
    for (int64_t t = 0; t < d; ++t) {
      const int64_t a = want_ids[t][0].item<int64_t>(), b = want_ids[t][1].item<int64_t>();
      const double pa = p[t][a].item<double>(), pb = p[t][b].item<double>();
      const double wa = norm ? pa / (pa + pb) : pa, wb = norm ? pb / (pa + pb) : pb;
      EXPECT_NEAR(r.topk_weights[t][0].item<double>(), wa, 1e-7) << "token " << t;
      EXPECT_NEAR(r.topk_weights[t][1].item<double>(), wb, 1e-7) << "token " << t;
      at::Tensor expected = wa * moe.experts[static_cast<size_t>(a)].forward(x[t]) +
                            wb * moe.experts[static_cast<size_t>(b)].forward(x[t]);
      EXPECT_TRUE(at::allclose(y[t], expected, 1e-5, 1e-6)) << "token " << t;
    }
    // Tied experts get bit-equal weights; the selected set is the hand-derived one.
    EXPECT_TRUE(at::equal(r.topk_weights[0][0], r.topk_weights[0][1]));
    EXPECT_TRUE(at::equal(r.topk_weights[2][0], r.topk_weights[2][1]));
    EXPECT_EQ(to_vector(std::get<0>(at::sort(r.topk_ids[0]))), (std::vector<int64_t>{1, 3}));
    EXPECT_EQ(r.topk_ids[1][0].item<int64_t>(), 2);
    EXPECT_EQ(r.topk_ids[3][0].item<int64_t>(), 0);
    EXPECT_EQ(r.topk_ids[3][1].item<int64_t>(), 1);
  }
  // What topk does on CPU is not "the lower index first": two tied experts come lower first
  // (tokens 0 and 1), but of five equal probabilities LibTorch 1.13 returns experts 2 and 4
  // (its selection is not stable). semskip follows topk, the kernel Hugging Face calls, rather
  // than a rule of its own; the order seen is recorded, so a LibTorch that changes it shows.
  const at::Tensor ids = std::get<1>(at::topk(at::softmax(logits, -1, at::kFloat), 2, -1));
  std::string order;
  for (int64_t t = 0; t < d; ++t) order += fmt::format("{}{},{}", t ? " " : "", ids[t][0].item<int64_t>(), ids[t][1].item<int64_t>());
  RecordProperty("topk_tie_order", order);
  std::printf("at::topk on tied probabilities (tokens 0..3): %s\n", order.c_str());
}

// bf16 rounding of the router logits creates ties the fp32 logits do not have: expert 3's
// logit 1 + 2⁻⁸ is exactly halfway between two bf16 values and rounds (to even) onto expert
// 1's logit 1. In bf16 the routing is that of the tie (at::topk of the rounded logits' fp32
// softmax, as Hugging Face computes it in bf16); in fp32 expert 3 wins outright.
TEST(MoeBlock, Bf16RoundingTiesAreRoutedAsTopkOfTheRoundedLogits) {
  const int64_t d = 2, inter = 3;
  at::manual_seed(12);
  at::Tensor w = at::zeros({4, d});
  w[0][0] = 0.5f;                       // logit 0.5
  w[1][0] = 1.0f;                       // logit 1
  w[2][0] = -1.0f;                      // logit −1
  w[3][0] = 1.0f;                       // logit 1 + 2⁻⁸
  w[3][1] = std::ldexp(1.0f, -8);
  const at::Tensor x = at::ones({1, d});
  for (at::ScalarType t : {at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE(c10::toString(t));
    MoeBlock moe;
    moe.router = Linear{w.to(t), at::Tensor()};
    for (int64_t e = 0; e < 4; ++e) {
      const auto lin = [&](int64_t out, int64_t in) { return Linear{(at::randn({out, in}) * 0.3).to(t), at::Tensor()}; };
      moe.experts.push_back({lin(inter, d), lin(inter, d), lin(d, inter)});
    }
    moe.top_k = 2;
    const Routing r = moe.route(x.to(t));
    const at::Tensor l = r.router_logits.to(at::kFloat);
    const auto [want_w, want_ids] = at::topk(at::softmax(l, -1, at::kFloat), 2, -1);
    EXPECT_TRUE(at::equal(r.topk_ids, want_ids));
    EXPECT_TRUE(at::allclose(r.topk_weights.to(at::kFloat), want_w, 1e-2, 0.0));
    if (t == at::kFloat) {
      EXPECT_EQ(to_vector(r.topk_ids[0]), (std::vector<int64_t>{3, 1}));
      EXPECT_GT(l[0][3].item<float>(), l[0][1].item<float>());
    } else {
      EXPECT_EQ(l[0][3].item<float>(), l[0][1].item<float>());  // rounded onto each other
      EXPECT_EQ(to_vector(std::get<0>(at::sort(r.topk_ids[0]))), (std::vector<int64_t>{1, 3}));
      EXPECT_TRUE(at::equal(r.topk_weights[0][0], r.topk_weights[0][1]));
    }
  }
}

TEST(KvCache, AppendsGrowsAndTracksPadding) {
  KvCache cache(2, 2, 1, 4, 2, at::kFloat, at::kCPU);
  const at::Tensor k1 = at::randn({2, 1, 3, 4}), v1 = at::randn({2, 1, 3, 4});
  auto [k, v] = cache.append(0, k1, v1);
  EXPECT_EQ(cache.capacity(), 4);
  EXPECT_EQ(cache.length(0), 3);
  EXPECT_EQ(cache.length(1), 0);
  EXPECT_TRUE(at::equal(k, k1));
  const at::Tensor k2 = at::randn({2, 1, 2, 4});
  std::tie(k, v) = cache.append(0, k2, k2);
  EXPECT_EQ(cache.capacity(), 8);
  EXPECT_TRUE(at::equal(k, at::cat({k1, k2}, 2)));
  EXPECT_TRUE(at::equal(v.narrow(2, 0, 3), v1));
  EXPECT_FALSE(cache.has_padding());
  cache.set_valid(0, 3, at::tensor({0, 1, 1, 1, 1, 1}).to(at::kBool).view({2, 3}));
  EXPECT_TRUE(cache.has_padding());
  EXPECT_EQ(to_vector(cache.n_valid_before(3)), (std::vector<int64_t>{2, 3}));
  cache.clear();
  EXPECT_EQ(cache.length(0), 0);
  EXPECT_FALSE(cache.has_padding());
}

}  // namespace
}  // namespace semskip::test
