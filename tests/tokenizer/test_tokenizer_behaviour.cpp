// Added and special tokens, decoding (special tokens, invalid UTF-8), vocabulary lookups.
#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace semskip {
namespace {

using Ids = std::vector<int32_t>;

Ids concat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

class QwenStyle : public ::testing::Test {
 protected:
  Tokenizer tok = Tokenizer::from_file(test::fixture_tokenizer("qwen2style"));
};

TEST_F(QwenStyle, SpecialTokensInsideTextAreSingleTokens) {
  const Ids hello{42, 1037, 81, 951, 1134};  // "Hello world!!" in cases.jsonl: H ell o Ġworld !!
  EXPECT_EQ(tok.encode("Hello world!!"), hello);
  EXPECT_EQ(tok.encode("<|endoftext|>Hello world!!<|im_end|>"), concat({{0}, hello, {2}}));
  EXPECT_EQ(tok.encode("<|im_start|><|im_end|><|endoftext|>"), (Ids{1, 2, 0}));
  EXPECT_EQ(tok.encode("Hello world!!<|im_start|>Hello world!!"), concat({hello, {1}, hello}));
  // Text around a special token is encoded as if the token were a boundary.
  EXPECT_EQ(tok.encode("a<|endoftext|>b"), concat({tok.encode("a"), {0}, tok.encode("b")}));
  // Almost-special text is ordinary text.
  const Ids partial = tok.encode("<|im_start|");
  EXPECT_EQ(std::count(partial.begin(), partial.end(), 1), 0);
  EXPECT_EQ(tok.decode(partial), "<|im_start|");
}

TEST_F(QwenStyle, VocabularyLookups) {
  EXPECT_EQ(tok.vocab_size(), 4096);
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 2);
  EXPECT_EQ(tok.token_to_id("Ġworld"), 951);
  EXPECT_FALSE(tok.token_to_id("no such token").has_value());
  EXPECT_EQ(tok.id_to_token(951), "Ġworld");
  EXPECT_EQ(tok.id_to_token(0), "<|endoftext|>");
  EXPECT_TRUE(tok.is_special(0));
  EXPECT_TRUE(tok.is_special(2));
  EXPECT_FALSE(tok.is_special(42));
  EXPECT_FALSE(tok.is_special(-5));
}

TEST_F(QwenStyle, DecodeSkipsSpecialTokensOnRequest) {
  const Ids ids = tok.encode("<|im_start|>Hello world!!<|im_end|>");
  EXPECT_EQ(tok.decode(ids), "<|im_start|>Hello world!!<|im_end|>");
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "Hello world!!");
}

TEST_F(QwenStyle, DecodeReplacesInvalidUtf8AsHuggingFaceDoes) {
  auto byte_id = [&](uint8_t b) { return *tok.token_to_id(byte_level::byte_to_char(b)); };
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(tok.decode({byte_id(0xC3)}), fffd);                              // half of "é"
  EXPECT_EQ(tok.decode({byte_id(0xC3), byte_id(0xC3), byte_id(0xA9)}), fffd + "é");
  EXPECT_EQ(tok.decode({byte_id(0xF0), byte_id(0x9F), byte_id(0x99)}), fffd);  // one maximal subpart
  EXPECT_EQ(tok.decode({byte_id(0xE2), byte_id('A')}), fffd + "A");
  EXPECT_EQ(tok.decode({byte_id(0xC0), byte_id(0x80)}), fffd + fffd);
  EXPECT_EQ(tok.decode({byte_id(0xED), byte_id(0xA0), byte_id(0x80)}), fffd + fffd + fffd);  // surrogate
}

TEST_F(QwenStyle, OutOfRangeIdsThrow) {
  EXPECT_THROW(tok.decode({42, 4096}), Error);
  EXPECT_THROW(tok.decode({-1}), Error);
  EXPECT_THROW(tok.id_to_token(1 << 20), Error);
  try {
    tok.decode({99999});
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 99999 is out of range [0, 4096)"), std::string::npos)
        << e.what();
  }
}

TEST_F(QwenStyle, InvalidUtf8TextThrows) {
  EXPECT_THROW(tok.encode("abc\xC3"), Error);
  EXPECT_THROW(tok.encode("\xFF"), Error);
  EXPECT_TRUE(tok.encode("").empty());
}

