// Request::document, the unit that intervals resample and a tune/eval split divides: the
// blank-line separated documents of a text workload (counted by hand from the file written
// here), the conversation of a chat record (the ShareGPT sample's records, expanded by turn),
// none for a generator.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "workload_test_util.h"

using namespace semskip;
using namespace semskip::test;

TEST(RequestUnits, TextDocumentsAreTheBlankLineSeparatedParagraphs) {
  // Three documents (lines 1-2, 5, 7); document 0 is long enough for several chunks.
  const std::string path = write_temp("docs.txt",
                                      "the first document has a good many words in it so that it is cut\n"
                                      "into several chunks of four tokens each\n\n\n"
                                      "second document here\n\n"
                                      "and a third one\n");
  const std::vector<Request> r = load("text:" + path + ",chunk=4,min_chunk=1", tiny_context());
  ASSERT_GT(r.size(), 4u);
  std::set<std::string> docs;
  for (const Request& q : r) {
    docs.insert(q.document);
    const int64_t line = q.source_line;
    const std::string expected = line == 1 ? "document:0" : line == 5 ? "document:1" : "document:2";
    EXPECT_EQ(q.document, expected) << q.source_id << " at line " << line;
    EXPECT_EQ(q.source_id.substr(0, q.source_id.find('/')), "doc" + q.document.substr(9));
  }
  EXPECT_EQ(docs, (std::set<std::string>{"document:0", "document:1", "document:2"}));
  EXPECT_GT(std::count_if(r.begin(), r.end(), [](const Request& q) { return q.document == "document:0"; }), 2);
}

TEST(RequestUnits, ChatRequestsCarryTheirConversation) {
  // turns=all expands a record into one request per answer: sg-003's two requests share it.
  const std::vector<Request> r = load("sharegpt,chat=plain,turns=all", tiny_context());
  ASSERT_EQ(r.size(), 8u);
  ASSERT_EQ(r[2].source_id, "sg-003/0");
  ASSERT_EQ(r[3].source_id, "sg-003/1");
  EXPECT_EQ(r[2].document, r[3].document);
  EXPECT_EQ(r[2].document.rfind("conversation:", 0), 0u);
  EXPECT_NE(r[2].document.find("sharegpt_sample.json:"), std::string::npos);
  EXPECT_NE(r[1].document, r[2].document);
  EXPECT_NE(r[3].document, r[4].document);
}

TEST(RequestUnits, GeneratedRequestsAreTheirOwnUnit) {
  const std::vector<Request> r = load("vllm-random:num=3,input_len=8,output_len=2", tiny_context());
  ASSERT_EQ(r.size(), 3u);
  for (const Request& q : r) EXPECT_TRUE(q.document.empty());
}
