// Malformed input: messages name file and line; --on-bad-line skip counts what it skips.
#include <gtest/gtest.h>

#include "workload_test_util.h"
#include "workloads/json_array_reader.h"

using namespace semskip;
using namespace semskip::test;

namespace {
bool has(const std::string& msg, const std::string& part) { return msg.find(part) != std::string::npos; }
}  // namespace

TEST(BadInput, JsonlErrorsNameFileAndLine) {
  const std::string path = write_temp("bad.jsonl",
                                      "{\"prompt\": \"fine\"}\n"
                                      "{\"prompt\": \"broken\"\n"
                                      "\n"
                                      "{\"reference\": \"no prompt\"}\n"
                                      "{\"prompt\": 3}\n"
                                      "{\"prompt\": \"p\", \"label\": 1}\n"
                                      "{\"prompt\": \"p\", \"choices\": [\"a\"], \"label\": 4}\n"
                                      "[1, 2]\n"
                                      "{\"prompt\": \"last\"}\n");
  std::string msg = error_of([&] { load("jsonl:" + path, tiny_context()); });
  EXPECT_TRUE(has(msg, path + ":2: invalid JSON")) << msg;

  auto w = Workload::open(WorkloadSpec::parse("jsonl:" + path + ",on_bad_line=skip"), tiny_context());
  std::vector<Request> r = drain(*w);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].prompt_text, "fine");
  EXPECT_EQ(r[1].prompt_text, "last");
  EXPECT_EQ(r[1].source_line, 9);
  const LoadCounters& c = w->counters();
  EXPECT_EQ(c.n_bad_lines_skipped, 6);
  ASSERT_EQ(c.skipped_examples.size(), LoadCounters::kMaxExamples);
  EXPECT_TRUE(has(c.skipped_examples[0], path + ":2: invalid JSON"));
  EXPECT_TRUE(has(c.skipped_examples[1], path + ":4: missing field 'prompt'"));
  EXPECT_TRUE(has(c.skipped_examples[2], path + ":5: field 'prompt' must be a string, found number"));
  EXPECT_TRUE(has(c.skipped_examples[3], path + ":6: 'label' needs 'choices'"));
  EXPECT_TRUE(has(c.skipped_examples[4], path + ":7: 'label' 4 is not an index into the 1 choices"));
}

TEST(BadInput, ShareGptElementsNameTheirLine) {
  const std::string path = write_temp("bad.json",
                                      "[\n"
                                      "  {\"id\": \"a\", \"conversations\": [{\"from\": \"human\", \"value\": \"q\"},\n"
                                      "                                 {\"from\": \"gpt\", \"value\": \"a\"}]},\n"
                                      "  {\"id\": \"b\", \"conversations\": [{\"from\": \"robot\", \"value\": \"q\"}]},\n"
                                      "  {\"id\": \"c\"},\n"
                                      "  {\"id\": \"d\", \"conversations\": [{\"from\": \"human\", \"value\": \"x\"}, {\"from\": \"gpt\", \"value\": 5}]},\n"
                                      "  {\"id\": \"e\", \"conversations\": [{\"from\": \"human\", \"value\": \"q2\"}, {\"from\": \"gpt\", \"value\": \"a2\"}]}\n"
                                      "]\n");
  std::string msg = error_of([&] { load("sharegpt:" + path, tiny_context()); });
  EXPECT_TRUE(has(msg, path + ":4: unknown speaker \"from\": \"robot\"")) << msg;
  auto w = Workload::open(WorkloadSpec::parse("sharegpt:" + path + ",on_bad_line=skip"), tiny_context());
  std::vector<Request> r = drain(*w);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].source_id, "a");
  EXPECT_EQ(r[1].source_id, "e");
  EXPECT_EQ(r[1].source_line, 7);
  EXPECT_EQ(w->counters().n_bad_lines_skipped, 3);
  EXPECT_TRUE(has(w->counters().skipped_examples[1], path + ":5: missing field 'conversations'"));
  EXPECT_TRUE(has(w->counters().skipped_examples[2], path + ":6: field 'value' must be a string"));
}

TEST(BadInput, BrokenArrayStructureIsAlwaysAnError) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"{\"id\": 1}", ":1: expected a JSON array ('['), found '{'"},
      {"", ":1: expected a JSON array ('['), found end of file"},
      {"[\n {\"a\": 1}\n {\"b\": 2}\n]", ":3: expected ',' or ']' between array elements, found '{'"},
      {"[\n {\"a\": \"x\"},\n {\"b\": [1, 2\n", "element starting on line 3 is not terminated"},
      {"[{\"a\": 1}] x", "data after the closing ']'"},
      {"[{\"a\": 1},\n]", ":2: expected an element after ','"},
      {"[{\"a\": 1}", ":1: expected ',' or ']' between array elements, found end of file"},
      {"[\n", ":2: unterminated array (no closing ']')"},
  };
  for (const Case& c : cases) {
    const std::string path = write_temp("array.json", c.text);
    std::string msg = error_of([&] { load("sharegpt:" + path + ",on_bad_line=skip", tiny_context()); });
    EXPECT_TRUE(has(msg, c.expected)) << c.text << " → " << msg;
  }
}

