#pragma once
// Helpers shared by the workload tests: the tokenizer, temporary files, draining a workload.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "workloads/workload.h"

namespace semskip::test {

// The embedded model's tokenizer (the qwen2style fixture tokenizer), loaded once.
inline std::shared_ptr<const Tokenizer> tiny_tokenizer() {
  static std::shared_ptr<const Tokenizer> tok = std::make_shared<const Tokenizer>(
      Tokenizer::from_file(std::string(SEMSKIP_SOURCE_DIR) + "/models/tiny-dense/tokenizer.json"));
  return tok;
}

inline WorkloadContext tiny_context(const std::string& model_type = "") {
  WorkloadContext ctx;
  ctx.tokenizer = tiny_tokenizer();
  ctx.model_type = model_type;
  return ctx;
}

inline std::string sample(const std::string& name) {
  return std::string(SEMSKIP_SOURCE_DIR) + "/workloads/samples/" + name;
}

inline std::string test_data(const std::string& name) {
  return std::string(SEMSKIP_SOURCE_DIR) + "/tests/workloads/data/" + name;
}

// A file in a fresh temporary folder of this test, with the given content.
inline std::string write_temp(const std::string& name, const std::string& content) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("semskip_workloads_" + std::string(info->test_suite_name()) + "_" +
                               info->name() + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::path p = dir / name;
  std::ofstream(p, std::ios::binary) << content;
  return p.string();
}

inline std::vector<Request> drain(Workload& w) {
  std::vector<Request> out;
  while (std::optional<Request> r = w.next()) out.push_back(std::move(*r));
  return out;
}

inline std::vector<Request> load(const std::string& spec, const WorkloadContext& ctx) {
  std::unique_ptr<Workload> w = Workload::open(WorkloadSpec::parse(spec), ctx);
  return drain(*w);
}

// The message of the semskip::Error that f throws ("" if none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace semskip::test
