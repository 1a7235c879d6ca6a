// The synthetic generator: reproducible, and its repetition statistics are its parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/strings.h"
#include "workload_test_util.h"
#include "workloads/loaders/synthetic.h"

using namespace semskip;
using namespace semskip::test;

namespace {
// Text only: the statistics do not need tokens, and this keeps the tests fast.
std::vector<Request> gen(const std::string& options) {
  return load("synthetic:" + options, WorkloadContext{});
}
}  // namespace

TEST(Synthetic, ZipfProbabilitiesAreAnalytic) {
  std::vector<double> p = zipf_probabilities(3, 1.0);  // 1, 1/2, 1/3 over 11/6
  EXPECT_NEAR(p[0], 6.0 / 11, 1e-12);
  EXPECT_NEAR(p[1], 3.0 / 11, 1e-12);
  EXPECT_NEAR(p[2], 2.0 / 11, 1e-12);
  std::vector<double> u = zipf_probabilities(4, 0.0);
  for (double v : u) EXPECT_NEAR(v, 0.25, 1e-12);
}

TEST(Synthetic, SameSeedSameRequestsOtherSeedOthers) {
  std::vector<Request> a = gen("num=200,paraphrase=0.3,seed=5");
  std::vector<Request> b = gen("num=200,paraphrase=0.3,seed=5");
  std::vector<Request> c = gen("num=200,paraphrase=0.3,seed=6");
  ASSERT_EQ(a.size(), 200u);
  int n_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].prompt_text, b[i].prompt_text);
    EXPECT_EQ(a[i].reference_text, b[i].reference_text);
    EXPECT_EQ(a[i].group, b[i].group);
    n_diff += a[i].prompt_text != c[i].prompt_text;
    EXPECT_EQ(a[i].n_tokens_output, 64);
  }
  EXPECT_GT(n_diff, 150);
  // A prefix of a longer run is the shorter run: request i depends on (seed, i) only.
  std::vector<Request> longer = gen("num=400,paraphrase=0.3,seed=5");
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(longer[i].prompt_text, a[i].prompt_text);
}

TEST(Synthetic, TemplateFrequencyFollowsZipf) {
  const int64_t n = 20000, t = 50;
  for (double s : {0.0, 0.8, 1.0, 1.5}) {
    std::vector<Request> r = gen(fmt::format("num={},templates={},zipf={},seed=3", n, t, s));
    std::vector<double> count(t, 0.0);
    for (const Request& q : r) {
      ASSERT_GE(q.group, 0);
      ASSERT_LT(q.group, t);
      count[q.group] += 1;
    }
    // Analytic: P(0) = 1 / H(t, s). A binomial's standard deviation is sqrt(p(1-p)/n) < 0.0036;
    // the tolerances are over 4 of them.
    double h = 0;
    for (int64_t k = 1; k <= t; ++k) h += std::pow(double(k), -s);
    EXPECT_NEAR(count[0] / n, 1.0 / h, 0.015) << "s=" << s;
    EXPECT_NEAR(count[1] / n, std::pow(2.0, -s) / h, 0.015) << "s=" << s;
    EXPECT_NEAR(count[t - 1] / n, std::pow(double(t), -s) / h, 0.01) << "s=" << s;
  }
}

TEST(Synthetic, OneFillerNoParaphraseMeansOneTextPerTemplate) {
  std::vector<Request> r = gen("num=2000,templates=30,fillers=1,paraphrase=0");
  std::map<int64_t, std::string> text_of;
  std::set<std::string> texts;
  for (const Request& q : r) {
    auto [it, fresh] = text_of.emplace(q.group, q.prompt_text);
    if (!fresh) EXPECT_EQ(it->second, q.prompt_text);
    texts.insert(q.prompt_text);
  }
  EXPECT_EQ(texts.size(), text_of.size());  // and different templates never share a text
  EXPECT_EQ(text_of.size(), 30u);
  // More fillers give more distinct texts per template.
  std::set<std::string> more;
  for (const Request& q : gen("num=2000,templates=30,fillers=4,paraphrase=0")) more.insert(q.prompt_text);
  EXPECT_GT(more.size(), 60u);
}

TEST(Synthetic, ParaphraseReplacesTheExpectedShareOfWords) {
  const SyntheticVocabulary& vocab = SyntheticVocabulary::get();
  std::vector<Request> base = gen("num=3000,paraphrase=0,seed=9");
  std::vector<Request> all = gen("num=3000,paraphrase=1,seed=9");
  std::vector<Request> some = gen("num=3000,paraphrase=0.3,seed=9");
  int64_t n_words = 0, n_changed_some = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    // The draws do not depend on p, so the three runs share templates and fillers.
    ASSERT_EQ(base[i].group, all[i].group);
    std::vector<std::string> w0 = split(base[i].prompt_text, ' ');
    std::vector<std::string> w1 = split(all[i].prompt_text, ' ');
    std::vector<std::string> w2 = split(some[i].prompt_text, ' ');
    ASSERT_EQ(w0.size(), w1.size());
    ASSERT_EQ(w0.size(), w2.size());
    int64_t changed_all = 0;
    for (size_t k = 0; k < w0.size(); ++k) {
      changed_all += w0[k] != w1[k];
      n_changed_some += w0[k] != w2[k];
    }
    const int64_t n_para = vocab.n_paraphrasable(base[i].prompt_text);
    EXPECT_EQ(changed_all, n_para) << base[i].prompt_text << " / " << all[i].prompt_text;
    n_words += n_para;
  }
  ASSERT_GT(n_words, 5000);  // sd of the share below is then < 0.007
  EXPECT_NEAR(double(n_changed_some) / n_words, 0.3, 0.02);
}

TEST(Synthetic, ParametersAreChecked) {
  EXPECT_NE(error_of([] { gen("templates=0"); }).find("templates must be in [1,"), std::string::npos);
  EXPECT_NE(error_of([] { gen("templates=1000000"); }).find("templates must be in [1,"), std::string::npos);
  EXPECT_NE(error_of([] { gen("paraphrase=1.5"); }).find("paraphrase must be in [0, 1]"), std::string::npos);
  EXPECT_NE(error_of([] { gen("fillers=99"); }).find("fillers must be in [1,"), std::string::npos);
  EXPECT_NE(error_of([] { gen("zipf=-1"); }).find("zipf must be >= 0"), std::string::npos);
}

TEST(Synthetic, ChatTemplateAndTokens) {
  std::vector<Request> r = load("synthetic:num=3,chat=chatml", tiny_context());
  for (const Request& q : r) {
    EXPECT_EQ(q.prompt_text.rfind("<|im_start|>user\n", 0), 0u);
    EXPECT_EQ(q.prompt_tokens, tiny_tokenizer()->encode(q.prompt_text));
    EXPECT_EQ(q.reference_tokens, tiny_tokenizer()->encode(q.reference_text));
  }
}
