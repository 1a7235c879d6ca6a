// sharegpt and lmsys on the shipped samples: prompts, references, ids and lines written out
// by hand from the sample files.
#include <gtest/gtest.h>

#include "workload_test_util.h"

using namespace semskip;
using namespace semskip::test;

namespace {
std::vector<int32_t> encode(const std::string& s) { return tiny_tokenizer()->encode(s); }
}  // namespace

TEST(ShareGpt, FirstTurnsOfTheSample) {
  auto w = Workload::open(WorkloadSpec::parse("sharegpt,chat=plain"), tiny_context());
  std::vector<Request> r = drain(*w);
  ASSERT_EQ(r.size(), 7u);  // sg-004 has no answer
  EXPECT_EQ(w->counters().n_filtered, 1);
  EXPECT_EQ(w->counters().n_bad_lines_skipped, 0);
  const std::vector<std::string> ids = {"sg-001", "sg-002", "sg-003", "sg-005", "sg-006", "sg-007", "sg-008"};
  const std::vector<int64_t> lines = {2, 9, 17, 32, 40, 47, 54};
  for (size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].id, static_cast<int64_t>(i));
    EXPECT_EQ(r[i].source_id, ids[i]);
    EXPECT_EQ(r[i].source_line, lines[i]);
    EXPECT_EQ(r[i].prompt_tokens, encode(r[i].prompt_text));
    EXPECT_EQ(r[i].reference_tokens, encode(r[i].reference_text));
    EXPECT_EQ(r[i].n_tokens_output, static_cast<int64_t>(r[i].reference_tokens.size()));
    EXPECT_EQ(r[i].arrival_s, 0.0);
  }
  EXPECT_EQ(r[0].prompt_text, "What is the capital of France?");
  EXPECT_EQ(r[0].reference_text, "The capital of France is Paris.");
  EXPECT_EQ(r[1].prompt_text, "You answer in one short sentence.\nWhy is the sky blue?");
  EXPECT_EQ(r[2].prompt_text, "Give me a word that rhymes with cat.");
  EXPECT_EQ(r[2].reference_text, "Hat.");
  EXPECT_EQ(r[3].prompt_text, "How many days are in a leap year?");  // the leading gpt turn is not a prompt
  EXPECT_EQ(r[4].prompt_text, "Write \"hello\" twice,\none per line.");
  EXPECT_EQ(r[4].reference_text, "hello\nhello");
  EXPECT_NE(r[0].where().find("sharegpt_sample.json:2"), std::string::npos);
}

TEST(ShareGpt, ChatMlFromTheModelFamily) {
  std::vector<Request> r = load("sharegpt,max_requests=2", tiny_context("qwen2"));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].prompt_text,
            "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(r[1].prompt_text,
            "<|im_start|>system\nYou answer in one short sentence.<|im_end|>\n"
            "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(r[0].prompt_tokens.front(), 1);  // <|im_start|> is one special token
}

TEST(ShareGpt, IdsAgreeWithHuggingFace) {
  std::vector<Request> r = load("sharegpt:" + test_data("hf_cases.json") + ",chat=chatml", tiny_context());
  ASSERT_EQ(r.size(), 1u);
  // Fixture case "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n".
  EXPECT_EQ(r[0].prompt_tokens, (std::vector<int32_t>{1, 394, 270, 201, 3363, 330, 223, 20, 13, 20,
                                                      33, 2, 201, 1, 545, 443, 447, 201}));
  // Fixture case "Hello world!!".
  EXPECT_EQ(r[0].reference_tokens, (std::vector<int32_t>{42, 1037, 81, 951, 1134}));
  EXPECT_EQ(r[0].n_tokens_output, 5);
}

