// The tune/eval protocol and its helpers (engine/sweep.h, engine/run_requests.h): the selection
// against hand-computed tune figures, the split by units (disjoint, covering, reproducible,
// whole units), request orders, the default policies fitted to a small calibration, the
// coverage line, and interval units reaching the summary (a hand-made GatheredResult).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "core/error.h"
#include "engine/run_config.h"
#include "engine/run_requests.h"
#include "engine/run_summary.h"
#include "engine/sweep.h"

using namespace semskip;

namespace {

// `n_docs` documents of `per_doc` requests each, ids in stream order.
std::vector<Request> requests_of(int n_docs, int per_doc) {
  std::vector<Request> out;
  for (int d = 0; d < n_docs; ++d)
    for (int k = 0; k < per_doc; ++k) {
      Request r;
      r.id = static_cast<int64_t>(out.size());
      r.document = "document:" + std::to_string(d);
      r.prompt_tokens = {1, 2, 3};
      out.push_back(r);
    }
  return out;
}

std::set<std::string> units_of(const std::vector<Request>& rs) {
  std::set<std::string> s;
  for (const Request& r : rs) s.insert(r.document);
  return s;
}

}  // namespace

TEST(SweepSelection, BestNetAtTheTargetPerFamily) {
  // Hand figures on tune (family, top-1, net):
  const std::vector<SweepCandidate> c = {
      {"residual,target=mlp", 0.921, 0.054},  // 0: reaches 0.90
      {"residual,target=mlp", 0.906, 0.067},  // 1: reaches, more net → selected
      {"residual,target=mlp", 0.898, 0.080},  // 2: more net but below the target
      {"static", 0.737, 0.088},               // 3: no static reaches 0.90
      {"random", 0.95, 0.02},                 // 4
      {"random", 0.97, 0.02},                 // 5: same net, higher agreement → selected
      {"residual,target=mlp", 0.90, 0.067},   // 6: ties 1 on net, lower agreement
  };
  const std::vector<SweepSelection> s = select_configurations(c, 0.90);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].family, "residual,target=mlp");
  EXPECT_EQ(s[0].selected, 1);
  EXPECT_EQ(s[1].family, "static");
  EXPECT_EQ(s[1].selected, -1);
  EXPECT_EQ(s[2].family, "random");
  EXPECT_EQ(s[2].selected, 5);
  // A lower target admits candidate 2.
  EXPECT_EQ(select_configurations(c, 0.89)[0].selected, 2);
}

