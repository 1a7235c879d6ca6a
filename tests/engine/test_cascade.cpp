// The cascade of residual caches (skip/cascade_policy.h) on tiny-dense, against independent
// references: with one segment it is the residual policy of the same options (the evaluator's
// records, FLOPs and cache counts equal); a second segment that never hits leaves the first's
// records and model FLOPs as they were and adds exactly its own lookup and insertion charges; a
// repeated request hits in both segments and saves, by hand, both segments' layers; and on real
// text the FLOPs saved are the skipped (token, layer) pairs' MLPs, each segment's hits counted at
// its own layers, the first segment deciding exactly as it does alone.
#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "../model/model_test_util.h"
#include "../skip/policy_test_env.h"
#include "core/error.h"
#include "engine/evaluator.h"
#include "engine/skip_engine.h"
#include "metrics/flop_counter.h"
#include "skip/cascade_policy.h"
#include "tokenizer/tokenizer.h"

using namespace semskip;
using namespace semskip::test;

namespace {

// tiny-dense: hidden 256, intermediate 704, 2 KV heads of 64, 10 layers.
constexpr int64_t kD = 256, kI = 704, kHkv = 2, kHd = 64;
constexpr int64_t kMlpFlopsPerToken = 3 * (2 * kD * kI);                  // SwiGLU gate, up, down: 1081344
constexpr int64_t kKvPropagateFlopsPerToken = 2 * (2 * kD * kHkv * kHd);  // 131072

Transformer load_tiny_dense() {
  ModelOptions o;
  o.dtype = DType::fp32;
  Transformer m = Transformer::load(embedded_model("tiny-dense"), o);
  EXPECT_EQ(m.config().hidden_size, kD);
  EXPECT_EQ(m.config().intermediate_size, kI);
  return m;
}

std::vector<int32_t> text_tokens(int64_t n) {
  const Tokenizer tok = Tokenizer::from_file(embedded_model("tiny-dense") + "/tokenizer.json");
  const std::string text = read_file(std::string(SEMSKIP_SOURCE_DIR) + "/workloads/samples/heldout_sample.txt");
  std::vector<int32_t> ids = tok.encode(text);
  EXPECT_GE(static_cast<int64_t>(ids.size()), n);
  ids.resize(static_cast<size_t>(n));
  return ids;
}

// Chunks of the held-out sample as teacher-forced requests, each starting one token later
// where its first token would repeat an earlier chunk's: no two tokens of them have the same
// prefix, so no two have the same states (a threshold of 1 is then never reached).
std::vector<Request> chunks(int64_t n, int64_t len) {
  const std::vector<int32_t> ids = text_tokens(n * len + 4 * n);
  std::vector<Request> out;
  std::set<int32_t> firsts;
  size_t start = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (firsts.count(ids.at(start))) ++start;
    firsts.insert(ids[start]);
    SEMSKIP_ASSERT(start + static_cast<size_t>(len) <= ids.size());
    Request r;
    r.id = i;
    r.document = "document:0";
    r.prompt_tokens.assign(ids.begin() + static_cast<int64_t>(start), ids.begin() + static_cast<int64_t>(start) + len);
    out.push_back(std::move(r));
    start += static_cast<size_t>(len);
  }
  return out;
}

// Every policy on 4 calibration chunks and the 20 chunks after them (64 tokens each).
std::vector<PolicyResult> run_all(const Transformer& m, const std::vector<std::string>& descs,
                                  std::vector<std::unique_ptr<SkipPolicy>>* keep = nullptr) {
  const std::vector<Request> all = chunks(24, 64);
  const std::vector<Request> calib_req(all.begin(), all.begin() + 4), requests(all.begin() + 4, all.end());
  Evaluator ev(m, EvalOptions{});
  const CalibrationSet calib = ev.calibrate(calib_req);
  std::vector<std::unique_ptr<SkipPolicy>> policies;
  for (const std::string& d : descs) policies.push_back(make_policy(d, policy_env(m.config(), 100000)));
  std::vector<PolicyResult> res = ev.run(requests, policies, calib);
  if (keep) *keep = std::move(policies);
  return res;
}