TEST(ShareGpt, AllTurnsExpandConversations) {
  std::vector<Request> r = load("sharegpt,chat=plain,turns=all,output_len=16", tiny_context());
  ASSERT_EQ(r.size(), 8u);
  EXPECT_EQ(r[2].source_id, "sg-003/0");
  EXPECT_EQ(r[2].prompt_text, "Give me a word that rhymes with cat.");
  EXPECT_EQ(r[3].source_id, "sg-003/1");
  EXPECT_EQ(r[3].prompt_text, "Give me a word that rhymes with cat.\nHat.\nAnd one that rhymes with dog?");
  EXPECT_EQ(r[3].reference_text, "Log.");
  EXPECT_EQ(r[4].prompt_text, "Hello! How can I help you today?\nHow many days are in a leap year?");
  for (const Request& q : r) EXPECT_EQ(q.n_tokens_output, 16);
  std::vector<Request> c = load("sharegpt,chat=chatml,turns=all", tiny_context());
  EXPECT_EQ(c[3].prompt_text,
            "<|im_start|>user\nGive me a word that rhymes with cat.<|im_end|>\n"
            "<|im_start|>assistant\nHat.<|im_end|>\n"
            "<|im_start|>user\nAnd one that rhymes with dog?<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ShareGpt, MaxRequestsStopsEarly) {
  EXPECT_EQ(load("sharegpt,max_requests=3", tiny_context()).size(), 3u);
  EXPECT_EQ(load("sharegpt,max_requests=0", tiny_context()).size(), 0u);
  EXPECT_EQ(load("sharegpt,max_requests=100", tiny_context()).size(), 7u);
}

TEST(ShareGpt, TextOnlyWithoutTokenizer) {
  std::vector<Request> r = load("sharegpt,chat=plain", WorkloadContext{});
  ASSERT_EQ(r.size(), 7u);
  EXPECT_TRUE(r[0].prompt_tokens.empty());
  EXPECT_EQ(r[0].prompt_text, "What is the capital of France?");
}

TEST(Lmsys, FirstTurnsAndFilters) {
  auto w = Workload::open(WorkloadSpec::parse("lmsys,chat=plain"), tiny_context());
  std::vector<Request> r = drain(*w);
  ASSERT_EQ(r.size(), 6u);
  EXPECT_EQ(r[0].prompt_text, "What is two plus two?");
  EXPECT_EQ(r[0].reference_text, "Two plus two is four.");
  EXPECT_EQ(r[1].prompt_text, "Wie spät ist es in Berlin?");
  EXPECT_EQ(r[4].source_id, "lm-05");
  EXPECT_EQ(r[4].source_line, 6);  // line 5 is blank
  EXPECT_EQ(r[1].prompt_tokens, encode("Wie spät ist es in Berlin?"));

  auto ids = [](const std::vector<Request>& rs) {
    std::vector<std::string> out;
    for (const Request& q : rs) out.push_back(q.source_id);
    return out;
  };
  auto en = Workload::open(WorkloadSpec::parse("lmsys,language=English"), tiny_context());
  EXPECT_EQ(ids(drain(*en)), (std::vector<std::string>{"lm-01", "lm-03", "lm-05", "lm-06"}));
  EXPECT_EQ(en->counters().n_filtered, 2);
  EXPECT_EQ(ids(load("lmsys,language=English,min_turns=2", tiny_context())),
            (std::vector<std::string>{"lm-03", "lm-06"}));
  EXPECT_EQ(ids(load("lmsys,max_turns=1", tiny_context())),
            (std::vector<std::string>{"lm-01", "lm-02", "lm-04", "lm-05"}));
  EXPECT_EQ(ids(load("lmsys,model=koala-13b", tiny_context())),
            (std::vector<std::string>{"lm-02", "lm-06"}));
  EXPECT_EQ(ids(load("lmsys,language=English,turns=all", tiny_context())),
            (std::vector<std::string>{"lm-01/0", "lm-03/0", "lm-03/1", "lm-05/0", "lm-06/0",
                                      "lm-06/1", "lm-06/2"}));
}

TEST(Lmsys, Llama3FromTheModelFamily) {
  std::vector<Request> r = load("lmsys,max_requests=1", tiny_context("llama"));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].prompt_text,
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is two plus two?"
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}
