#pragma once
// Shared helpers of the tokenizer tests: the fixture cases and tokenizer.json variants
// written to a per-test temporary file.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/strings.h"

namespace semskip::test {

struct TokenizerCase {
  size_t line;
  std::string text;
  std::vector<int32_t> ids;
  std::string decoded;
};

inline std::string fixture_dir(const std::string& style) {
  return std::string(SEMSKIP_TEST_DATA) + "/tokenizers/" + style;
}

inline std::string fixture_tokenizer(const std::string& style) {
  return fixture_dir(style) + "/tokenizer.json";
}

inline std::vector<TokenizerCase> fixture_cases(const std::string& style) {
  std::ifstream in(fixture_dir(style) + "/cases.jsonl");
  std::vector<TokenizerCase> cases;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    cases.push_back({n, j.at("text").get<std::string>(), j.at("ids").get<std::vector<int32_t>>(),
                     j.at("decoded").get<std::string>()});
  }
  return cases;
}

inline nlohmann::json fixture_json(const std::string& style) {
  return nlohmann::json::parse(read_file(fixture_tokenizer(style)));
}

// Files written by write_temp, removed when the test program exits.
struct TempFiles {
  std::vector<std::string> paths;
  ~TempFiles() {
    std::error_code ec;
    for (const auto& p : paths) std::filesystem::remove(p, ec);
  }
};
inline TempFiles& temp_files() {
  static TempFiles files;
  return files;
}

// A file path unique to the running test (ctest runs tests in parallel processes).
inline std::string temp_path(const std::string& suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "_" + info->name() + "_" +
                    std::to_string(getpid()) + "_" + suffix;
  for (char& c : name) {
    if (c == '/') c = '_';  // parameterised tests are named Suite/Test/0
  }
  return (std::filesystem::temp_directory_path() / name).string();
}

inline std::string write_temp(const std::string& suffix, const std::string& content) {
  const std::string path = temp_path(suffix);
  temp_files().paths.push_back(path);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

inline std::string write_temp_json(const std::string& suffix, const nlohmann::json& j) {
  return write_temp(suffix, j.dump());
}

}  // namespace semskip::test