int64_t top1_matches(const PolicyResult& r) {
  int64_t n = 0;
  for (const RequestRecord& rec : r.requests) n += rec.accuracy.n_top1_match;
  return n;
}

// The model's own FLOPs, group by group and layer by layer, equal.
void expect_same_model_flops(const FlopCounter& a, const FlopCounter& b, int64_t L, const std::string& what) {
  EXPECT_EQ(a.total_model(), b.total_model()) << what;
  for (int g = 0; g < static_cast<int>(OpGroup::kCount); ++g)
    if (!is_overhead(static_cast<OpGroup>(g)))
      EXPECT_EQ(a.by_group(static_cast<OpGroup>(g)), b.by_group(static_cast<OpGroup>(g))) << what << " group " << g;
  for (int l = 0; l < L; ++l) EXPECT_EQ(a.by_layer_model(l), b.by_layer_model(l)) << what << " layer " << l;
}

// The records (skips and accuracy, exactly) equal.
void expect_same_records(const PolicyResult& a, const PolicyResult& b, const std::string& what) {
  ASSERT_EQ(a.requests.size(), b.requests.size()) << what;
  for (size_t i = 0; i < a.requests.size(); ++i) {
    const RequestRecord &x = a.requests[i], &y = b.requests[i];
    EXPECT_EQ(x.request_id, y.request_id) << what;
    EXPECT_EQ(x.n_block_skips, y.n_block_skips) << what << " request " << i;
    EXPECT_EQ(x.n_mlp_skips, y.n_mlp_skips) << what << " request " << i;
    EXPECT_EQ(x.accuracy.n_positions, y.accuracy.n_positions) << what;
    EXPECT_EQ(x.accuracy.n_top1_match, y.accuracy.n_top1_match) << what << " request " << i;
    EXPECT_EQ(x.accuracy.kl_sum, y.accuracy.kl_sum) << what << " request " << i;
    EXPECT_EQ(x.accuracy.nll_skip_sum, y.accuracy.nll_skip_sum) << what << " request " << i;
  }
}

}  // namespace

// A cascade of one segment is the residual policy of the same options: the same records, FLOPs
// (every group, every layer, overheads included), layer counts and cache counts.
TEST(CascadeEngine, OneSegmentIsTheResidualPolicy) {
  const Transformer m = load_tiny_dense();
  const int64_t L = m.config().n_layers;
  const std::vector<std::string> options = {"p=1,r=7,tau=0.95,target=mlp,proj=pca,kdim=16",
                                            "p=2,r=6,tau=0.93",
                                            "p=1,r=4,tau=0.9,target=mlp,k=2,spread=0.8,margin=0.5,cap=300"};
  std::vector<std::string> descs;
  for (const std::string& o : options) descs.push_back("residual:" + o), descs.push_back("cascade:" + o);
  const std::vector<PolicyResult> res = run_all(m, descs);
  ASSERT_EQ(res.size(), descs.size());
  for (size_t i = 0; i < options.size(); ++i) {
    const PolicyResult &ref = res[2 * i], &c = res[2 * i + 1];
    const std::string& what = descs[2 * i + 1];
    EXPECT_EQ(c.policy, Descriptor::parse(what).text());
    EXPECT_EQ(c.index, ref.index);
    ASSERT_GT(ref.cache.hits, 0) << what;
    expect_same_records(ref, c, what);
    EXPECT_EQ(ref.flops_skip.to_flat(), c.flops_skip.to_flat()) << what;
    EXPECT_EQ(ref.flops_full.to_flat(), c.flops_full.to_flat()) << what;
    EXPECT_EQ(ref.layers.n_block_skip, c.layers.n_block_skip) << what;
    EXPECT_EQ(ref.layers.n_mlp_skip, c.layers.n_mlp_skip) << what;
    EXPECT_EQ(ref.layers.n_kv_propagated, c.layers.n_kv_propagated) << what;
    EXPECT_EQ(ref.cache.lookups, c.cache.lookups) << what;
    EXPECT_EQ(ref.cache.hits, c.cache.hits) << what;
    EXPECT_EQ(ref.cache.insertions, c.cache.insertions) << what;
    EXPECT_EQ(ref.cache.evictions, c.cache.evictions) << what;
    EXPECT_EQ(ref.cache.size, c.cache.size) << what;
    EXPECT_EQ(ref.cache.value_bytes, c.cache.value_bytes) << what;
    ASSERT_EQ(ref.steps.size(), c.steps.size());
    for (size_t s = 0; s < ref.steps.size(); ++s) {
      EXPECT_EQ(ref.steps[s].flops_executed, c.steps[s].flops_executed) << what;
      EXPECT_EQ(ref.steps[s].flops_overhead, c.steps[s].flops_overhead) << what;
      EXPECT_EQ(ref.steps[s].cache_hits, c.steps[s].cache_hits) << what;
    }
  }
}

