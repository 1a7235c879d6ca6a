// The K/V a block-skipped token leaves in the cache (kv=propagate, kv=mask, kv=exact), checked
// by hand on tiny-dense: one token skips a known span p+1..r with a known update Δ, and the
// cache's keys and values at those layers are compared with K/V computed in the test from the
// model's own layers (norm, q/k/v projections, rotary) on the states they should come from —
// the full model's (exact), the exact h_p at p+1 and h_p + Δ after it (propagate) — or found
// hidden (mask). Then kv=exact through the evaluator: with no skips it is the full model, with
// hits it is at least as close to the full model as kv=propagate, and generation refuses it.
#include <gtest/gtest.h>

#include <iostream>
#include <string>
#include <vector>

#include "../model/model_test_util.h"
#include "../skip/policy_test_env.h"
#include "engine/evaluator.h"
#include "engine/skip_engine.h"
#include "metrics/flop_counter.h"
#include "model/hooks.h"
#include "skip/baseline_policies.h"
#include "tokenizer/tokenizer.h"

using namespace semskip;
using namespace semskip::test;

namespace {

constexpr int64_t kP = 2, kR = 5;  // probe and resume layer of the skipped span
constexpr int64_t kToken = 5, kT = 24;

Transformer load_tiny_dense() {
  ModelOptions o;
  o.dtype = DType::fp32;
  return Transformer::load(embedded_model("tiny-dense"), o);
}

// Real text of the held-out sample, tokenized.
std::vector<int32_t> text_tokens(int64_t n) {
  const Tokenizer tok = Tokenizer::from_file(embedded_model("tiny-dense") + "/tokenizer.json");
  const std::string text = read_file(std::string(SEMSKIP_SOURCE_DIR) + "/workloads/samples/heldout_sample.txt");
  std::vector<int32_t> ids = tok.encode(text);
  EXPECT_GE(static_cast<int64_t>(ids.size()), n);
  ids.resize(static_cast<size_t>(n));
  return ids;
}

at::Tensor ids_of(const std::vector<int32_t>& v) {
  return at::tensor(std::vector<int64_t>(v.begin(), v.end()), at::kLong).unsqueeze(0);  // [1, n]
}

// What a residual hit does, written by hand: token `token` of the prefill skips blocks
// p+1..r and receives `delta` before block p+2 (the residual policy's jump layer).
class SpanSkip : public SkipPolicy {
 public:
  SpanSkip(at::Tensor delta, KvMode kv) : delta_(std::move(delta)), kv_(kv) {}
  std::string describe() const override { return std::string("span-skip,kv=") + kv_mode_name(kv_); }
  KvMode kv_mode() const override { return kv_; }
  void begin_step(StepContext& ctx) override {
    if (!ctx.prefill()) return;
    for (int64_t l = kP + 1; l <= kR; ++l) ctx.skip_block(l)[0][kToken].fill_(true);
    ctx.jump(kP + 2, delta_.options())[0][kToken].copy_(delta_);
  }

