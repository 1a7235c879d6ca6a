// The tokenizer's building blocks: byte-level mapping, lossy UTF-8, the regex engine's
// Oniguruma-compatible matching, Unicode normalisation.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace semskip {
namespace {

using Matches = std::vector<std::pair<size_t, size_t>>;

TEST(ByteLevel, Gpt2Mapping) {
  EXPECT_EQ(byte_level::byte_to_char('a'), "a");
  EXPECT_EQ(byte_level::byte_to_char(' '), "Ġ");    // U+0120
  EXPECT_EQ(byte_level::byte_to_char('\n'), "Ċ");   // U+010A
  EXPECT_EQ(byte_level::byte_to_char(0x00), "Ā");   // U+0100
  EXPECT_EQ(byte_level::byte_to_char(0xAD), "Ń");   // U+0143, the last shifted byte
  EXPECT_EQ(byte_level::byte_to_char(0xE9), "é");   // printable Latin-1 stands for itself
  for (int b = 0; b < 256; ++b) {
    std::string bytes;
    byte_level::decode_token(byte_level::byte_to_char(static_cast<uint8_t>(b)), bytes);
    EXPECT_EQ(bytes, std::string(1, static_cast<char>(b))) << "byte " << b;
  }
  std::string raw;
  byte_level::decode_token("<|im_end|>", raw);  // no byte characters: the token's own bytes
  EXPECT_EQ(raw, "<|im_end|>");
}

TEST(Utf8, LossyReplacesMaximalSubparts) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8::lossy("plain é"), "plain é");
  EXPECT_EQ(utf8::lossy("a\x80"), "a" + r);
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x99"), r);
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x99" "A"), r + "A");
  EXPECT_EQ(utf8::lossy("\xE0\x80\x80"), r + r + r);  // overlong
  EXPECT_EQ(utf8::lossy("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(utf8::find_invalid("ok\xC3\xA9\xC3"), 4u);
  EXPECT_EQ(utf8::find_invalid("ok"), 2u);
}

TEST(Regex, FindsAllMatchesLikeOniguruma) {
  const Regex words(R"(\p{L}+)", "test");
  EXPECT_EQ(words.find_all("ab, cé!"), (Matches{{0, 2}, {4, 7}}));
  // An empty match right after the previous match is skipped.
  const Regex as("a*", "test");
  EXPECT_EQ(as.find_all("baaa"), (Matches{{0, 0}, {1, 4}}));
  EXPECT_TRUE(words.find_all("").empty());
}

TEST(Regex, WhitespaceIsUnicodeWhiteSpace) {
  // PCRE2 alone counts U+180E MONGOLIAN VOWEL SEPARATOR as \s; Oniguruma (HF) does not.
  const Regex space(R"(\s+)", "test");
  EXPECT_TRUE(space.find_all("a\u180Eb").empty());
  EXPECT_EQ(space.find_all("a\u0085\u3000b"), (Matches{{1, 6}}));
  const Regex not_space(R"([^\s\p{L}]+)", "test");
  EXPECT_EQ(not_space.find_all("a\u180E b"), (Matches{{1, 4}}));
  const Regex lookahead(R"(\s+(?!\S))", "test");
  EXPECT_EQ(lookahead.find_all("a  b"), (Matches{{1, 2}}));
  EXPECT_EQ(Regex::onig_compatible(R"([\]\s]\\s\Q\s\E)"),
            R"([\]\x{9}-\x{D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]\\s\Q\s\E)");
}

TEST(Normalizer, Nfc) {
  const Normalizer nfc = Normalizer::from_json({{"type", "NFC"}}, "test");
  EXPECT_EQ(nfc.apply("cafe\u0301"), "café");
  EXPECT_EQ(nfc.apply(std::string("a\0b", 3)), std::string("a\0b", 3));
  const Normalizer seq = Normalizer::from_json(
      {{"type", "Sequence"}, {"normalizers", {{{"type", "NFKD"}}, {{"type", "NFC"}}}}}, "test");
  EXPECT_EQ(seq.apply("\uFB01"), "fi");  // compatibility ligature
  EXPECT_TRUE(Normalizer::from_json(nullptr, "test").is_identity());
}

using Pieces = std::vector<std::string>;

Pieces split_with(const std::string& behavior, const std::string& text) {
  // HF split.rs test `basic`: an inverted word/punctuation regex, so the spaces are the matches.
  const nlohmann::json j = {{"type", "Split"}, {"pattern", {{"Regex", R"(\w+|[^\w\s]+)"}}},
                            {"behavior", behavior}, {"invert", true}};
  Pieces out;
  PreTokenizer::from_json(j, "test").split(text, out);
  return out;
}

TEST(PreTokenizer, SplitBehavioursAsHuggingFace) {
  const std::string s = "How are you doing?";
  EXPECT_EQ(split_with("Removed", s), (Pieces{"How", "are", "you", "doing", "?"}));
  EXPECT_EQ(split_with("Isolated", s), (Pieces{"How", " ", "are", " ", "you", " ", "doing", "?"}));
  EXPECT_EQ(split_with("MergedWithPrevious", s), (Pieces{"How ", "are ", "you ", "doing", "?"}));
  EXPECT_EQ(split_with("MergedWithNext", s), (Pieces{"How", " are", " you", " doing", "?"}));
  EXPECT_EQ(split_with("Contiguous", s), (Pieces{"How", " ", "are", " ", "you", " ", "doing?"}));
}

TEST(PreTokenizer, ByteLevelPrefixSpaceAndGpt2Regex) {
  const nlohmann::json j = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  Pieces out;
  PreTokenizer::from_json(j, "test").split("Hello world's 123\n", out);
  EXPECT_EQ(out, (Pieces{"ĠHello", "Ġworld", "'s", "Ġ123", "Ċ"}));
  const nlohmann::json literal = {{"type", "Split"}, {"pattern", {{"String", "a.b"}}},
                                  {"behavior", "Removed"}, {"invert", false}};
  out.clear();
  PreTokenizer::from_json(literal, "test").split("xa.bya_bz", out);
  EXPECT_EQ(out, (Pieces{"x", "ya_bz"}));  // the dot is literal
}

}  // namespace
}  // namespace semskip