// A second segment whose threshold is never reached (tau = 1 on states no two tokens share)
// leaves the first segment's records and model FLOPs exactly as the first alone has them, and
// adds exactly the overhead of its own residual policy run alone (its lookups and insertions
// depend on how many keys it holds, not on which).
TEST(CascadeEngine, ASecondSegmentThatNeverHitsAddsOnlyItsLookups) {
  const Transformer m = load_tiny_dense();
  const int64_t L = m.config().n_layers;
  for (const std::string target : {"mlp", "block"}) {
    const std::vector<std::string> descs = {
        "residual:p=1,r=6,tau=0.95,target=" + target,
        "residual:p=7,r=9,tau=1,target=" + target,
        "cascade:p=1+7,r=6+9,tau=0.95+1,target=" + target,
    };
    std::vector<std::unique_ptr<SkipPolicy>> pols;
    const std::vector<PolicyResult> res = run_all(m, descs, &pols);
    const PolicyResult &first = res[0], &second = res[1], &c = res[2];
    const auto& cascade = dynamic_cast<const CascadePolicy&>(*pols[2]);
    ASSERT_GT(first.cache.hits, 0) << target;
    ASSERT_EQ(second.cache.hits, 0) << target;
    ASSERT_EQ(cascade.segment(1).cache_stats().hits, 0) << target;
    expect_same_records(first, c, descs[2]);
    expect_same_model_flops(first.flops_skip, c.flops_skip, L, descs[2]);
    EXPECT_EQ(first.layers.n_block_skip, c.layers.n_block_skip);
    EXPECT_EQ(first.layers.n_mlp_skip, c.layers.n_mlp_skip);
    EXPECT_EQ(first.layers.n_kv_propagated, c.layers.n_kv_propagated);
    for (int g = 0; g < static_cast<int>(OpGroup::kCount); ++g) {
      const OpGroup og = static_cast<OpGroup>(g);
      if (is_overhead(og))
        EXPECT_EQ(c.flops_skip.by_group(og), first.flops_skip.by_group(og) + second.flops_skip.by_group(og))
            << target << " " << op_group_name(og);
    }
    EXPECT_GT(second.flops_skip.by_group(OpGroup::lookup), 0);
    EXPECT_EQ(c.flops_skip.by_layer_overhead(1), first.flops_skip.by_layer_overhead(1)) << target;
    EXPECT_EQ(c.flops_skip.by_layer_overhead(7), second.flops_skip.by_layer_overhead(7)) << target;
    EXPECT_EQ(c.cache.lookups, first.cache.lookups + second.cache.lookups);
    EXPECT_EQ(c.cache.insertions, first.cache.insertions + second.cache.insertions);
    EXPECT_EQ(c.cache.hits, first.cache.hits);
  }
}