TEST(BadInput, ArrayReaderSplitsTrickyElements) {
  const std::string path = write_temp("tricky.json",
                                      "\xEF\xBB\xBF [ {\"s\": \"a ] , } [ { \\\" \\\\\"},\n"
                                      "  \"str, ]\", 12.5 ,\n"
                                      "  [1, [2, {\"x\": []}]], null, {}\n"
                                      "]\n");
  JsonArrayReader reader(path);
  std::vector<std::string> elems;
  std::vector<int64_t> lines;
  std::string e;
  while (reader.next(e)) {
    elems.push_back(e);
    lines.push_back(reader.element_line());
  }
  EXPECT_EQ(elems, (std::vector<std::string>{"{\"s\": \"a ] , } [ { \\\" \\\\\"}", "\"str, ]\"", "12.5",
                                             "[1, [2, {\"x\": []}]]", "null", "{}"}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 2, 3, 3, 3}));
  EXPECT_TRUE(JsonArrayReader(write_temp("empty.json", " [ ] \n")).next(e) == false);
}

TEST(BadInput, LmsysAndPairsSkipCounting) {
  const std::string lm = write_temp("lm.jsonl",
                                    "{\"conversation\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\"}]}\n"
                                    "{\"conversation\": [{\"role\": \"bot\", \"content\": \"q\"}]}\n"
                                    "{\"conversation\": \"text\"}\n"
                                    "{\"conversation\": [{\"role\": \"user\", \"content\": \"q\"}], \"turn\": \"one\"}\n");
  EXPECT_TRUE(has(error_of([&] { load("lmsys:" + lm, tiny_context()); }), lm + ":2: unknown role \"bot\""));
  auto w = Workload::open(WorkloadSpec::parse("lmsys:" + lm + ",on_bad_line=skip"), tiny_context());
  EXPECT_EQ(drain(*w).size(), 1u);
  EXPECT_EQ(w->counters().n_bad_lines_skipped, 3);

  const std::string pairs = write_temp("p.jsonl",
                                       "{\"origin\": \"a\", \"similar\": \"b\"}\n"
                                       "{\"origin\": \"c\"}\n"
                                       "{\"origin\": \"d\", \"similar\": \"e\"}\n");
  EXPECT_TRUE(has(error_of([&] { load("pairs:" + pairs, tiny_context()); }), pairs + ":2: missing field 'similar'"));
  for (const char* order : {"interleaved", "origins-first"}) {
    auto p = Workload::open(WorkloadSpec::parse("pairs:" + pairs + ",on_bad_line=skip,order=" + order), tiny_context());
    std::vector<Request> r = drain(*p);
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(p->counters().n_bad_lines_skipped, 1) << order;  // counted once, not per pass
    EXPECT_EQ(r[0].group, 0);
    EXPECT_EQ(r[3].group, 1);
  }
}

TEST(BadInput, MissingFilesAndTraces) {
  EXPECT_TRUE(has(error_of([] { load("jsonl:/nonexistent/x.jsonl", tiny_context()); }),
                  "/nonexistent/x.jsonl: cannot open file"));
  EXPECT_TRUE(has(error_of([] { load("sharegpt:/nonexistent/x.json", tiny_context()); }),
                  "/nonexistent/x.json: cannot open file"));
  const std::string t = write_temp("t.jsonl", "{\"prompt\": \"a\", \"at\": 2}\n{\"prompt\": \"b\", \"at\": 1}\n{\"prompt\": \"c\"}\n");
  EXPECT_TRUE(has(error_of([&] { load("jsonl:" + t + ",arrivals=trace:at", tiny_context()); }),
                  t + ":2: arrival time 1 s is earlier than the previous request's (2 s)"));
  EXPECT_EQ(load("jsonl:" + t + ",arrivals=trace:at,max_requests=1", tiny_context()).size(), 1u);
  const std::string u = write_temp("u.jsonl", "{\"prompt\": \"a\", \"at\": 1}\n{\"prompt\": \"c\"}\n");
  EXPECT_TRUE(has(error_of([&] { load("jsonl:" + u + ",arrivals=trace:at", tiny_context()); }),
                  u + ":2: missing arrival-time field 'at'"));
  EXPECT_TRUE(has(error_of([] { load("synthetic,arrivals=trace:at", tiny_context()); }),
                  "arrivals=trace:<field> reads a field of each JSON record"));
  EXPECT_TRUE(has(error_of([] { load("text", WorkloadContext{}); }), "needs a tokenizer"));
  EXPECT_TRUE(has(error_of([] { load("synthetic,min_prompt=3", WorkloadContext{}); }),
                  "length filters need a tokenizer"));
}
