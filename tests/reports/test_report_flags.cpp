// --metadata / --force as a report-writing command declares them, the checks made before any
// work, and the environment handed to the report.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "drivers/report_flags.h"
#include "scratch_dir.h"

namespace semskip {
namespace {

struct Parsed {
  ReportFlags flags;
  std::vector<std::string> rest;
};

Parsed parse(std::vector<std::string> args) {
  Parsed p;
  CLI::App app{"t"};
  CLI::App* cmd = app.add_subcommand("run", "");
  add_report_flags(cmd, p.flags);
  cmd->add_option("rest", p.rest);
  std::vector<std::string> argv = {"semskip", "run"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> ptrs;
  for (std::string& a : argv) ptrs.push_back(a.data());
  app.parse(static_cast<int>(ptrs.size()), ptrs.data());
  return p;
}

TEST(ReportFlags, RepeatableMetadataAndForce) {
  Parsed p = parse({"--metadata", "sweep=a", "--metadata", "note=two words", "--force", "pos"});
  EXPECT_EQ(p.flags.metadata, (std::vector<std::string>{"sweep=a", "note=two words"}));
  EXPECT_TRUE(p.flags.force);
  EXPECT_EQ(p.rest, std::vector<std::string>{"pos"});  // one value per --metadata
  Parsed none = parse({});
  EXPECT_TRUE(none.flags.metadata.empty());
  EXPECT_FALSE(none.flags.force);
}

TEST(ReportFlags, CheckedBeforeAnyWork) {
  test::ScratchDir dir;
  const std::string path = dir.file("run.h5");
  ReportFlags f;
  f.metadata = {"a=1", "b=x=y"};
  EXPECT_EQ(check_report_flags(f, path), R"({"a":"1","b":"x=y"})");
  std::ofstream(path) << "old";
  EXPECT_THROW(check_report_flags(f, path), Error);  // exists, no --force
  f.force = true;
  EXPECT_NO_THROW(check_report_flags(f, path));
  f.metadata = {"a=1", "a=2"};
  try {
    check_report_flags(f, path);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("key 'a' given twice"), std::string::npos) << e.what();
  }
}

TEST(ReportFlags, EnvironmentCarriesTheGpusGiven) {
  report::RunInfo cpu = collect_environment({});
  EXPECT_TRUE(cpu.gpus.empty());
  EXPECT_TRUE(cpu.gpu_memory_bytes.empty());
  EXPECT_GE(cpu.torch_threads, 1);
  EXPECT_GE(cpu.omp_threads, 1);
  EXPECT_NE(cpu.mpi_version, "unknown");
  EXPECT_FALSE(cpu.hdf5_version.empty());
  report::RunInfo gpu = collect_environment({{"NVIDIA H200", 150754820096}, {"NVIDIA H200", 150754820096}});
  EXPECT_EQ(gpu.gpus, (std::vector<std::string>{"NVIDIA H200", "NVIDIA H200"}));
  EXPECT_EQ(gpu.gpu_memory_bytes, (std::vector<int64_t>{150754820096, 150754820096}));
  const nlohmann::ordered_json j = environment_json(gpu);
  EXPECT_EQ(j["gpus"].dump(), R"([{"name":"NVIDIA H200","memory_bytes":150754820096},)"
                              R"({"name":"NVIDIA H200","memory_bytes":150754820096}])");
}

}  // namespace
}  // namespace semskip
