// Every case of the reference fixtures (HF tokenizers, add_special_tokens=False): ids and
// decoded text, with both merge spellings.
#include <gtest/gtest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <thread>

#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/tokenizer.h"

namespace semskip {
namespace {

class FixtureCases : public ::testing::TestWithParam<std::string> {};

void expect_all_cases(const Tokenizer& tok, const std::vector<test::TokenizerCase>& cases) {
  ASSERT_GT(cases.size(), 100u);
  for (const auto& c : cases) {
    const std::vector<int32_t> ids = tok.encode(c.text);
    EXPECT_EQ(ids, c.ids) << "cases.jsonl line " << c.line << ", text: " << c.text
                          << "\n  got: " << fmt::format("{}", fmt::join(ids, " "));
    EXPECT_EQ(tok.decode(c.ids), c.decoded) << "cases.jsonl line " << c.line << ", text: " << c.text;
  }
}

TEST_P(FixtureCases, IdsAndDecodedMatchHuggingFace) {
  const Tokenizer tok = Tokenizer::from_file(test::fixture_tokenizer(GetParam()));
  expect_all_cases(tok, test::fixture_cases(GetParam()));
}

TEST_P(FixtureCases, StringMergesGiveTheSameTokenizer) {
  // Published Qwen2 and Llama-3 files spell each merge "a b" instead of ["a", "b"].
  auto j = test::fixture_json(GetParam());
  auto& merges = j["model"]["merges"];
  ASSERT_TRUE(merges[0].is_array());
  for (auto& m : merges) m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  const Tokenizer tok = Tokenizer::from_file(test::write_temp_json("tokenizer.json", j));
  expect_all_cases(tok, test::fixture_cases(GetParam()));
}

TEST_P(FixtureCases, DecodeOfEncodeGivesTheNormalizedText) {
  const Tokenizer tok = Tokenizer::from_file(test::fixture_tokenizer(GetParam()));
  for (const auto& c : test::fixture_cases(GetParam())) {
    EXPECT_EQ(tok.decode(tok.encode(c.text)), c.decoded) << "text: " << c.text;
  }
}

TEST_P(FixtureCases, ConcurrentEncodingAgrees) {
  // The per-piece cache is shared; threads must see the same ids as one thread.
  const Tokenizer tok = Tokenizer::from_file(test::fixture_tokenizer(GetParam()));
  const auto cases = test::fixture_cases(GetParam());
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (const auto& c : cases) failures[t] += tok.encode(c.text) != c.ids;
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, FixtureCases, ::testing::Values("qwen2style", "llama3style"));

}  // namespace
}  // namespace semskip
