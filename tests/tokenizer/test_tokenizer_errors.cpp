// Malformed or unsupported tokenizer.json files: semskip::Error naming the file and the problem.
#include <functional>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/tokenizer/tokenizer_test_util.h"
#include "tokenizer/tokenizer.h"

namespace semskip {
namespace {

using nlohmann::json;

// Loading `path` throws semskip::Error whose message names the file and contains `problem`.
void expect_load_error(const std::string& path, const std::string& problem) {
  try {
    Tokenizer::from_file(path);
    ADD_FAILURE() << "no error for " << path << " (expected: " << problem << ")";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
    EXPECT_NE(msg.find(problem), std::string::npos) << "message lacks '" << problem << "': " << msg;
  }
}

// The qwen2style fixture changed by `edit`, written to a temporary file.
std::string variant(const std::function<void(json&)>& edit) {
  json j = test::fixture_json("qwen2style");
  edit(j);
  return test::write_temp_json("tokenizer.json", j);
}

TEST(TokenizerErrors, MissingFile) {
  expect_load_error(test::temp_path("does_not_exist.json"), "does_not_exist.json");
}

TEST(TokenizerErrors, NotJson) {
  expect_load_error(test::write_temp("tokenizer.json", "{\"model\": {\"type\": \"BPE\","), "not valid JSON");
  expect_load_error(test::write_temp("tokenizer.json", "[1, 2, 3]"), "not a JSON object");
}

TEST(TokenizerErrors, MissingModelOrVocab) {
  expect_load_error(variant([](json& j) { j.erase("model"); }), "no \"model\"");
  expect_load_error(variant([](json& j) { j["model"].erase("vocab"); }), "no \"vocab\"");
  expect_load_error(variant([](json& j) { j["model"].erase("merges"); }), "no \"merges\"");
  expect_load_error(variant([](json& j) { j["model"]["vocab"]["Ġzz"] = "seven"; }), "vocab entry 'Ġzz'");
}

TEST(TokenizerErrors, UnsupportedModelTypes) {
  expect_load_error(variant([](json& j) { j["model"]["type"] = "WordPiece"; }),
                    "unsupported model type 'WordPiece'");
  expect_load_error(variant([](json& j) { j["model"] = {{"type", "Unigram"}, {"vocab", json::array()}}; }),
                    "unsupported model type 'Unigram'");
}

TEST(TokenizerErrors, MergeNamingUnknownTokens) {
  expect_load_error(variant([](json& j) { j["model"]["merges"].push_back({"Ġ", "notatoken"}); }),
                    "names 'notatoken', which is not in the vocab");
  // Both tokens exist but their concatenation does not.
  expect_load_error(variant([](json& j) { j["model"]["merges"].push_back({"Q", "Z"}); }),
                    "names 'QZ', which is not in the vocab");
  expect_load_error(variant([](json& j) { j["model"]["merges"].push_back("Ġ t h"); }),
                    "is not two tokens separated by one space");
  expect_load_error(variant([](json& j) { j["model"]["merges"].push_back(42); }), "merge 3838");
}

TEST(TokenizerErrors, BadRegex) {
  expect_load_error(variant([](json& j) {
                      j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{L}+";
                    }),
                    "bad regex");
}

TEST(TokenizerErrors, UnsupportedPipelineParts) {
  expect_load_error(variant([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }),
                    "unsupported normalizer type 'Lowercase'");
  expect_load_error(variant([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }),
                    "unsupported pre_tokenizer type 'Whitespace'");
  expect_load_error(variant([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }),
                    "unsupported decoder type 'WordPiece'");
  expect_load_error(variant([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways"; }),
                    "unknown Split behavior 'Sideways'");
  expect_load_error(variant([](json& j) { j["model"]["dropout"] = 0.1; }), "dropout");
}

TEST(TokenizerErrors, BadAddedTokens) {
  expect_load_error(variant([](json& j) { j["added_tokens"].push_back({{"id", 5000}}); }),
                    "added token without a \"content\"");
  expect_load_error(variant([](json& j) { j["added_tokens"][0]["special"] = "yes"; }),
                    "\"special\" must be a boolean");
}

}  // namespace
}  // namespace semskip
