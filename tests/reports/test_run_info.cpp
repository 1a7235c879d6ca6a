// Run metadata: collected from the process, written as the root attributes that
// reports/SCHEMA.md documents — the schema is pinned here.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/strings.h"
#include "core/version.h"
#include "reports/report_reader.h"
#include "reports/report_writer.h"
#include "reports/run_info.h"
#include "scratch_dir.h"

namespace semskip::report {
namespace {

using test::ScratchDir;

const char* type_name(const AttrValue& v) {
  if (std::holds_alternative<int64_t>(v)) return "int64";
  if (std::holds_alternative<double>(v)) return "float64";
  return "string";
}

// The root-attribute table of reports/SCHEMA.md: rows "| `name` | type | meaning |" under the
// heading "## Root attributes".
std::map<std::string, std::string> documented_root_attributes() {
  const std::string doc = read_file(std::string(SEMSKIP_SOURCE_DIR) + "/reports/SCHEMA.md");
  std::map<std::string, std::string> out;
  bool in_section = false;
  for (const std::string& line : split(doc, '\n')) {
    if (starts_with(line, "## ")) in_section = trim(line) == "## Root attributes";
    if (!in_section || !starts_with(line, "| `")) continue;
    std::vector<std::string> cells = split(line, '|');
    EXPECT_GE(cells.size(), 4u) << line;
    std::string name = trim(cells[1]);
    name = name.substr(1, name.size() - 2);  // strip the backquotes
    out[name] = trim(cells[2]);
  }
  return out;
}

RunInfo sample_info() {
  RunInfo info;
  info.semskip_version = "0.1.0";
  info.git_revision = "0123456789ab";
  info.created_utc = "2024-05-01T12:34:56Z";
  info.command_line = "semskip run --policy 'residual:p=2,r=7,tau=0.95'";
  info.config_json = R"({"chunk":128,"policy":["none"]})";
  info.world_size = 4;
  info.hosts = {"node1", "node1", "node2", "node2"};
  info.gpus = {"NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3"};
  info.slurm_job_id = "4242";
  info.slurm_array_job_id = "4240";
  info.slurm_array_task_id = "2";
  return info;
}

TEST(RunInfoSchema, RootAttributesAreExactlyTheDocumentedOnes) {
  // Changing this list changes the schema: raise kSchemaVersion and update reports/SCHEMA.md.
  const std::map<std::string, std::string> expected = {
      {"schema_version", "int64"},     {"semskip_version", "string"},  {"git_revision", "string"},
      {"created_utc", "string"},       {"command_line", "string"},     {"config_json", "string"},
      {"world_size", "int64"},         {"hosts", "string"},            {"gpus", "string"},
      {"slurm_job_id", "string"},      {"slurm_array_job_id", "string"}, {"slurm_array_task_id", "string"},
  };
  EXPECT_EQ(kSchemaVersion, 1);
  EXPECT_EQ(documented_root_attributes(), expected);

  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  {
    ReportWriter w(path);
    write_run_info(w, sample_info());
    w.commit();
  }
  ReportReader r(path);
  std::map<std::string, std::string> written;
  for (const auto& [name, value] : r.attrs()) written[name] = type_name(value);
  EXPECT_EQ(written, expected);
}

TEST(RunInfoSchema, RoundTrip) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  const RunInfo info = sample_info();
  {
    ReportWriter w(path);
    write_run_info(w, info);
    w.commit();
  }
  ReportReader r(path);
  RunInfo back = read_run_info(r);
  EXPECT_EQ(back.schema_version, kSchemaVersion);
  EXPECT_EQ(back.semskip_version, info.semskip_version);
  EXPECT_EQ(back.git_revision, info.git_revision);
  EXPECT_EQ(back.created_utc, info.created_utc);
  EXPECT_EQ(back.command_line, info.command_line);
  EXPECT_EQ(back.config_json, info.config_json);
  EXPECT_EQ(back.world_size, 4);
  EXPECT_EQ(back.hosts, info.hosts);
  EXPECT_EQ(back.gpus, info.gpus);
  EXPECT_EQ(back.slurm_job_id, "4242");
  EXPECT_EQ(back.slurm_array_job_id, "4240");
  EXPECT_EQ(back.slurm_array_task_id, "2");
  EXPECT_EQ(std::get<std::string>(r.attr("hosts")), R"(["node1","node1","node2","node2"])");
  EXPECT_EQ(std::get<std::string>(r.attr("gpus")), R"(["NVIDIA H100 80GB HBM3","NVIDIA H100 80GB HBM3"])");
}

TEST(RunInfoSchema, RefusesInvalidConfigJsonAndNonReports) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  RunInfo info = sample_info();
  info.config_json = "{not json";
  {
    ReportWriter w(path);
    EXPECT_THROW(write_run_info(w, info), Error);
    w.set_attr("something_else", int64_t{1});
    w.commit();
  }
  ReportReader r(path);
  try {
    read_run_info(r);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a semskip report"), std::string::npos) << e.what();
  }
}

TEST(RunInfoCollect, FromThisProcess) {
  ::setenv("SLURM_JOB_ID", "777", 1);
  ::setenv("SLURM_ARRAY_JOB_ID", "770", 1);
  ::setenv("SLURM_ARRAY_TASK_ID", "7", 1);
  RunInfo info = collect_run_info();
  ::unsetenv("SLURM_JOB_ID");
  ::unsetenv("SLURM_ARRAY_JOB_ID");
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  EXPECT_EQ(info.schema_version, kSchemaVersion);
  EXPECT_EQ(info.semskip_version, version());
  EXPECT_EQ(info.git_revision, git_revision());
  EXPECT_TRUE(std::regex_match(info.created_utc, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")))
      << info.created_utc;
  EXPECT_NE(info.command_line.find("semskip_reports_tests"), std::string::npos) << info.command_line;
  EXPECT_EQ(info.world_size, 1);
  ASSERT_EQ(info.hosts.size(), 1u);
  EXPECT_FALSE(info.hosts[0].empty());
  EXPECT_TRUE(info.gpus.empty());
  EXPECT_EQ(info.config_json, "{}");
  EXPECT_EQ(info.slurm_job_id, "777");
  EXPECT_EQ(info.slurm_array_job_id, "770");
  EXPECT_EQ(info.slurm_array_task_id, "7");
  EXPECT_EQ(collect_run_info().slurm_job_id, "");
}

// The quoted line, split by a real shell, gives the arguments back.
TEST(RunInfoCollect, CommandLineQuotingRoundTripsThroughSh) {
  const std::vector<std::string> args = {"semskip", "run", "--policy", "residual:p=2,r=7", "two words",
                                         "it's", "", "$HOME", "a\"b", "ünï"};
  const std::string line = format_command_line(args);
  EXPECT_EQ(format_command_line({"semskip", "run", "--k=1,2"}), "semskip run --k=1,2");
  std::FILE* p = ::popen(("/bin/sh -c 'for a in \"$@\"; do printf \"%s|\" \"$a\"; done' sh " + line).c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  ASSERT_EQ(::pclose(p), 0);
  std::string expected;
  for (const std::string& a : args) expected += a + "|";
  EXPECT_EQ(out, expected);
}

}  // namespace
}  // namespace semskip::report