TEST(SweepSelection, FamiliesAndTheEvalConfigurations) {
  EXPECT_EQ(sweep_family(Descriptor::parse("residual:p=2,r=7,tau=0.98,target=mlp"), "torch:flat"),
            "residual,target=mlp,index=torch:flat");
  EXPECT_EQ(sweep_family(Descriptor::parse("static:k=2"), ""), "static");
  SweepOutcome o;
  o.target_agreement = 0.9;
  for (const auto& [p, top1, net] : {std::tuple{"static:k=1", 0.74, 0.088}, std::tuple{"static:k=2", 0.91, 0.02},
                                     std::tuple{"random:rate=0.1", 0.78, 0.064}}) {
    PolicySummary s;
    s.policy = p;
    s.accuracy.top1_agreement.value = top1;
    s.flops_saved_net = net;
    o.tune.push_back(s);
  }
  std::vector<SweepConfiguration> to_eval;
  select_on_tune(o, to_eval);
  ASSERT_EQ(to_eval.size(), 1u);
  EXPECT_EQ(to_eval[0].policy, "static:k=2");
  EXPECT_EQ(o.eval_tune_row, (std::vector<int64_t>{1}));
  o.eval = {o.tune[1]};
  const report::Table t = sweep_table(o);
  EXPECT_EQ(t.n_rows(), 4u);  // three tune rows, one eval row
  const auto& split = std::get<std::vector<std::string>>(t.find("split")->data);
  EXPECT_EQ(split, (std::vector<std::string>{"tune", "tune", "tune", "eval"}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(t.find("selected")->data), (std::vector<int64_t>{0, 1, 0, 1}));
  const std::string text = format_sweep_text(o);
  EXPECT_NE(text.find("random: no configuration reached 90.0%"), std::string::npos) << text;
}

TEST(TuneEvalSplit, DisjointCoveringWholeUnitsAndReproducible) {
  const std::vector<Request> all = requests_of(10, 3);
  const SplitParts a = split_by_units(all, 0.5, 7, "--split");
  EXPECT_EQ(a.n_units_tune, 5);
  EXPECT_EQ(a.n_units_eval, 5);
  EXPECT_EQ(a.tune.size() + a.eval.size(), all.size());
  const std::set<std::string> tu = units_of(a.tune), eu = units_of(a.eval);
  EXPECT_EQ(tu.size(), 5u);
  EXPECT_EQ(eu.size(), 5u);
  for (const std::string& u : tu) EXPECT_EQ(eu.count(u), 0u) << u << " in both parts";
  std::set<int64_t> ids;
  for (const auto* part : {&a.tune, &a.eval}) {
    for (size_t i = 0; i < part->size(); ++i) {
      ids.insert((*part)[i].id);
      if (i > 0) EXPECT_LT((*part)[i - 1].id, (*part)[i].id);  // stream order kept
    }
  }
  EXPECT_EQ(ids.size(), all.size());
  const SplitParts b = split_by_units(all, 0.5, 7, "--split");
  EXPECT_EQ(units_of(b.tune), tu);
  // Another seed draws other documents (for these 10 documents and seeds 7, 8).
  EXPECT_NE(units_of(split_by_units(all, 0.5, 8, "--split").tune), tu);
  // Rounding, and at least one unit on each side.
  EXPECT_EQ(split_by_units(all, 0.25, 1, "--split").n_units_tune, 3);  // round(2.5) = 3
  EXPECT_EQ(split_by_units(all, 0.01, 1, "--split").n_units_tune, 1);
  EXPECT_EQ(split_by_units(all, 0.99, 1, "--split").n_units_eval, 1);
}

TEST(TuneEvalSplit, RefusalsAndTheOptionText) {
  EXPECT_THROW(split_by_units(requests_of(1, 4), 0.5, 0, "--split"), Error);  // one document
  EXPECT_DOUBLE_EQ(parse_split_fraction("0.5"), 0.5);
  EXPECT_DOUBLE_EQ(parse_split_fraction("tune=0.25"), 0.25);
  for (const char* bad : {"", "1", "0", "tune=", "half", "0.5x", "eval=0.5"}) {
    try {
      parse_split_fraction(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--split"), std::string::npos);
    }
  }
}

TEST(RequestOrders, OrderZeroIsTheWorkloadsAndOthersPermute) {
  const std::vector<Request> all = requests_of(6, 2);
  const auto ids = [](const std::vector<Request>& rs) {
    std::vector<int64_t> v;
    for (const Request& r : rs) v.push_back(r.id);
    return v;
  };
  EXPECT_EQ(ids(permuted_requests(all, 0, 3)), ids(all));
  const std::vector<int64_t> one = ids(permuted_requests(all, 1, 3)), two = ids(permuted_requests(all, 2, 3));
  EXPECT_NE(one, ids(all));
  EXPECT_NE(one, two);
  EXPECT_EQ(one, ids(permuted_requests(all, 1, 3)));
  std::vector<int64_t> sorted = one;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, ids(all));
}

TEST(DefaultPolicies, PcaKeysFittedToASmallCalibration) {
  std::vector<Descriptor> defaults;
  for (const std::string& d : RunConfig::default_policies()) defaults.push_back(Descriptor::parse(d));
  std::vector<std::string> warnings;
  // Plenty of tokens: unchanged, no warning.
  EXPECT_EQ(fit_policies_to_calibration(defaults, 1024, 8, warnings).back().text(), defaults.back().text());
  EXPECT_TRUE(warnings.empty());
  // 37 tokens: kdim 32, said in a warning.
  const std::vector<Descriptor> small = fit_policies_to_calibration(defaults, 37, 2, warnings);
  EXPECT_EQ(small.back().get_int("kdim", 0), 32);
  EXPECT_EQ(small.back().get_string("proj", ""), "pca");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("37"), std::string::npos);
  // 5 tokens: no projection at all.
  const std::vector<Descriptor> none = fit_policies_to_calibration(defaults, 5, 1, warnings);
  EXPECT_FALSE(none.back().has("proj"));
  EXPECT_FALSE(none.back().has("kdim"));
  // A policy the user gave is not changed: the message says what to set.
  try {
    fit_policies_to_calibration({Descriptor::parse("residual:p=2,r=7,tau=0.9,proj=pca,kdim=64")}, 37, 2, warnings);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("--calib-requests"), std::string::npos) << m;
    EXPECT_NE(m.find("kdim="), std::string::npos) << m;
    EXPECT_NE(m.find("37"), std::string::npos) << m;
  }
  // A cascade's segments each their own keys: the widest PCA keys decide.
  const Descriptor cascade = Descriptor::parse("cascade:p=1+7,r=7+9,tau=0.98,proj=pca,kdim=16+64");
  EXPECT_EQ(fit_policies_to_calibration({cascade}, 64, 2, warnings).back().text(), cascade.text());
  EXPECT_THROW(fit_policies_to_calibration({cascade}, 37, 2, warnings), Error);
  const Descriptor mixed = Descriptor::parse("cascade:p=1+7,r=7+9,tau=0.98,proj=pca+random,kdim=16+64");
  EXPECT_EQ(fit_policies_to_calibration({mixed}, 37, 2, warnings).back().text(), mixed.text());
}

