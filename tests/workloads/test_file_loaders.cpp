// pairs, jsonl and text on the shipped samples.
#include <gtest/gtest.h>

#include "core/strings.h"
#include "workload_test_util.h"

using namespace semskip;
using namespace semskip::test;

namespace {
std::vector<int32_t> encode(const std::string& s) { return tiny_tokenizer()->encode(s); }
}  // namespace

TEST(Pairs, InterleavedOriginThenSimilar) {
  std::vector<Request> r = load("pairs", tiny_context());
  ASSERT_EQ(r.size(), 20u);
  EXPECT_EQ(r[0].prompt_text, "How do I reset my password?");
  EXPECT_EQ(r[1].prompt_text, "What are the steps to change my password?");
  EXPECT_EQ(r[18].prompt_text, "How can I make my bread rise more?");
  EXPECT_EQ(r[19].prompt_text, "What helps bread dough rise higher?");
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].group, static_cast<int64_t>(i / 2));
    EXPECT_EQ(r[i].source_line, static_cast<int64_t>(i / 2 + 1));
    EXPECT_EQ(r[i].n_tokens_output, 0);
    EXPECT_EQ(r[i].prompt_tokens, encode(r[i].prompt_text));
  }
  EXPECT_EQ(r[0].source_id, "0/origin");
  EXPECT_EQ(r[1].source_id, "0/similar");
}

TEST(Pairs, OriginsFirstInASecondPass) {
  std::vector<Request> r = load("pairs,order=origins-first", tiny_context());
  ASSERT_EQ(r.size(), 20u);
  EXPECT_EQ(r[0].prompt_text, "How do I reset my password?");
  EXPECT_EQ(r[9].prompt_text, "How can I make my bread rise more?");
  EXPECT_EQ(r[10].prompt_text, "What are the steps to change my password?");
  for (size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i].group, static_cast<int64_t>(i % 10));
}

TEST(Jsonl, PromptsReferencesChoicesLabels) {
  std::vector<Request> r = load("jsonl", tiny_context());
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].source_id, "t1");
  EXPECT_EQ(r[0].prompt_text, "The opposite of hot is");
  EXPECT_EQ(r[0].reference_text, " cold");
  EXPECT_EQ(r[0].n_tokens_output, static_cast<int64_t>(encode(" cold").size()));
  EXPECT_TRUE(r[0].choices.empty());
  EXPECT_FALSE(r[0].label.has_value());
  EXPECT_EQ(r[1].choices, (std::vector<std::string>{" zero degrees Celsius", " fifty degrees Celsius"}));
  EXPECT_EQ(r[1].label, 0);
  EXPECT_EQ(r[2].choices.size(), 3u);
  EXPECT_EQ(r[2].label, 1);  // written as the text " Jupiter"
  EXPECT_EQ(r[3].source_id, "4");  // an integer id
  EXPECT_EQ(r[4].source_id, "");
  EXPECT_EQ(r[4].n_tokens_output, 0);  // no reference
  for (const Request& q : r) EXPECT_EQ(q.arrival_s, 0.0);  // arrivals=none
}

TEST(Jsonl, IdsAgreeWithHuggingFace) {
  std::vector<Request> r = load("jsonl:" + test_data("hf_cases.jsonl"), tiny_context());
  ASSERT_EQ(r.size(), 1u);
  // Fixture case "numbers 12345 and 3.14159 and 1,000,000".
  EXPECT_EQ(r[0].prompt_tokens,
            (std::vector<int32_t>{80, 2315, 416, 223, 19, 20, 21, 22, 23, 274, 223, 21, 16, 19, 22,
                                  19, 23, 27, 274, 223, 19, 14, 18, 18, 18, 14, 18, 18, 18}));
  EXPECT_EQ(r[0].reference_tokens, (std::vector<int32_t>{42, 1037, 81, 951, 1134}));
}

TEST(Jsonl, TraceColumnGivesArrivals) {
  std::vector<Request> r = load("jsonl,arrivals=trace:arrival_s", tiny_context());
  ASSERT_EQ(r.size(), 5u);
  const std::vector<double> expected = {0.0, 0.25, 0.5, 1.75, 2.0};
  for (size_t i = 0; i < r.size(); ++i) EXPECT_DOUBLE_EQ(r[i].arrival_s, expected[i]);
}

TEST(Text, ChunksCoverEachDocumentExactly) {
  const std::string file = read_file(sample("heldout_sample.txt"));
  // Documents as written in the file: blocks of lines between blank lines.
  std::vector<std::string> docs;
  std::vector<int64_t> first_lines;
  int64_t line_no = 0;
  std::string current;
  for (const std::string& line : split(file, '\n')) {
    ++line_no;
    if (line.empty()) {
      if (!current.empty()) docs.push_back(current), current.clear();
      continue;
    }
    if (current.empty()) first_lines.push_back(line_no);
    current += (current.empty() ? "" : "\n") + line;
  }
  if (!current.empty()) docs.push_back(current);
  ASSERT_EQ(docs.size(), 9u);
  EXPECT_EQ(first_lines, (std::vector<int64_t>{1, 3, 5, 7, 23, 25, 27, 29, 75}));

  std::vector<Request> r = load("text,chunk=100,min_chunk=1", tiny_context());
  size_t k = 0;
  for (size_t d = 0; d < docs.size(); ++d) {
    const std::vector<int32_t> ids = encode(docs[d]);
    std::vector<int32_t> joined;
    for (size_t c = 0; c * 100 < ids.size(); ++c, ++k) {
      ASSERT_LT(k, r.size());
      EXPECT_EQ(r[k].source_line, first_lines[d]);
      EXPECT_EQ(r[k].n_tokens_prompt(), std::min<int64_t>(100, static_cast<int64_t>(ids.size() - c * 100)));
      EXPECT_EQ(r[k].n_tokens_output, 0);
      joined.insert(joined.end(), r[k].prompt_tokens.begin(), r[k].prompt_tokens.end());
    }
    EXPECT_EQ(joined, ids) << "document " << d;
  }
  EXPECT_EQ(k, r.size());
  EXPECT_EQ(r[0].prompt_text.rfind("And, behold, there came a man of God out of Judah", 0), 0u);
}

TEST(Text, ShortTailsBelowMinChunkAreDropped) {
  const std::string path = write_temp("doc.txt", "one two three four five six seven\n\n\n\nalpha\n");
  const int64_t n_first = static_cast<int64_t>(encode("one two three four five six seven").size());
  ASSERT_GT(n_first, 4);
  std::vector<Request> r = load("text:" + path + ",chunk=4,min_chunk=2", tiny_context());
  const int64_t tail = n_first % 4;
  const size_t expected_first = static_cast<size_t>(n_first / 4 + (tail >= 2 ? 1 : 0));
  const size_t n_alpha = encode("alpha").size() >= 2 ? 1 : 0;
  EXPECT_EQ(r.size(), expected_first + n_alpha);
  EXPECT_EQ(r.back().source_line, n_alpha ? 5 : 1);
}
