#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <tuple>

#include "core/error.h"
#include "metrics/flop_counter.h"
#include "policy_test_env.h"
#include "skip/baseline_policies.h"
#include "skip/block_influence.h"
#include "skip/local_cache.h"
#include "skip/plan_policy.h"
#include "skip/residual_policy.h"

using namespace semskip;

namespace {

PolicyEnv env(int64_t n_layers = 6, int64_t hidden = 8) { return test::policy_env(n_layers, hidden, 64); }

StepContext ctx_of(int64_t B, int64_t S, int64_t n_layers = 6, int64_t hidden = 8) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < B; ++b) rows.push_back(b);
  return StepContext(n_layers, hidden, at::ones({B, S}, at::kBool), rows, true);
}

at::Generator seeded(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// [1, 1, d]: the basis vector e_axis.
at::Tensor all_along_axis(int64_t axis, int64_t d) {
  at::Tensor h = at::zeros({1, 1, d});
  h[0][0][axis] = 1.0f;
  return h;
}

// One step of a p=0, r=1 policy whose tokens have the states hp after block 0 and hr after block 1.
void step_p0_r1(SkipPolicy& p, const at::Tensor& hp, const at::Tensor& hr, int64_t L, int64_t d) {
  StepContext c = ctx_of(1, hp.size(1), L, d);
  p.begin_step(c);
  p.after_layer(0, hp, c);
  p.after_layer(1, hr, c);
  p.end_step(c);
}

// [1, S, d] states whose token j is the basis vector e_{ids[j]}.
at::Tensor tokens(const std::vector<int64_t>& ids, int64_t d) {
  at::Tensor h = at::zeros({1, static_cast<int64_t>(ids.size()), d});
  for (size_t j = 0; j < ids.size(); ++j) h[0][static_cast<int64_t>(j)][ids[j]] = 1.0f;
  return h;
}

struct StepOut {
  at::Tensor hit;   // bool [S]: the token skips block p + 1
  at::Tensor jump;  // [S, d] added before block p + 2 (p + 1 the last layer: p + 1); undefined without hits
};

// One step of a block-target cache policy with probe p and resume r: hp [1, S, d] the states
// after block p, hr those after block r (the misses' values are hr − hp).
StepOut step(SkipPolicy& pol, int64_t p, int64_t r, const at::Tensor& hp, const at::Tensor& hr, int64_t L,
             int64_t d) {
  StepContext c = ctx_of(1, hp.size(1), L, d);
  pol.begin_step(c);
  pol.after_layer(p, hp, c);
  StepOut o;
  o.hit = c.skip_block_or_null(p + 1).defined() ? c.skip_block(p + 1)[0].clone()
                                                : at::zeros({hp.size(1)}, at::kBool);
  const int64_t jl = p + 2 < L ? p + 2 : p + 1;
  if (c.jump_or_null(jl).defined()) o.jump = c.jump_or_null(jl)[0].clone();
  pol.after_layer(r, hr, c);
  pol.end_step(c);
  return o;
}

// A SkipCache that records what a policy asks of it, over a LocalCache.
struct Recorded {
  int64_t key_dim = -1, value_dim = -1;
  CacheOptions opts;
  std::vector<at::Tensor> searched, inserted;  // keys of each call
};

class RecordingCache final : public SkipCache {
 public:
  RecordingCache(std::shared_ptr<Recorded> rec, int64_t key_dim, int64_t value_dim, const CacheOptions& o)
      : rec_(std::move(rec)), inner_(key_dim, value_dim, o) {
    rec_->key_dim = key_dim, rec_->value_dim = value_dim, rec_->opts = o;
  }
  Match search(const at::Tensor& keys, int64_t k, FlopCounter* flops, int layer) override {
    rec_->searched.push_back(keys.clone());
    return inner_.search(keys, k, flops, layer);
  }
  at::Tensor fetch(const at::Tensor& handles, const at::Tensor& use, at::Device device) override {
    return inner_.fetch(handles, use, device);
  }
  void insert(const at::Tensor& keys, const at::Tensor& values) override {
    rec_->inserted.push_back(keys.clone());
    inner_.insert(keys, values);
  }
  void count_lookups(int64_t lookups, int64_t hits, int64_t vetoed) override {
    inner_.count_lookups(lookups, hits, vetoed);
  }
  CacheStats stats() const override { return inner_.stats(); }
  std::string index_descriptor() const override { return inner_.index_descriptor(); }

 private:
  std::shared_ptr<Recorded> rec_;
  LocalCache inner_;
};

PolicyEnv recording_env(const std::shared_ptr<Recorded>& rec, int64_t n_layers, int64_t hidden) {
  PolicyEnv e = env(n_layers, hidden);
  e.make_cache = [rec](int64_t kd, int64_t vd, const CacheOptions& o) -> std::unique_ptr<SkipCache> {
    return std::make_unique<RecordingCache>(rec, kd, vd, o);
  };
  return e;
}

// Max |a − b·s| over columns, s_j = ±1 the sign that best aligns column j of b with a's.
double max_diff_up_to_column_sign(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor s = (a * b).sum(0).sign();
  return (a - b * s).abs().max().item<double>();
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

// A static MLP-level skip's step: exactly `layers` skip their MLP for every token (known to
// every rank), no block is skipped.
void expect_every_token_skips_the_mlp_of(StepContext& cs, int64_t n_layers, const std::vector<int64_t>& layers) {
  for (int64_t l = 0; l < n_layers; ++l) {
    const bool chosen = std::find(layers.begin(), layers.end(), l) != layers.end();
    EXPECT_FALSE(cs.skip_block_or_null(l).defined()) << l;
    EXPECT_EQ(cs.skip_mlp_or_null(l).defined(), chosen) << l;
    if (chosen) { EXPECT_TRUE(cs.skip_mlp(l).all().item<bool>()) << l; }
    EXPECT_EQ(cs.skipped_by_all(l), chosen) << l;
  }
}

// target=mlp: the same (token, layer) choices as target=block, written as MLP skips; the
// block and its K/V stay; a static MLP skip is known to every rank.
TEST(Policies, BaselinesWithTargetMlpSkipTheMlpOnly) {
  StaticPolicy s(Descriptor::parse("static:layers=2+3,target=mlp"), 6);
  StepContext cs = ctx_of(2, 3);
  s.begin_step(cs);
  expect_every_token_skips_the_mlp_of(cs, 6, {2, 3});
  for (int64_t l = 0; l < 6; ++l) EXPECT_FALSE(s.skips_layer_everywhere(l)) << l;  // attention still runs there
  RandomPolicy block(Descriptor::parse("random:rate=0.25,layers=1+2"), 6, 3);
  RandomPolicy mlp(Descriptor::parse("random:rate=0.25,layers=1+2,target=mlp"), 6, 3);
  StepContext cb = ctx_of(4, 500), cm = ctx_of(4, 500);
  block.begin_step(cb);
  mlp.begin_step(cm);
  for (int64_t l : {1, 2}) {
    EXPECT_FALSE(cm.skip_block_or_null(l).defined());
    EXPECT_TRUE(at::equal(cm.skip_mlp(l), cb.skip_block(l))) << l;  // same stream, same pairs
    EXPECT_FALSE(cm.skipped_by_all(l));
  }
  for (const char* d : {"random:rate=0.2,target=mlp,kv=mask", "static:k=2,target=attention", "static:layers=1,kv=mask"})
    EXPECT_THROW(make_policy(d, env()), Error) << d;
  EXPECT_EQ(make_policy("static:layers=2+3,target=mlp", env())->describe(), "static:layers=2+3,target=mlp");
}

// The message of the semskip::Error that building `desc` throws ("" when it builds).
std::string refusal(const std::string& desc, const PolicyEnv& e) {
  try {
    make_policy(desc, e);
  } catch (const Error& err) {
    return err.what();
  }
  return "";
}

// target=routed: MLP skips of the MoE layers only (dense layers have no routed term), marked
// routed-only for the engine; refused where the chosen layers are all dense.
TEST(Policies, BaselinesWithTargetRoutedSkipTheRoutedTermOfMoeLayersOnly) {
  const std::vector<int64_t> moe = {2, 3, 4, 5};  // layers 0 and 1 dense
  StaticPolicy s(Descriptor::parse("static:layers=1+2+3,target=routed"), 6, moe);
  EXPECT_TRUE(s.skips_routed_only());
  EXPECT_EQ(s.layers(), (std::vector<int64_t>{2, 3}));
  StepContext cs = ctx_of(2, 3);
  s.begin_step(cs);
  expect_every_token_skips_the_mlp_of(cs, 6, {2, 3});
  EXPECT_FALSE(StaticPolicy(Descriptor::parse("static:layers=2,target=mlp"), 6, moe).skips_routed_only());
  // random: layer 1 is dense and never drawn; layer 2 at the rate.
  RandomPolicy r(Descriptor::parse("random:rate=0.25,layers=1+2,target=routed"), 6, 3, moe);
  EXPECT_TRUE(r.skips_routed_only());
  StepContext cr = ctx_of(4, 500);
  r.begin_step(cr);
  EXPECT_FALSE(cr.skip_mlp_or_null(1).defined());
  EXPECT_FALSE(cr.skip_block_or_null(2).defined());
  EXPECT_NEAR(cr.skip_mlp(2).to(at::kFloat).mean().item<double>(), 0.25, 0.02);
  // static:k chooses among the MoE layers: layers 0 and 1 (dense) have the lowest influence here.
  StaticPolicy k(Descriptor::parse("static:k=2,target=routed"), 6, moe);
  // Block l turns every state by angle[l] in the (e0, e1) plane: BI_l = 1 − cos(angle[l]).
  const std::vector<double> angle = {0.01, 0.02, 0.5, 0.4, 0.05, 0.3};
  CalibrationSet calib;
  calib.states = at::zeros({7, 4, 8});
  double acc = 0.0;
  for (int64_t i = 0; i <= 6; ++i) {
    calib.states[i].select(1, 0).fill_(std::cos(acc));
    calib.states[i].select(1, 1).fill_(std::sin(acc));
    if (i < 6) acc += angle[static_cast<size_t>(i)];
  }
  k.calibrate(calib);
  EXPECT_EQ(k.layers(), (std::vector<int64_t>{4, 5}));  // not 0 and 1: they are dense

  // Refusals name the descriptor and the layers; a dense model has no routed term anywhere.
  PolicyEnv mixed = env();
  mixed.moe_layers = moe;
  const std::string one = refusal("static:layers=1,target=routed", mixed);
  EXPECT_NE(one.find("'static:layers=1,target=routed'"), std::string::npos) << one;
  EXPECT_NE(one.find("layer (1) is dense"), std::string::npos) << one;
  EXPECT_NE(one.find("2+3+4+5"), std::string::npos) << one;
  const std::string dense = refusal("random:rate=0.1,target=routed", env());
  EXPECT_NE(dense.find("'random:rate=0.1,target=routed'"), std::string::npos) << dense;
  EXPECT_NE(dense.find("layers (1+2+3+4) are all dense"), std::string::npos) << dense;
  EXPECT_NE(dense.find("none (a dense model)"), std::string::npos) << dense;
  EXPECT_NE(refusal("residual:p=0,r=1,tau=0.9,target=routed", mixed).find("layer (1) is dense"), std::string::npos);
  EXPECT_NE(refusal("residual:p=1,r=3,tau=0.9,target=routed", env()).find("(2+3) are all dense"), std::string::npos);
  EXPECT_NE(refusal("static:k=1,target=routed", env()).find("chooses among the MoE layers"), std::string::npos);
  EXPECT_NE(refusal("static:k=5,target=routed", mixed).find("the model has 4"), std::string::npos);
  EXPECT_NE(refusal("residual:p=1,r=3,tau=0.9,target=routed,corr=2", mixed).find("corr applies to"), std::string::npos);
  for (const char* d : {"random:rate=0.2,target=routed,kv=mask", "residual:p=1,r=3,tau=0.9,target=routed,kv=mask"})
    EXPECT_NE(refusal(d, mixed).find("kv applies to target=block only (with target=routed"), std::string::npos) << d;
  // Built where there are MoE layers, in canonical form.
  EXPECT_EQ(make_policy("static:target=routed,layers=3+2", mixed)->describe(), "static:layers=3+2,target=routed");
  EXPECT_EQ(refusal("residual:p=1,r=4,tau=0.9,target=routed,k=2", mixed), "");
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
  // Step 2: the same states hit; blocks 2..3 skipped. Block 2 sees the exact h_1 (its K/V come
  // from it); the update lands before block 3.
  StepContext c2 = ctx_of(1, 4, L, d);
  p.begin_step(c2);
  p.after_layer(1, hp, c2);
  for (int64_t l : {2, 3}) EXPECT_TRUE(c2.skip_block(l).all().item<bool>());
  EXPECT_FALSE(c2.skip_block_or_null(4).defined());
  EXPECT_FALSE(c2.jump_or_null(2).defined());
  EXPECT_TRUE(at::allclose(c2.jump(3, hp.options()), hr - hp, 1e-5, 1e-6));
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
  step_p0_r1(p, hp, hr, L, d);
  // Query e0: similarities 1 and 1/√2, both ≥ 0.5: Δ = (1·2 + 0.7071·4) / 1.7071 along e3.
  const at::Tensor q = all_along_axis(0, d);
  StepContext c2 = ctx_of(1, 1, L, d);
  p.begin_step(c2);
  p.after_layer(0, q, c2);
  const double s = 1.0 / std::sqrt(2.0);
  EXPECT_NEAR(c2.jump(2, q.options())[0][0][3].item<float>(), (2.0 + s * 4.0) / (1.0 + s), 1e-5);
}

// spread=: a candidate hits only when its k neighbours' cached updates agree with the best one's.
TEST(Policies, ResidualSpreadRefusesHitsWhoseNeighboursDisagree) {
  const int64_t L = 4, d = 4;
  // Two entries: keys e0 and e0 + 0.1·e1, updates 2·e3 and (2 + x)·e3; a query e0 finds both.
  const auto hits_with = [&](float x, double spread, bool second_entry) {
    ResidualPolicy p(Descriptor::parse("residual:p=0,r=1,tau=0.5,k=2,spread=" + std::to_string(spread)),
                     env(L, d), L, d);
    const int64_t n = second_entry ? 2 : 1;
    at::Tensor hp = at::zeros({1, n, d});
    hp[0][0][0] = 1.0f;
    if (second_entry) hp[0][1][0] = 1.0f, hp[0][1][1] = 0.1f;
    at::Tensor hr = hp.clone();
    hr[0][0][3] += 2.0f;
    if (second_entry) hr[0][1][3] += 2.0f + x;
    step_p0_r1(p, hp, hr, L, d);
    const at::Tensor q = all_along_axis(0, d);
    StepContext c2 = ctx_of(1, 1, L, d);
    p.begin_step(c2);
    p.after_layer(0, q, c2);
    const bool hit = c2.skip_block_or_null(1).defined() && c2.skip_block(1).all().item<bool>();
    p.after_layer(1, q, c2);
    p.end_step(c2);
    return std::make_pair(hit, p.cache_stats().hits);
  };
  // Relative distance |x·e3| / |2·e3| = x / 2 against the spread 0.1.
  EXPECT_TRUE(hits_with(0.1f, 0.1, true).first);    // 0.05: agree
  EXPECT_FALSE(hits_with(2.0f, 0.1, true).first);   // 1.0: disagree, the candidate runs as a miss
  EXPECT_EQ(hits_with(2.0f, 0.1, true).second, 0);
  EXPECT_TRUE(hits_with(2.0f, 1.5, true).first);    // a loose spread accepts it
  EXPECT_FALSE(hits_with(0.0f, 0.1, false).first);  // one neighbour only: nothing to agree with
  EXPECT_THROW(ResidualPolicy(Descriptor::parse("residual:p=0,r=1,tau=0.5,spread=0.1"), env(L, d), L, d), Error);
  EXPECT_THROW(ResidualPolicy(Descriptor::parse("residual:p=0,r=1,tau=0.5,k=2,spread=-1"), env(L, d), L, d), Error);
}

// margin= and spread= together: the margin refuses one candidate, the spread then judges the
// other on its own neighbours.
TEST(Policies, ResidualMarginThenSpreadJudgeTheCandidatesLeft) {
  const int64_t L = 4, d = 4, V = 3;
  ResidualPolicy p(Descriptor::parse("residual:p=0,r=1,tau=0.5,k=2,spread=0.1,margin=1"), env(L, d), L, d);
  // Entries: e0 and e0 + 0.1·e1 (confident, updates 2·e3 and 2.1·e3), e2 (not confident).
  at::Tensor hp = at::zeros({1, 3, d});
  hp[0][0][0] = 1.0f;
  hp[0][1][0] = 1.0f, hp[0][1][1] = 0.1f;
  hp[0][2][2] = 1.0f;
  at::Tensor hr = hp.clone();
  hr[0][0][3] += 2.0f;
  hr[0][1][3] += 2.1f;
  hr[0][2][3] += 5.0f;
  StepContext c1 = ctx_of(1, 3, L, d);
  p.begin_step(c1);
  p.after_layer(0, hp, c1);
  p.after_layer(1, hr, c1);
  c1.logits = at::tensor({3.0f, 1.0f, 0.0f, 3.0f, 1.0f, 0.0f, 0.5f, 0.2f, 0.0f}).view({1, 3, V});
  p.end_step(c1);
  // Queries e0 (both neighbours confident and agreeing: a hit) and e2 (its neighbour's margin
  // 0.3 < 1: a miss).
  at::Tensor q = at::zeros({1, 2, d});
  q[0][0][0] = 1.0f;
  q[0][1][2] = 1.0f;
  StepContext c2 = ctx_of(1, 2, L, d);
  p.begin_step(c2);
  p.after_layer(0, q, c2);
  EXPECT_TRUE(c2.skip_block(1)[0][0].item<bool>());
  EXPECT_FALSE(c2.skip_block(1)[0][1].item<bool>());
  const float s1 = 1.0f, s2 = 1.0f / std::sqrt(1.01f);  // similarities of e0 to the two entries
  EXPECT_NEAR(c2.jump(2, q.options())[0][0][3].item<float>(), (s1 * 2.0f + s2 * 2.1f) / (s1 + s2), 1e-5);
  p.after_layer(1, q, c2);
  p.end_step(c2);
  EXPECT_EQ(p.cache_stats().hits, 1);
}

// margin=: an entry keeps its own token's top-1 logit margin; a hit needs the best neighbour's
// to reach the guard.
TEST(Policies, ResidualMarginGuardTrustsConfidentNeighboursOnly) {
  const int64_t L = 4, d = 4, V = 5;
  ResidualPolicy p(Descriptor::parse("residual:p=0,r=1,tau=0.9,margin=1"), env(L, d), L, d);
  at::Tensor hp = at::zeros({1, 2, d});
  hp[0][0][0] = 1.0f;  // token 0: e0
  hp[0][1][1] = 1.0f;  // token 1: e1
  const at::Tensor hr = hp + 1.0;
  StepContext c1 = ctx_of(1, 2, L, d);
  FlopCounter f;
  c1.flops = &f;
  p.begin_step(c1);
  p.after_layer(0, hp, c1);
  p.after_layer(1, hr, c1);
  // Token 0 predicted confidently (margin 3 − 1 = 2), token 1 not (0.5).
  c1.logits = at::tensor({3.0f, 1.0f, 0.0f, 0.0f, -1.0f, 0.5f, 0.0f, 0.2f, 0.1f, 0.0f}).view({1, 2, V});
  p.end_step(c1);
  EXPECT_EQ(f.by_group(OpGroup::insert), 2 * V * 2);  // the margins' top-2 over the vocabulary, per miss
  const auto hits = [&](int64_t axis) {
    StepContext c = ctx_of(1, 1, L, d);
    p.begin_step(c);
    p.after_layer(0, all_along_axis(axis, d), c);
    const bool hit = c.skip_block_or_null(1).defined() && c.skip_block(1).all().item<bool>();
    if (hit) EXPECT_TRUE(at::allclose(c.jump(2, hp.options()), at::ones({1, 1, d}), 1e-6, 1e-6));
    p.after_layer(1, all_along_axis(axis, d), c);
    p.end_step(c);  // no logits: whatever it inserts is never trusted
    return hit;
  };
  EXPECT_TRUE(hits(0));
  EXPECT_FALSE(hits(1));
  EXPECT_FALSE(hits(2));  // a new state: a miss, inserted without logits (margin unknown) ...
  EXPECT_FALSE(hits(2));  // ... so its exact repeat is not trusted
  EXPECT_EQ(p.cache_stats().hits, 1);
  EXPECT_THROW(ResidualPolicy(Descriptor::parse("residual:p=0,r=1,tau=0.9,margin=-1"), env(L, d), L, d), Error);
}

namespace {

// A plan request whose blocks 1 and 3 change nothing and block 2 rotates everything: h0 after
// blocks 0 and 1, h2 after blocks 2 and 3.
void run_plan_request(SkipPolicy& p, StepContext& c, const at::Tensor& h0, const at::Tensor& h2) {
  p.begin_step(c);
  p.after_layer(0, h0, c);
  p.after_layer(1, h0, c);
  p.after_layer(2, h2, c);
  p.after_layer(3, h2, c);
  p.end_step(c);
}

at::Tensor all_along(int64_t axis, int64_t S, int64_t d) {
  at::Tensor h = at::zeros({1, S, d});
  h.select(2, axis).fill_(1.0f);
  return h;
}

}  // namespace

TEST(Policies, PlanCacheDecidesEachTokenOnItsPrefix) {
  const int64_t L = 4, d = 4;
  PlanPolicy p(Descriptor::parse("plan:p=0,beta=0.01,tau=0.9"), env(L, d), L, d);
  EXPECT_EQ(p.decision(), PlanDecision::prefix);
  const at::Tensor h0 = all_along(0, 3, d), h2 = all_along(1, 3, d);
  p.begin_request(0);
  StepContext c1 = ctx_of(1, 3, L, d);
  run_plan_request(p, c1, h0, h2);
  EXPECT_EQ(p.cache_stats().insertions, 1);
  EXPECT_EQ(p.cache_stats().lookups, 3);  // one per token
  // A second request with the same states: every token's prefix mean hits, plan {1, 3}.
  p.begin_request(0);
  StepContext c2 = ctx_of(1, 3, L, d);
  p.begin_step(c2);
  p.after_layer(0, h0, c2);
  EXPECT_TRUE(c2.skip_block(1).all().item<bool>());
  EXPECT_FALSE(c2.skip_block_or_null(2).defined());
  EXPECT_TRUE(c2.skip_block(3).all().item<bool>());
  p.end_step(c2);
  EXPECT_EQ(p.cache_stats().hits, 3);
  EXPECT_EQ(p.cache_stats().insertions, 1);  // its last token hit: nothing offered
  // Decode: the generated token is looked up on the prefix with it (mean e0 again).
  StepContext dec(L, d, at::ones({1, 1}, at::kBool), {0}, false);
  p.begin_step(dec);
  EXPECT_FALSE(dec.skip_block_or_null(1).defined());  // nothing decided before block p
  p.after_layer(0, all_along(0, 1, d), dec);
  EXPECT_TRUE(dec.skip_block(1).all().item<bool>());
  EXPECT_EQ(p.cache_stats().hits, 4);
}

// Causality: a token's decision depends on its prefix only. Two requests of one step share
// their first two tokens and differ after; the shared tokens decide alike, and as a request of
// those two tokens alone would. A key on the whole prompt (its mean) would miss for the second
// request at every position.
TEST(Policies, PlanPrefixDecisionsDoNotSeeLaterTokens) {
  const int64_t L = 4, d = 4;
  auto rec = std::make_shared<Recorded>();
  PlanPolicy p(Descriptor::parse("plan:p=0,beta=0.01,tau=0.99"), recording_env(rec, L, d), L, d);
  p.begin_request(0);
  StepContext warm = ctx_of(1, 3, L, d);
  run_plan_request(p, warm, all_along(0, 3, d), all_along(1, 3, d));  // key e0, plan {1, 3}
  PlanPolicy alone(Descriptor::parse("plan:p=0,beta=0.01,tau=0.99"), env(L, d), L, d);
  StepContext warm2 = ctx_of(1, 3, L, d);
  run_plan_request(alone, warm2, all_along(0, 3, d), all_along(1, 3, d));

  // Row 0: e0 e0 e0 e0; row 1: e0 e0 e1 e1 (prefix means e0, e0, (2e0 + e1)/3, (e0 + e1)/2).
  at::Tensor h = at::zeros({2, 4, d});
  h.select(2, 0).fill_(1.0f);
  h[1][2].zero_(), h[1][3].zero_();
  h[1][2][1] = 1.0f, h[1][3][1] = 1.0f;
  p.begin_request(0), p.begin_request(1);
  StepContext c = ctx_of(2, 4, L, d);
  p.begin_step(c);
  p.after_layer(0, h, c);
  for (int64_t l : {1, 3}) {
    const at::Tensor sb = c.skip_block(l);
    EXPECT_TRUE(at::equal(sb[0].slice(0, 0, 2), sb[1].slice(0, 0, 2))) << l;
    EXPECT_TRUE(sb[0].all().item<bool>()) << l;
    EXPECT_TRUE(sb[1].slice(0, 0, 2).all().item<bool>()) << l;
    EXPECT_FALSE(sb[1].slice(0, 2, 4).any().item<bool>()) << l;
  }
  EXPECT_FALSE(c.skip_block_or_null(2).defined());
  p.after_layer(1, h, c), p.after_layer(2, h, c), p.after_layer(3, h, c);
  p.end_step(c);
  // Row 1's last token missed: offered under its whole prefix, (e0 + e1)/√2.
  ASSERT_EQ(rec->inserted.size(), 2u);
  EXPECT_TRUE(at::allclose(rec->inserted[1], at::tensor({0.70710678f, 0.70710678f, 0.0f, 0.0f}).view({1, 4}), 1e-5, 1e-6));
  // The shared prefix alone, as its own request: the same decisions.
  StepContext c_alone = ctx_of(1, 2, L, d);
  alone.begin_request(0);
  alone.begin_step(c_alone);
  alone.after_layer(0, h.slice(0, 1, 2).slice(1, 0, 2).contiguous(), c_alone);
  for (int64_t l : {1, 3})
    EXPECT_TRUE(at::equal(c_alone.skip_block(l)[0], c.skip_block(l)[1].slice(0, 0, 2))) << l;
}

TEST(Policies, PlanDecidedOnThePromptAppliesToGeneratedTokensOnly) {
  const int64_t L = 4, d = 4;
  PlanPolicy p(Descriptor::parse("plan:p=0,beta=0.01,tau=0.9,decide=prompt"), env(L, d), L, d);
  EXPECT_EQ(p.decision(), PlanDecision::prompt);
  const at::Tensor h0 = all_along(0, 3, d), h2 = all_along(1, 3, d);
  p.begin_request(0);
  StepContext c1 = ctx_of(1, 3, L, d);
  run_plan_request(p, c1, h0, h2);
  EXPECT_EQ(p.cache_stats().insertions, 1);
  EXPECT_EQ(p.cache_stats().lookups, 1);  // one per request
  // The same prompt hits, but the prompt runs the full model; its generated tokens skip {1, 3}.
  p.begin_request(0);
  StepContext c2 = ctx_of(1, 3, L, d);
  p.begin_step(c2);
  p.after_layer(0, h0, c2);
  for (int64_t l = 0; l < L; ++l) EXPECT_FALSE(c2.skip_block_or_null(l).defined()) << l;
  p.end_step(c2);
  EXPECT_EQ(p.cache_stats().hits, 1);
  StepContext dec(L, d, at::ones({1, 1}, at::kBool), {0}, false);
  p.begin_step(dec);
  EXPECT_TRUE(dec.skip_block(1).all().item<bool>());
  EXPECT_FALSE(dec.skip_block_or_null(2).defined());
  EXPECT_TRUE(dec.skip_block(3).all().item<bool>());
  EXPECT_THROW(PlanPolicy(Descriptor::parse("plan:p=0,beta=0.01,tau=0.9,decide=all"), env(L, d), L, d), Error);
}

// The descriptor keys take effect: each test below observes what a key changes.

TEST(PolicyFactory, ResidualKAveragesTheNeighboursBySimilarity) {
  const int64_t L = 4, d = 4;
  // Two entries: keys e0 and e1 with updates Δ0 = 2·e2 and Δ1 = 4·e3. The query lies at 30°
  // from e0 and 60° from e1: similarities cos 30° = 0.8660 and cos 60° = 0.5.
  const at::Tensor hp = tokens({0, 1}, d);
  at::Tensor hr = hp.clone();
  hr[0][0][2] += 2.0f;
  hr[0][1][3] += 4.0f;
  at::Tensor q = at::zeros({1, 1, d});
  const double c30 = std::sqrt(3.0) / 2, c60 = 0.5;
  q[0][0][0] = static_cast<float>(c30), q[0][0][1] = static_cast<float>(c60);
  auto jump_of = [&](const std::string& desc) {
    auto pol = make_policy(desc, env(L, d));
    step(*pol, 0, 1, hp, hr, L, d);
    StepOut o = step(*pol, 0, 1, q, q, L, d);
    EXPECT_TRUE(o.hit[0].item<bool>()) << desc;
    EXPECT_EQ(pol->cache_stats().hits, 1) << desc;
    return o.jump.defined() ? o.jump[0] : at::zeros({d});
  };
  // k=2, both above tau: (0.8660·Δ0 + 0.5·Δ1) / (0.8660 + 0.5).
  const double w0 = c30 / (c30 + c60), w1 = c60 / (c30 + c60);
  at::Tensor two = jump_of("residual:p=0,r=1,tau=0.4,k=2");
  EXPECT_TRUE(at::allclose(two, at::tensor({0.0f, 0.0f, static_cast<float>(2 * w0), static_cast<float>(4 * w1)}),
                           1e-5, 1e-6)) << two;
  // k=1 (the default): the nearest neighbour's update alone.
  EXPECT_TRUE(at::allclose(jump_of("residual:p=0,r=1,tau=0.4"), at::tensor({0.0f, 0.0f, 2.0f, 0.0f}), 1e-6, 1e-6));
  // k=2 but the second neighbour below tau: it does not contribute.
  EXPECT_TRUE(at::allclose(jump_of("residual:p=0,r=1,tau=0.6,k=2"), at::tensor({0.0f, 0.0f, 2.0f, 0.0f}), 1e-6, 1e-6));
}

TEST(PolicyFactory, ProjAndKdimSetTheKeys) {
  const int64_t L = 6, d = 8;
  const at::Tensor hp = at::randn({1, 5, d}, seeded(1));
  const at::Tensor hpn = hp[0] / hp[0].norm(2, -1, true);
  {
    auto rec = std::make_shared<Recorded>();
    auto pol = make_policy("residual:p=1,r=3,tau=0.9,proj=random,kdim=4", recording_env(rec, L, d));
    EXPECT_EQ(rec->key_dim, 4);
    EXPECT_EQ(pol->cache_stats().key_dim, 4);
    EXPECT_FALSE(pol->needs_calibration());
    step(*pol, 1, 3, hp, hp + 1, L, d);
    ASSERT_EQ(rec->searched.size(), 1u);
    ASSERT_EQ(rec->searched[0].sizes(), (std::vector<int64_t>{5, 4}));
    EXPECT_TRUE(at::allclose(rec->searched[0].norm(2, -1), at::ones({5}), 1e-5, 1e-5));
    // The run's seed picks the map.
    KeyProjection same(KeyProjectionKind::random, d, 4, 0);
    EXPECT_TRUE(at::allclose(rec->searched[0], same(hp[0]), 1e-5, 1e-6));
    EXPECT_TRUE(at::equal(rec->inserted[0], rec->searched[0]));  // every token missed
  }
  {
    auto rec = std::make_shared<Recorded>();
    auto pol = make_policy("residual:p=1,r=3,tau=0.9,proj=none", recording_env(rec, L, d));
    EXPECT_EQ(rec->key_dim, d);
    EXPECT_EQ(pol->cache_stats().key_dim, d);
    step(*pol, 1, 3, hp, hp + 1, L, d);
    EXPECT_TRUE(at::allclose(rec->searched[0], hpn, 1e-6, 1e-6));  // the normalised state
  }
  {
    auto rec = std::make_shared<Recorded>();
    auto pol = make_policy("residual:p=1,r=3,tau=0.9", recording_env(rec, L, d));
    EXPECT_EQ(rec->key_dim, d);  // no projection by default
  }
  {
    auto pol = make_policy("residual:p=1,r=3,tau=0.9,proj=pca,kdim=3", env(L, d));
    EXPECT_EQ(pol->cache_stats().key_dim, 3);
    EXPECT_TRUE(pol->needs_calibration());
  }
  {
    auto pol = make_policy("plan:p=1,beta=0.1,tau=0.9,proj=random,kdim=5", env(L, d));
    EXPECT_EQ(pol->cache_stats().key_dim, 5);
  }
}

TEST(PolicyFactory, CapSetsTheCapacity) {
  const int64_t L = 4, d = 8;
  auto pol = make_policy("residual:p=0,r=1,tau=0.9,cap=3", env(L, d));
  EXPECT_EQ(pol->cache_stats().capacity, 3);
  step(*pol, 0, 1, tokens({0, 1}, d), tokens({0, 1}, d) + 1, L, d);
  step(*pol, 0, 1, tokens({2, 3}, d), tokens({2, 3}, d) + 1, L, d);
  EXPECT_EQ(pol->cache_stats().size, 3);
  EXPECT_EQ(pol->cache_stats().insertions, 4);
  EXPECT_EQ(pol->cache_stats().evictions, 1);
  // Without cap: the run's capacity.
  EXPECT_EQ(make_policy("residual:p=0,r=1,tau=0.9", env(L, d))->cache_stats().capacity, 64);
  EXPECT_EQ(make_policy("plan:p=0,beta=0.1,tau=0.9,cap=7", env(L, d))->cache_stats().capacity, 7);
}

// Two hand-worked sequences on a cache of 2 that tell the eviction rules apart. Probing
// which of A = e0 and B = e1 still hit after C = e2 was inserted:
//   S1: insert A, insert B, hit A, insert C        fifo drops A; lru and lfu drop B
//   S2: insert A, insert B, hit A, hit A, hit B,   fifo drops A; lru drops A (used before B);
//       insert C                                   lfu drops B (1 use against 2)
TEST(PolicyFactory, EvictPicksTheRule) {
  const int64_t L = 4, d = 8;
  auto run = [&](const std::string& evict, const std::vector<std::pair<char, int64_t>>& seq) {
    auto pol = make_policy("residual:p=0,r=1,tau=0.9,cap=2" + evict, env(L, d));
    for (auto [what, key] : seq) {
      StepOut o = step(*pol, 0, 1, tokens({key}, d), tokens({key}, d) * 2, L, d);
      EXPECT_EQ(o.hit[0].item<bool>(), what == 'h') << evict << " key " << key;
    }
    StepOut probe = step(*pol, 0, 1, tokens({0, 1}, d), tokens({0, 1}, d) * 2, L, d);
    return std::make_pair(probe.hit[0].item<bool>(), probe.hit[1].item<bool>());
  };
  const std::vector<std::pair<char, int64_t>> s1 = {{'i', 0}, {'i', 1}, {'h', 0}, {'i', 2}};
  const std::vector<std::pair<char, int64_t>> s2 = {{'i', 0}, {'i', 1}, {'h', 0}, {'h', 0}, {'h', 1}, {'i', 2}};
  using P = std::pair<bool, bool>;  // (A still hits, B still hits)
  EXPECT_EQ(run(",evict=fifo", s1), P(false, true));
  EXPECT_EQ(run(",evict=lru", s1), P(true, false));
  EXPECT_EQ(run(",evict=lfu", s1), P(true, false));
  EXPECT_EQ(run("", s1), P(true, false));  // lru by default
  EXPECT_EQ(run(",evict=fifo", s2), P(false, true));
  EXPECT_EQ(run(",evict=lru", s2), P(false, true));
  EXPECT_EQ(run(",evict=lfu", s2), P(true, false));
  EXPECT_EQ(run("", s2), P(false, true));
}

TEST(PolicyFactory, AdmitSamplesMissesWithTheGivenProbability) {
  const int64_t L = 4, d = 16, n = 200;
  // 200 random states in one step: the cache is empty, all miss and are offered.
  const at::Tensor hp = at::randn({1, n, d}, seeded(2));
  auto inserted = [&](const std::string& desc, uint64_t seed) {
    PolicyEnv e = env(L, d);
    e.capacity = 1000;
    e.seed = seed;
    auto pol = make_policy(desc, e);
    step(*pol, 0, 1, hp, hp + 1, L, d);
    EXPECT_EQ(pol->cache_stats().insertions + pol->cache_stats().rejected, n) << desc;
    return pol->cache_stats().insertions;
  };
  const int64_t half = inserted("residual:p=0,r=1,tau=0.999,admit=sample:0.5", 3);
  EXPECT_NEAR(static_cast<double>(half), 100.0, 29.0);  // Binomial(200, 0.5): sd 7.1, ±4 sd
  EXPECT_EQ(inserted("residual:p=0,r=1,tau=0.999,admit=sample:0.5", 3), half);  // seeded by the run
  const int64_t tenth = inserted("residual:p=0,r=1,tau=0.999,admit=sample:0.1", 3);
  EXPECT_NEAR(static_cast<double>(tenth), 20.0, 17.0);  // sd 4.2
  EXPECT_EQ(inserted("residual:p=0,r=1,tau=0.999,admit=all-misses", 3), n);
  EXPECT_EQ(inserted("residual:p=0,r=1,tau=0.999", 3), n);
}

TEST(PolicyFactory, VdtypeSetsTheValueStorage) {
  const int64_t L = 4, d = 8;
  const at::Tensor hp = tokens({0, 1, 2}, d);
  const at::Tensor hr = hp + at::randn({1, 3, d}, seeded(3));
  for (auto [v, bytes] : {std::pair{"", 4}, std::pair{",vdtype=fp32", 4}, std::pair{",vdtype=bf16", 2},
                          std::pair{",vdtype=fp16", 2}}) {
    auto pol = make_policy(std::string("residual:p=0,r=1,tau=0.9") + v, env(L, d));
    step(*pol, 0, 1, hp, hr, L, d);
    EXPECT_EQ(pol->cache_stats().value_bytes, 3 * d * bytes) << v;  // 3 entries of d values
  }
  // target=mlp stores one MLP output per skipped layer: (r − p)·d values per entry.
  auto rec = std::make_shared<Recorded>();
  make_policy("residual:p=0,r=2,tau=0.9,target=mlp,vdtype=bf16", recording_env(rec, L, d));
  EXPECT_EQ(rec->value_dim, 2 * d);
  EXPECT_EQ(rec->opts.value_dtype, DType::bf16);
  // target=routed stores the routed term of the MoE layers among p+1..r only: layer 1 is dense.
  PolicyEnv mixed = recording_env(rec, L, d);
  mixed.moe_layers = {2, 3};
  make_policy("residual:p=0,r=3,tau=0.9,target=routed", mixed);
  EXPECT_EQ(rec->value_dim, 2 * d);
  make_policy("residual:p=0,r=3,tau=0.9,target=mlp", mixed);
  EXPECT_EQ(rec->value_dim, 3 * d);
}

// A hit's update is the cached value at the value dtype: Δ rounded to bf16 / fp16, not Δ.
TEST(PolicyFactory, VdtypeValuesRoundTripAtThatPrecision) {
  const int64_t L = 4, d = 8;
  const at::Tensor hp = tokens({0, 1}, d);
  const at::Tensor hr = hp + at::randn({1, 2, d}, seeded(4));
  const at::Tensor delta = (hr - hp)[0];
  for (auto [v, st] : {std::pair{"fp32", at::kFloat}, std::pair{"bf16", at::kBFloat16}, std::pair{"fp16", at::kHalf}}) {
    auto pol = make_policy(std::string("residual:p=0,r=1,tau=0.9,vdtype=") + v, env(L, d));
    step(*pol, 0, 1, hp, hr, L, d);
    StepOut o = step(*pol, 0, 1, hp, hp, L, d);
    ASSERT_TRUE(o.hit.all().item<bool>()) << v;
    const at::Tensor rounded = delta.to(st).to(at::kFloat);
    EXPECT_TRUE(at::equal(o.jump, rounded)) << v << "\n" << o.jump << "\n" << rounded;
    if (st != at::kFloat) { EXPECT_FALSE(at::equal(o.jump, delta)) << v; }
  }
}

TEST(PolicyFactory, StaticKSkipsTheLayersOfLowestBlockInfluence) {
  // Every token lies in the (e0, e1) plane and block l rotates it there by θ_l, so
  // BI_l = 1 − cos θ_l exactly. The two smallest angles are those of layers 3 and 1.
  const int64_t L = 6, d = 8, n = 5;
  const std::vector<double> theta = {0.9, 0.3, 0.7, 0.1, 0.5, 0.8};
  at::Tensor s = at::zeros({L + 1, n, d}, at::kDouble);
  for (int64_t t = 0; t < n; ++t) {
    double phi = 0.4 * static_cast<double>(t), radius = 1.0 + static_cast<double>(t);
    for (int64_t l = 0; l <= L; ++l) {
      s[l][t][0] = radius * std::cos(phi);
      s[l][t][1] = radius * std::sin(phi);
      if (l < L) phi += theta[static_cast<size_t>(l)];
    }
  }
  at::Tensor bi = block_influence(s);
  for (int64_t l = 0; l < L; ++l) EXPECT_NEAR(bi[l].item<double>(), 1 - std::cos(theta[static_cast<size_t>(l)]), 1e-12);
  auto pol = make_policy("static:k=2", env(L, d));
  ASSERT_TRUE(pol->needs_calibration());
  pol->calibrate({s.to(at::kFloat)});
  StepContext ctx = ctx_of(2, 3, L, d);
  pol->begin_step(ctx);
  for (int64_t l = 0; l < L; ++l) {
    const bool skipped = l == 1 || l == 3;
    EXPECT_EQ(pol->skips_layer_everywhere(l), skipped) << l;
    EXPECT_EQ(ctx.skip_block_or_null(l).defined(), skipped) << l;
    if (skipped) { EXPECT_TRUE(ctx.skip_block(l).all().item<bool>()) << l; }
  }
  // k=3 adds the next one, layer 4 (θ 0.5).
  auto three = make_policy("static:k=3", env(L, d));
  three->calibrate({s.to(at::kFloat)});
  for (int64_t l = 0; l < L; ++l) EXPECT_EQ(three->skips_layer_everywhere(l), l == 1 || l == 3 || l == 4) << l;
}

TEST(PolicyFactory, RandomRateLayersAndSeedTakeEffect) {
  const int64_t L = 6, d = 8, B = 4, S = 1000;
  auto decisions = [&](const std::string& desc, uint64_t seed) {
    PolicyEnv e = env(L, d);
    e.seed = seed;
    auto pol = make_policy(desc, e);
    // Every other column is padding: never skipped.
    at::Tensor valid = at::ones({B, S}, at::kBool);
    valid.slice(1, 1, S, 2).fill_(false);
    StepContext ctx(L, d, valid, {0, 1, 2, 3}, true);
    pol->begin_step(ctx);
    std::vector<at::Tensor> out;
    for (int64_t l = 0; l < L; ++l)
      out.push_back(ctx.skip_block_or_null(l).defined() ? ctx.skip_block(l).clone() : at::Tensor());
    for (const at::Tensor& t : out)
      if (t.defined()) { EXPECT_FALSE(t.logical_and(valid.logical_not()).any().item<bool>()) << desc; }
    return out;
  };
  const auto a = decisions("random:rate=0.3", 5);
  // Default layers 1..4; 2000 valid tokens each: Binomial(2000, 0.3) / 2000 has sd 0.0102.
  EXPECT_FALSE(a[0].defined());
  EXPECT_FALSE(a[5].defined());
  double total = 0;
  for (int64_t l = 1; l <= 4; ++l) {
    ASSERT_TRUE(a[static_cast<size_t>(l)].defined()) << l;
    const double rate = a[static_cast<size_t>(l)].sum().item<double>() / (B * S / 2);
    EXPECT_NEAR(rate, 0.3, 0.041) << l;
    total += rate / 4;
  }
  EXPECT_NEAR(total, 0.3, 0.021);
  // layers= restricts, rate=0 and rate=1 are the extremes.
  const auto only2 = decisions("random:rate=1,layers=2", 5);
  for (int64_t l = 0; l < L; ++l) EXPECT_EQ(only2[static_cast<size_t>(l)].defined(), l == 2) << l;
  EXPECT_EQ(only2[2].sum().item<int64_t>(), B * S / 2);
  for (const at::Tensor& t : decisions("random:rate=0", 5))
    if (t.defined()) { EXPECT_FALSE(t.any().item<bool>()); }
  // The run's seed, unless seed= overrides it.
  EXPECT_TRUE(at::equal(decisions("random:rate=0.3", 5)[2], a[2]));
  EXPECT_FALSE(at::equal(decisions("random:rate=0.3", 6)[2], a[2]));
  EXPECT_TRUE(at::equal(decisions("random:rate=0.3,seed=9", 5)[2], decisions("random:rate=0.3,seed=9", 6)[2]));
}

// proj=pca inside a policy: after calibration the keys are the normalised states projected on
// the top principal directions of the calibration states after block p. Reference: an SVD of
// the normalised calibration states (the second-moment matrix of the unit vectors, not
// centred: skip/key_projection.cpp keeps the mean direction on purpose), up to the sign of
// each direction.
TEST(PolicyFactory, PcaKeysProjectOnTheTopPrincipalDirectionsOfTheCalibration) {
  const int64_t L = 4, d = 8, p = 1, kd = 3, n = 400;
  at::Tensor q = std::get<0>(at::linalg_qr(at::randn({d, d}, seeded(5), at::TensorOptions().dtype(at::kDouble))));
  at::Tensor sigma = at::tensor({3.0, 2.0, 1.2, 0.5, 0.4, 0.3, 0.2, 0.1}, at::kDouble);
  at::Tensor z = at::randn({n, d}, seeded(6), at::TensorOptions().dtype(at::kDouble)) * sigma;
  z.select(1, 7).add_(2.5);  // a mean along the least-spread axis: centred and uncentred PCA differ
  at::Tensor x = at::matmul(z, q.t());  // [n, d]
  at::Tensor states = at::randn({L + 1, n, d}, seeded(7), at::TensorOptions().dtype(at::kDouble));
  states[p + 1] = x;

  auto rec = std::make_shared<Recorded>();
  auto pol = make_policy("residual:p=1,r=2,tau=0.99,proj=pca,kdim=3", recording_env(rec, L, d));
  ASSERT_TRUE(pol->needs_calibration());
  pol->calibrate({states.to(at::kFloat)});
  EXPECT_FALSE(pol->needs_calibration());
  const at::Tensor hq = at::randn({1, 20, d}, seeded(8));
  step(*pol, p, 2, hq, hq + 1, L, d);
  ASSERT_EQ(rec->searched.size(), 1u);
  const at::Tensor keys = rec->searched[0].to(at::kDouble);  // [20, 3]
  ASSERT_EQ(keys.sizes(), (std::vector<int64_t>{20, kd}));

  auto keys_by_svd = [&](const at::Tensor& data) {
    auto [u, sv, vh] = at::linalg_svd(data, /*full_matrices=*/false);
    // Distinct singular values around the cut, so the directions are defined.
    for (int64_t i = 0; i < kd; ++i) EXPECT_GT(sv[i].item<double>(), 1.05 * sv[i + 1].item<double>()) << i;
    at::Tensor v = vh.slice(0, 0, kd).t();  // [d, 3]
    at::Tensor h = hq[0].to(at::kDouble);
    at::Tensor k = at::matmul(h / h.norm(2, -1, true), v);
    return k / k.norm(2, -1, true);
  };
  const at::Tensor xn = x / x.norm(2, -1, true);
  EXPECT_LT(max_diff_up_to_column_sign(keys, keys_by_svd(xn)), 1e-4);
  // The data tells the two conventions apart: centred PCA would give other keys.
  EXPECT_GT(max_diff_up_to_column_sign(keys, keys_by_svd(xn - xn.mean(0, true))), 0.1);
  // Misses go to the cache under the same keys.
  ASSERT_EQ(rec->inserted.size(), 1u);
  EXPECT_TRUE(at::equal(rec->inserted[0], rec->searched[0]));
}