 private:
  at::Tensor delta_;  // [d]
  KvMode kv_;
};

// The full model's residual stream through its plain forward (hooks, no plan): [L+1, 1, T, d],
// index l the input of block l, index L the last block's output.
at::Tensor full_states_by_hooks(const Transformer& m, const at::Tensor& ids) {
  const int64_t L = m.config().n_layers;
  std::vector<at::Tensor> states(static_cast<size_t>(L + 1));
  HookSet hooks;
  for (int64_t l = 0; l < L; ++l) {
    hooks.add(l, HookPoint::resid_pre, [&states, l](const at::Tensor& x, const HookSite&) {
      states[static_cast<size_t>(l)] = x.clone();
      return std::optional<at::Tensor>();
    });
  }
  hooks.add(L - 1, HookPoint::resid_post, [&states, L](const at::Tensor& x, const HookSite&) {
    states[static_cast<size_t>(L)] = x.clone();
    return std::optional<at::Tensor>();
  });
  ForwardOptions fo;
  fo.hooks = &hooks;
  m.forward(ids, fo);
  return at::stack(states);
}

// K and V of layer `layer` for one token at position `pos` entering the block with state
// h [d], by the model's layers: [n_kv_heads, head_dim] each.
std::pair<at::Tensor, at::Tensor> kv_by_hand(const Transformer& m, int64_t layer, const at::Tensor& h, int64_t pos) {
  const DecoderLayer& blk = m.layer(layer);
  const RopeTable rope = m.rotary().table(at::full({1, 1}, pos, at::kLong), h.scalar_type());
  const Qkv qkv = blk.attention.project_qkv(blk.input_norm.forward(h.view({1, 1, -1})), rope);
  return {qkv.k[0].select(1, 0), qkv.v[0].select(1, 0)};  // [n_kv_heads, head_dim]
}

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

struct SkipRun {
  SkipKvCache kv;
  FlopCounter flops;
  LayerCounts counts;
};

SkipRun run_span_skip(const Transformer& m, const at::Tensor& ids, const at::Tensor& full, const at::Tensor& delta,
                      KvMode mode, RowExec exec) {
  SkipEngine engine(m, nullptr, exec);
  SpanSkip policy(delta, mode);
  SkipRun out{engine.make_cache(1, kT), FlopCounter(), LayerCounts(m.config().n_layers)};
  StepContext ctx(m.config().n_layers, m.config().hidden_size, at::ones(ids.sizes(), at::kBool), {0}, true);
  ctx.flops = &out.flops;
  if (policy.needs_full_states()) ctx.full_states = full;
  engine.step(ids, ctx, out.kv, policy, &out.flops, &out.counts);
  return out;
}

}  // namespace

// The hand-check: the cache's K/V of the skipped token at layers p+1..r under each rule, in
// every row-execution mode, against K/V computed in the test; the other layers' and tokens'
// entries as the full model's (layers ≤ p) or present (running tokens).
TEST(KvExact, SkippedTokensKvByHand) {
  const Transformer m = load_tiny_dense();
  const int64_t L = m.config().n_layers;
  const at::Tensor ids = ids_of(text_tokens(kT));
  const at::Tensor full = full_states_by_hooks(m, ids);  // [L+1, 1, T, d]
  const at::Tensor hp = full[kP + 1][0][kToken];         // the exact h_p
  // Δ: not the full model's h_r − h_p, so that h_p + Δ is no state the full model has.
  const at::Tensor delta = 0.7 * (full[kR + 1][0][kToken] - hp);

  for (RowExec exec : {RowExec::gather, RowExec::bucket, RowExec::mask}) {
    const std::string where = row_exec_name(exec);
    SkipRun exact = run_span_skip(m, ids, full, delta, KvMode::exact, exec);
    SkipRun prop = run_span_skip(m, ids, full, delta, KvMode::propagate, exec);
    SkipRun mask = run_span_skip(m, ids, full, delta, KvMode::mask, exec);
    for (int64_t l = 0; l < L; ++l) {
      const std::string at_l = where + ", layer " + std::to_string(l);
      const auto [k_full, v_full] = kv_by_hand(m, l, full[l][0][kToken], kToken);
      const at::Tensor ke = exact.kv.keys(l, kT)[0].select(1, kToken), ve = exact.kv.values(l, kT)[0].select(1, kToken);
      const at::Tensor kp = prop.kv.keys(l, kT)[0].select(1, kToken), vp = prop.kv.values(l, kT)[0].select(1, kToken);
      if (l <= kP) {
        // Before the span every rule leaves the full model's K/V.
        EXPECT_LT(max_abs(ke, k_full), 1e-5) << at_l;
        EXPECT_LT(max_abs(kp, k_full), 1e-5) << at_l;
      }
      if (l < kP + 1 || l > kR) {
        EXPECT_TRUE(mask.kv.key_valid(l, kT)[0][kToken].item<bool>()) << at_l;
        continue;
      }
      // (i) kv=exact: the full model's K/V of the token at this layer.
      EXPECT_LT(rel_err(ke, k_full), 1e-6) << at_l;
      EXPECT_LT(rel_err(ve, v_full), 1e-6) << at_l;
      // (ii) kv=propagate: from the exact h_p at p+1, from h_p + Δ at p+2..r.
      const at::Tensor state = l == kP + 1 ? hp : hp + delta;
      const auto [k_prop, v_prop] = kv_by_hand(m, l, state, kToken);
      EXPECT_LT(rel_err(kp, k_prop), 1e-6) << at_l;
      EXPECT_LT(rel_err(vp, v_prop), 1e-6) << at_l;
      // Layer p+1's input is the exact h_p, so there the two rules agree; after it they do not.
      if (l == kP + 1) EXPECT_LT(rel_err(kp, ke), 1e-6) << at_l;
      else EXPECT_GT(rel_err(kp, ke), 1e-2) << at_l;
      // (iii) kv=mask: the token is hidden at this layer and only there; the others are not.
      const at::Tensor vis = mask.kv.key_valid(l, kT)[0];
      EXPECT_FALSE(vis[kToken].item<bool>()) << at_l;
      EXPECT_EQ(vis.sum().item<int64_t>(), kT - 1) << at_l;
      EXPECT_TRUE(exact.kv.key_valid(l, kT)[0].all().item<bool>()) << at_l;
      EXPECT_TRUE(prop.kv.key_valid(l, kT)[0].all().item<bool>()) << at_l;
    }
    // kv=exact is a reference: its K/V are not charged, nor counted as propagated.
    EXPECT_EQ(exact.flops.by_group(OpGroup::kv_propagate), 0) << where;
    EXPECT_EQ(prop.flops.by_group(OpGroup::kv_propagate), exec == RowExec::mask ? 0 : (kR - kP) * 2 * (2 * 256 * 2 * 64))
        << where;
    for (int64_t l = kP + 1; l <= kR; ++l) {
      EXPECT_EQ(exact.counts.n_kv_propagated[l], 0) << where;
      EXPECT_EQ(exact.counts.n_block_skip[l], 1) << where;
      EXPECT_EQ(prop.counts.n_kv_propagated[l], 1) << where;
    }
  }
}