TEST(Coverage, SaysWhatWasEvaluatedOfWhat) {
  RunRequests r;
  r.n_evaluated_total = 40;
  r.n_available_total = 312;
  r.unit = "document";
  r.n_units_evaluated = 12;
  r.n_units_available = 80;
  EXPECT_EQ(describe_coverage(r), "evaluated 40 of 312 requests (12 of 80 documents)");
  r.unit = "request";
  r.n_available_exact = false;
  EXPECT_EQ(describe_coverage(r), "evaluated 40 of at least 312 requests");
  EXPECT_EQ(unit_kind(requests_of(2, 2)), "document");
  std::vector<Request> mixed = requests_of(2, 1);
  mixed[1].document.clear();
  EXPECT_EQ(unit_kind(mixed), "request");
}

TEST(SummaryUnits, IntervalsResampleDocuments) {
  // Four requests in two documents, one step each (batch 1); hand figures per request:
  // lookups 10 each, hits 2, 4, 6, 8; FLOPs full 100 each, cost 90, 80, 70, 60.
  GatheredResult g;
  g.policy = "residual:p=2,r=7,tau=0.9";
  g.index = "torch:flat";
  g.layers = LayerCounts(2);
  RankRecord rank;
  BootstrapUnits units;
  units.unit = "document";
  for (int i = 0; i < 4; ++i) {
    RequestRecord q;
    q.request_id = i;
    q.step = i;
    q.n_tokens = 5;
    q.n_block_skips = i;
    q.accuracy.n_positions = 5;
    q.accuracy.n_top1_match = 4;
    g.requests.push_back(q);
    StepRecord st;
    st.step = i;
    st.n_tokens = 5;
    st.flops_full = 100;
    st.flops_executed = 90 - 10 * i;
    st.cache_lookups = 10;
    st.cache_hits = 2 * (i + 1);
    g.steps.push_back(st);
    g.layers.n_block_run[0] += 5;
    g.layers.n_block_run[1] += 5 - i;
    g.layers.n_block_skip[1] += i;
    rank.flops_full += 100;
    rank.flops_executed += 90 - 10 * i;
    rank.cache.lookups += 10;
    rank.cache.hits += 2 * (i + 1);
    units.unit_of_id[i] = i < 2 ? "document:0" : "document:1";
  }
  g.ranks = {rank};
  const PolicySummary s = summarize(g, 200, 1, false, units);
  EXPECT_EQ(s.bootstrap_unit, "document");
  EXPECT_EQ(s.n_units, 2);
  EXPECT_DOUBLE_EQ(s.hit_rate, 20.0 / 40.0);
  EXPECT_DOUBLE_EQ(s.hit_rate_ci.value, s.hit_rate);
  EXPECT_DOUBLE_EQ(s.flops_saved_net, 1.0 - 300.0 / 400.0);
  EXPECT_DOUBLE_EQ(s.skip_rate, 6.0 / 40.0);
  // Two documents: every resample is {0,0}, {0,1} or {1,1}; document 0's hit rate 6/20, 1's 14/20.
  EXPECT_NEAR(s.hit_rate_ci.lo, 0.3, 1e-12);
  EXPECT_NEAR(s.hit_rate_ci.hi, 0.7, 1e-12);
  EXPECT_NEAR(s.flops_saved_net_ci.lo, 1.0 - 170.0 / 200.0, 1e-12);
  EXPECT_NEAR(s.flops_saved_net_ci.hi, 1.0 - 130.0 / 200.0, 1e-12);
  EXPECT_NEAR(s.skip_rate_ci.lo, 1.0 / 20.0, 1e-12);
  EXPECT_NEAR(s.skip_rate_ci.hi, 5.0 / 20.0, 1e-12);
  // Every request equally accurate: the agreement interval is a point.
  EXPECT_DOUBLE_EQ(s.accuracy.top1_agreement.lo, 0.8);
  const std::string text = format_summary_text({s});
  EXPECT_NE(text.find("bootstrap over 2 documents"), std::string::npos) << text;
}