// A request seen before hits in both segments at every token, and its logits are the full
// model's; by hand: hits, insertions, the skipped (token, layer) pairs of both spans, the MLP
// FLOPs they save (target=mlp) or the K/V they charge (target=block), and both segments' exact
// lookups (2·d·T per query against the T keys of the first pass, T queries each). Adjacent
// segments (p₂ = r₁) included, and one-layer spans whose updates land before the next segment's
// probe block or before the same block as the next one's.
TEST(CascadeEngine, ARepeatedRequestHitsInBothSegments) {
  const Transformer m = load_tiny_dense();
  const int64_t L = m.config().n_layers;
  const std::vector<int32_t> tok = text_tokens(40);
  const at::Tensor ids = at::tensor(std::vector<int64_t>(tok.begin(), tok.end()), at::kLong).unsqueeze(0);
  const int64_t T = ids.size(1);
  const at::Tensor full = m.forward(ids);
  struct Case {
    std::string target;
    int64_t p1, r1, p2, r2;
  };
  for (const Case& k : {Case{"mlp", 1, 4, 5, 8}, Case{"mlp", 1, 4, 4, 9}, Case{"block", 1, 4, 5, 8},
                        Case{"block", 1, 4, 4, 9}, Case{"block", 1, 2, 2, 5}, Case{"block", 7, 8, 8, 9}}) {
    const std::string desc =
        fmt::format("cascade:p={}+{},r={}+{},tau=0.999,target={}", k.p1, k.p2, k.r1, k.r2, k.target);
    const std::unique_ptr<SkipPolicy> policy = make_policy(desc, policy_env(m.config(), 100000));
    SkipEngine engine(m);
    at::Tensor out[2];
    FlopCounter f[2];
    LayerCounts counts[2] = {LayerCounts(L), LayerCounts(L)};
    for (int pass = 0; pass < 2; ++pass) {
      StepContext ctx(L, kD, at::ones(ids.sizes(), at::kBool), {0}, true);
      ctx.flops = &f[pass];
      SkipKvCache kv = engine.make_cache(1, T);
      out[pass] = engine.step(ids, ctx, kv, *policy, &f[pass], &counts[pass]);
    }
    EXPECT_LT(rel_err(out[0], full), 1e-5) << desc;  // empty caches: all misses
    EXPECT_LT(rel_err(out[1], full), 1e-4) << desc;  // all hits in both segments, replayed
    const auto& cascade = dynamic_cast<const CascadePolicy&>(*policy);
    EXPECT_EQ(cascade.segment(0).cache_stats().hits, T) << desc;
    EXPECT_EQ(cascade.segment(1).cache_stats().hits, T) << desc;
    EXPECT_EQ(policy->cache_stats().insertions, 2 * T) << desc;
    const auto skipped = [&](int64_t l) { return (l > k.p1 && l <= k.r1) || (l > k.p2 && l <= k.r2); };
    const int64_t n_skipped = (k.r1 - k.p1) + (k.r2 - k.p2);
    for (int64_t l = 0; l < L; ++l) {
      const int li = static_cast<int>(l);
      if (k.target == "mlp") {
        EXPECT_EQ(counts[1].n_mlp_skip[l], skipped(l) ? T : 0) << desc << " layer " << l;
        EXPECT_EQ(f[0].by_layer_model(li) - f[1].by_layer_model(li), skipped(l) ? T * kMlpFlopsPerToken : 0)
            << desc << " layer " << l;
      } else {
        EXPECT_EQ(counts[1].n_block_skip[l], skipped(l) ? T : 0) << desc << " layer " << l;
        if (skipped(l)) EXPECT_EQ(f[1].by_layer_model(li), 0) << desc << " layer " << l;
        else EXPECT_EQ(f[1].by_layer_model(li), f[0].by_layer_model(li)) << desc << " layer " << l;
      }
    }
    if (k.target == "mlp") {
      EXPECT_EQ(f[0].total_model() - f[1].total_model(), n_skipped * T * kMlpFlopsPerToken) << desc;
      EXPECT_EQ(f[1].by_group(OpGroup::kv_propagate), 0) << desc;
    } else {
      EXPECT_EQ(f[1].by_group(OpGroup::kv_propagate), n_skipped * T * kKvPropagateFlopsPerToken) << desc;
    }
    EXPECT_EQ(f[0].by_group(OpGroup::lookup), 0) << desc;  // empty caches
    EXPECT_EQ(f[1].by_group(OpGroup::lookup), 2 * T * (2 * kD * T)) << desc;
    // Each segment's lookup at its probe layer (where the first skips the second's probe layer,
    // that layer also charges the first's K/V).
    EXPECT_EQ(f[1].by_layer_overhead(static_cast<int>(k.p1)), T * (2 * kD * T)) << desc;
    EXPECT_EQ(f[1].by_layer_overhead(static_cast<int>(k.p2)),
              T * (2 * kD * T) + (k.target == "block" && skipped(k.p2) ? T * kKvPropagateFlopsPerToken : 0))
        << desc;
  }
}