// kv=exact without the full model's states of the step is refused, naming the policy.
TEST(KvExact, RefusedWithoutFullStates) {
  const Transformer m = load_tiny_dense();
  const at::Tensor ids = ids_of(text_tokens(kT));
  SkipEngine engine(m);
  SpanSkip policy(at::zeros({m.config().hidden_size}), KvMode::exact);
  SkipKvCache kv = engine.make_cache(1, kT);
  StepContext ctx(m.config().n_layers, m.config().hidden_size, at::ones(ids.sizes(), at::kBool), {0}, true);
  try {
    engine.step(ids, ctx, kv, policy, nullptr, nullptr);
    FAIL() << "a kv=exact step without full states ran";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("policy 'span-skip,kv=exact': kv=exact needs the full model's states"),
              std::string::npos)
        << e.what();
  }
}

namespace {

// Consecutive chunks of the held-out sample as teacher-forced requests.
std::vector<Request> chunks(int64_t n, int64_t len) {
  const std::vector<int32_t> ids = text_tokens(n * len);
  std::vector<Request> out;
  for (int64_t i = 0; i < n; ++i) {
    Request r;
    r.id = i;
    r.document = "document:0";
    r.prompt_tokens.assign(ids.begin() + i * len, ids.begin() + (i + 1) * len);
    out.push_back(std::move(r));
  }
  return out;
}

struct Agreement {
  int64_t positions = 0, matches = 0, hits = 0;
  double kl = 0.0;
  double top1() const { return static_cast<double>(matches) / static_cast<double>(positions); }
};

Agreement agreement(const PolicyResult& r) {
  Agreement a;
  for (const RequestRecord& rec : r.requests) {
    a.positions += rec.accuracy.n_positions;
    a.matches += rec.accuracy.n_top1_match;
    a.kl += rec.accuracy.kl_sum;
  }
  a.hits = r.cache.hits;
  return a;
}

}  // namespace