TEST_F(QwenStyle, EmbeddedNulIsEncodedLikeAnyByte) {
  const std::string text("a\0b", 3);
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
}

// A tokenizer.json variant with one extra added token "<mask>" carrying the given flags.
Tokenizer with_mask(const nlohmann::json& flags, const std::string& content = "<mask>") {
  auto j = test::fixture_json("qwen2style");
  nlohmann::json t = {{"id", 12345}, {"content", content}, {"single_word", false}, {"lstrip", false},
                      {"rstrip", false}, {"normalized", false}, {"special", false}};
  t.update(flags);
  j["added_tokens"].push_back(t);
  return Tokenizer::from_file(test::write_temp_json("tokenizer.json", j));
}

TEST(AddedTokens, TakeTheNextIdAfterTheVocabAsHuggingFaceDoes) {
  const Tokenizer tok = with_mask(nlohmann::json::object());
  EXPECT_EQ(tok.token_to_id("<mask>"), 4096);  // not the file's advisory 12345
  EXPECT_EQ(tok.vocab_size(), 4097);
  EXPECT_FALSE(tok.is_special(4096));
  EXPECT_EQ(tok.encode("x<mask>y"), concat({tok.encode("x"), {4096}, tok.encode("y")}));
  EXPECT_EQ(tok.decode({4096}, /*skip_special=*/true), "<mask>");
}

TEST(AddedTokens, LstripAndRstripTakeTheSurroundingSpaces) {
  // HF added_vocabulary.rs test_lstrip_unicode_space, without its lowercasing.
  const Tokenizer tok = with_mask({{"lstrip", true}, {"rstrip", true}, {"single_word", true}});
  const int32_t m = 4096;
  EXPECT_EQ(tok.encode("Hi <mask> there\t<mask>\t<mask>\u2000"),
            concat({tok.encode("Hi"), {m}, tok.encode("there"), {m, m}}));
}

TEST(AddedTokens, SingleWordOnlyMatchesWholeWords) {
  // HF added_vocabulary.rs test_single_word_is_correct, without its lowercasing.
  const Tokenizer tok = with_mask({{"single_word", true}});
  const int32_t m = 4096;
  EXPECT_EQ(tok.encode("<mask> My name <mask> A<mask> <mask>ony <mask>"),
            concat({{m}, tok.encode(" My name "), {m}, tok.encode(" A<mask> <mask>ony "), {m}}));
  // Punctuation and dashes are not word characters, combining marks are.
  EXPECT_EQ(tok.encode("<mask>, <mask>- \u25CC\u0330<mask>"),
            concat({{m}, tok.encode(", "), {m}, tok.encode("- \u25CC\u0330<mask>")}));
}

TEST(AddedTokens, NormalizedTokensMatchTheNormalizedText) {
  // Content written decomposed (e + U+0301); NFC makes it and the input "café" alike.
  const Tokenizer tok = with_mask({{"normalized", true}}, "cafe\u0301");
  const int32_t m = 4096;
  EXPECT_EQ(tok.encode("my café"), concat({tok.encode("my "), {m}}));
  EXPECT_EQ(tok.encode("my cafe\u0301"), concat({tok.encode("my "), {m}}));
  // HF decodes an added token from its normalized form through the ByteLevel decoder, which
  // reads "é" (U+00E9) as the byte-level character of byte 0xE9: invalid UTF-8 alone.
  EXPECT_EQ(tok.decode({m}), "caf\xEF\xBF\xBD");
  EXPECT_EQ(tok.id_to_token(m), "café");
}

TEST(AddedTokens, LongestMatchWins) {
  auto j = test::fixture_json("qwen2style");
  for (const char* c : {"<a>", "<a><b>"}) {
    j["added_tokens"].push_back({{"id", 0}, {"content", c}, {"special", true}, {"normalized", false}});
  }
  const Tokenizer tok = Tokenizer::from_file(test::write_temp_json("tokenizer.json", j));
  EXPECT_EQ(tok.encode("<a><b><a>"), (Ids{4097, 4096}));
}

}  // namespace
}  // namespace semskip