// On real text both segments hit: the FLOPs saved are exactly the skipped (token, layer) pairs'
// MLPs; each segment's hits are the skips at its own layers; the first segment decides, counts
// and charges exactly as it does alone (nothing of the second acts before its resume layer).
TEST(CascadeEngine, BothSegmentsHitOnTextAndTheirSavingsAddUp) {
  const Transformer m = load_tiny_dense();
  const int64_t L = m.config().n_layers;
  const std::vector<std::string> descs = {"residual:p=1,r=5,tau=0.95,target=mlp",
                                          "cascade:p=1+6,r=5+9,tau=0.95+0.93,target=mlp"};
  std::vector<std::unique_ptr<SkipPolicy>> pols;
  const std::vector<PolicyResult> res = run_all(m, descs, &pols);
  const PolicyResult &first = res[0], &c = res[1];
  const auto& cascade = dynamic_cast<const CascadePolicy&>(*pols[1]);
  const CacheStats s1 = cascade.segment(0).cache_stats(), s2 = cascade.segment(1).cache_stats();
  ASSERT_GT(s1.hits, 0);
  ASSERT_GT(s2.hits, 0);
  EXPECT_EQ(c.cache.hits, s1.hits + s2.hits);
  // The first segment alone.
  EXPECT_EQ(s1.hits, first.cache.hits);
  EXPECT_EQ(s1.lookups, first.cache.lookups);
  EXPECT_EQ(s1.insertions, first.cache.insertions);
  EXPECT_EQ(c.flops_skip.by_layer_overhead(1), first.flops_skip.by_layer_overhead(1));
  for (int64_t l = 0; l <= 5; ++l) EXPECT_EQ(c.layers.n_mlp_skip[l], first.layers.n_mlp_skip[l]) << l;
  // Each segment's hits are its layers' skips.
  int64_t pairs = 0;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t expect = (l >= 2 && l <= 5) ? s1.hits : (l >= 7 ? s2.hits : 0);
    EXPECT_EQ(c.layers.n_mlp_skip[l], expect) << l;
    pairs += c.layers.n_mlp_skip[l];
  }
  int64_t record_pairs = 0;
  for (const RequestRecord& r : c.requests) record_pairs += r.n_mlp_skips;
  EXPECT_EQ(record_pairs, pairs);
  // Saved: the MLPs of the skipped pairs, nothing else of the model.
  EXPECT_EQ(c.flops_full.total_model() - c.flops_skip.total_model(), pairs * kMlpFlopsPerToken);
  EXPECT_EQ(pairs, 4 * s1.hits + 3 * s2.hits);
  // Overhead: both segments', at their probe layers.
  EXPECT_EQ(c.flops_skip.total_overhead(),
            c.flops_skip.by_layer_overhead(1) + c.flops_skip.by_layer_overhead(6));
  EXPECT_GT(c.flops_skip.by_layer_overhead(6), 0);
  std::cout << "cascade p=1+6,r=5+9: " << s1.hits << " + " << s2.hits << " hits of " << s1.lookups
            << " tokens, top-1 " << top1_matches(c) << " against the first segment's " << top1_matches(first) << "\n";
}
