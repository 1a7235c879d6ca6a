// vllm-random, vllm-prefix-repetition and vllm-sonnet: lengths, shared parts and seeds as
// their definitions say.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "core/strings.h"
#include "workload_test_util.h"

using namespace semskip;
using namespace semskip::test;

TEST(VllmRandom, LengthsRampAndSeed) {
  std::vector<Request> r = load("vllm-random:num=40,input_len=20,output_len=7,prefix_len=5", tiny_context());
  ASSERT_EQ(r.size(), 40u);
  const Tokenizer& tok = *tiny_tokenizer();
  // The tiny tokenizer's special tokens are ids 0-2; the ordinary ones 3..vocab-1.
  ASSERT_TRUE(tok.is_special(0) && tok.is_special(2) && !tok.is_special(3));
  const int32_t v = tok.vocab_size() - 3;
  for (const Request& q : r) {
    ASSERT_EQ(q.n_tokens_prompt(), 25);
    EXPECT_EQ(q.n_tokens_output, 7);
    EXPECT_EQ(std::vector<int32_t>(q.prompt_tokens.begin(), q.prompt_tokens.begin() + 5),
              std::vector<int32_t>(r[0].prompt_tokens.begin(), r[0].prompt_tokens.begin() + 5));
    for (int32_t id : q.prompt_tokens) EXPECT_FALSE(tok.is_special(id));
    for (int j = 5; j + 1 < 25; ++j)  // after the prefix the ids run through the vocabulary
      EXPECT_EQ(q.prompt_tokens[j + 1] - 3, (q.prompt_tokens[j] - 3 + 1) % v);
    EXPECT_EQ(q.prompt_text, tok.decode(q.prompt_tokens));
  }
  std::vector<Request> again = load("vllm-random:num=40,input_len=20,output_len=7,prefix_len=5", tiny_context());
  std::vector<Request> other = load("vllm-random:num=40,input_len=20,output_len=7,prefix_len=5,seed=1", tiny_context());
  int n_same_other = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(again[i].prompt_tokens, r[i].prompt_tokens);
    n_same_other += other[i].prompt_tokens == r[i].prompt_tokens;
  }
  EXPECT_EQ(n_same_other, 0);
}

TEST(VllmRandom, RangeRatioBoundsLengths) {
  std::vector<Request> r = load("vllm-random:num=300,input_len=20,output_len=10,range_ratio=0.5", tiny_context());
  std::set<int64_t> in, out;
  for (const Request& q : r) {
    in.insert(q.n_tokens_prompt());
    out.insert(q.n_tokens_output);
  }
  EXPECT_EQ(*in.begin(), 10);  // every length of [10, 30] and [5, 15] is drawn in 300 tries
  EXPECT_EQ(*in.rbegin(), 30);
  EXPECT_EQ(in.size(), 21u);
  EXPECT_EQ(*out.begin(), 5);
  EXPECT_EQ(*out.rbegin(), 15);
  EXPECT_NE(error_of([] { load("vllm-random:range_ratio=1", tiny_context()); }).find("range_ratio"),
            std::string::npos);
}

TEST(VllmPrefixRepetition, PrefixesSharedSuffixesOwnShuffled) {
  std::vector<Request> r = load("vllm-prefix-repetition:num=22,num_prefixes=4,prefix_len=8,suffix_len=5,output_len=3",
                                tiny_context());
  ASSERT_EQ(r.size(), 20u);  // 22 / 4 = 5 per prefix
  std::map<std::vector<int32_t>, int> prefix_count;
  std::set<std::vector<int32_t>> suffixes;
  std::vector<std::vector<int32_t>> prefix_seq;
  for (const Request& q : r) {
    ASSERT_EQ(q.n_tokens_prompt(), 13);
    EXPECT_EQ(q.n_tokens_output, 3);
    std::vector<int32_t> p(q.prompt_tokens.begin(), q.prompt_tokens.begin() + 8);
    prefix_count[p]++;
    prefix_seq.push_back(p);
    suffixes.insert(std::vector<int32_t>(q.prompt_tokens.begin() + 8, q.prompt_tokens.end()));
  }
  EXPECT_EQ(prefix_count.size(), 4u);
  for (const auto& [p, n] : prefix_count) EXPECT_EQ(n, 5);
  EXPECT_EQ(suffixes.size(), 20u);
  int changes = 0;  // grouped order would change prefix only 3 times
  for (size_t i = 1; i < prefix_seq.size(); ++i) changes += prefix_seq[i] != prefix_seq[i - 1];
  EXPECT_GT(changes, 3);
  EXPECT_NE(error_of([] { load("vllm-prefix-repetition:num=3,num_prefixes=4", tiny_context()); })
                .find("num (3) must be at least num_prefixes (4)"),
            std::string::npos);
}

TEST(VllmSonnet, BasePromptPrefixLinesAndLength) {
  const std::string base = "Pick as many lines as you can from these poem lines:\n";
  std::vector<std::string> poem;
  for (const std::string& l : split(read_file(sample("psalms.txt")), '\n'))
    if (!l.empty()) poem.push_back(l + "\n");
  const Tokenizer& tok = *tiny_tokenizer();
  double total = 0;
  for (const std::string& l : poem) total += tok.encode(l).size();
  const double avg = total / poem.size();
  const double base_len = tok.encode(base).size();  // chat=plain: the base prompt as is
  const int64_t n_prefix = std::llround((200 - base_len) / avg);
  const int64_t n_input = std::llround((550 - base_len) / avg);
  std::string prefix;
  for (int64_t k = 0; k < n_prefix; ++k) prefix += poem[k];

  std::vector<Request> r = load("vllm-sonnet:num=20,chat=plain", tiny_context());
  ASSERT_EQ(r.size(), 20u);
  std::set<std::string> prompts;
  double mean_len = 0;
  for (const Request& q : r) {
    ASSERT_EQ(q.prompt_text.rfind(base + prefix, 0), 0u);
    std::vector<std::string> lines = split(q.prompt_text.substr(base.size()), '\n');
    ASSERT_EQ(lines.back(), "");
    lines.pop_back();
    EXPECT_EQ(static_cast<int64_t>(lines.size()), n_input);
    for (const std::string& l : lines)
      EXPECT_NE(std::find(poem.begin(), poem.end(), l + "\n"), poem.end()) << l;
    EXPECT_EQ(q.n_tokens_output, 150);
    prompts.insert(q.prompt_text);
    mean_len += q.n_tokens_prompt() / 20.0;
  }
  EXPECT_EQ(prompts.size(), 20u);
  // The line counts aim at input_len with the average line; the prefix is the poem's own
  // first lines, the rest are average in expectation.
  const double expected_len = base_len + tok.encode(prefix).size() + (n_input - n_prefix) * avg;
  EXPECT_NEAR(mean_len, expected_len, 0.1 * expected_len);
  std::vector<Request> chatml = load("vllm-sonnet:num=1", tiny_context("qwen2"));
  EXPECT_EQ(chatml[0].prompt_text.rfind("<|im_start|>user\n" + base + poem[0], 0), 0u);
  EXPECT_NE(error_of([] { load("vllm-sonnet:input_len=5", tiny_context()); })
                .find("input_len must be higher than the base prompt"),
            std::string::npos);
}