// Through the evaluator: the descriptor's kv=exact reaches the engine with the full pass's
// states; with no skips it is the full model exactly; with hits (the shipped sample's repeated
// phrasing) it agrees with the full model at least as well as kv=propagate, which agrees better
// than kv=mask; and it charges no K/V.
TEST(KvExact, EvaluatorAgreement) {
  const Transformer m = load_tiny_dense();
  const PolicyEnv env = policy_env(m.config(), 100000);
  const std::vector<Request> calib_req = chunks(4, 64);
  const std::vector<Request> all = chunks(28, 64);
  const std::vector<Request> requests(all.begin() + 4, all.end());
  EvalOptions o;
  Evaluator ev(m, o);
  const CalibrationSet calib = ev.calibrate(calib_req);
  std::vector<std::unique_ptr<SkipPolicy>> policies;
  for (const char* d : {"random:rate=0,kv=exact", "residual:p=2,r=5,tau=0.95,kv=exact",
                        "residual:p=2,r=5,tau=0.95", "residual:p=2,r=5,tau=0.95,kv=mask"})
    policies.push_back(make_policy(d, env));
  EXPECT_TRUE(policies[1]->needs_full_states());
  EXPECT_FALSE(policies[2]->needs_full_states());
  const std::vector<PolicyResult> res = ev.run(requests, policies, calib);
  ASSERT_EQ(res.size(), 4u);
  const Agreement none = agreement(res[0]), exact = agreement(res[1]), prop = agreement(res[2]), mask = agreement(res[3]);
  EXPECT_EQ(res[1].policy, "residual:p=2,r=5,tau=0.95,kv=exact");
  // No skips: the full model.
  EXPECT_EQ(none.matches, none.positions);
  EXPECT_LT(none.kl, 1e-9);
  // With hits.
  ASSERT_GT(exact.hits, 0);
  ASSERT_GT(prop.hits, 0);
  EXPECT_LT(prop.top1(), 1.0);
  EXPECT_GE(exact.top1(), prop.top1()) << "exact " << exact.top1() << ", propagate " << prop.top1();
  EXPECT_GT(prop.top1(), mask.top1()) << "propagate " << prop.top1() << ", mask " << mask.top1();
  EXPECT_LT(exact.kl, prop.kl);
  EXPECT_EQ(res[1].flops_skip.by_group(OpGroup::kv_propagate), 0);
  EXPECT_GT(res[2].flops_skip.by_group(OpGroup::kv_propagate), 0);
  std::cout << "top-1 agreement: exact " << exact.top1() << " (" << exact.hits << " hits), propagate " << prop.top1()
            << " (" << prop.hits << "), mask " << mask.top1() << " (" << mask.hits << ")\n";
}

// Generation has no full-model K/V for tokens that diverge: kv=exact is refused with
// max-new-tokens > 0, before any work, naming the policy; teacher-forced it is accepted.
TEST(KvExact, RefusedWithGeneration) {
  const Transformer m = load_tiny_dense();
  const std::unique_ptr<SkipPolicy> p =
      make_policy("residual:p=2,r=5,tau=0.95,kv=exact", policy_env(m.config(), 100000));
  EXPECT_EQ(p->kv_mode(), KvMode::exact);
  EXPECT_NO_THROW(check_policy_requirements(*p, true, 0));
  try {
    check_policy_requirements(*p, true, 8);
    FAIL() << "kv=exact accepted with generation";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("policy 'residual:p=2,r=5,tau=0.95,kv=exact': kv=exact takes skipped "
                                         "tokens' K/V from the full model's run"),
              std::string::npos)
        << e.what();
  }
  const std::unique_ptr<SkipPolicy> r = make_policy("random:rate=0.1,kv=exact", policy_env(m.config(), 100000));
  EXPECT_TRUE(r->needs_full_states());
  EXPECT_THROW(make_policy("residual:p=2,r=5,tau=0.95,kv=exakt", policy_env(m.config(), 100000)), std::exception);
  EXPECT_THROW(make_policy("residual:p=2,r=5,tau=0.95,target=mlp,kv=exact", policy_env(m.config(), 100000)),
               std::exception);
}
