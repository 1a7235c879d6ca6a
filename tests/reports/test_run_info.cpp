// Run metadata: collected from the process, written as the root attributes that
// reports/SCHEMA.md documents — the schema is pinned here.
#include <cstdio>
#include <cstdlib>
#include <functional>
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
  info.torch_version = "2.3.0";
  info.faiss_version = "1.7.3";
  info.mpi_version = "Open MPI v4.1.4";
  info.hdf5_version = "1.10.8";
  info.cuda_version = "12.1";
  info.nccl_version = "2.18.1";
  info.cpu_model = "AMD EPYC 7763 64-Core Processor";
  info.torch_threads = 8;
  info.omp_threads = 16;
  info.gpu_memory_bytes = {85899345920, 85899345920};
  info.user_metadata_json = R"({"sweep":"a","note":"two words"})";
  return info;
}

TEST(RunInfoSchema, RootAttributesAreExactlyTheDocumentedOnes) {
  // Changing this list changes the schema: raise kSchemaVersion and update reports/SCHEMA.md.
  const std::map<std::string, std::string> expected = {
      {"schema_version", "int64"},     {"semskip_version", "string"},  {"git_revision", "string"},
      {"created_utc", "string"},       {"command_line", "string"},     {"config_json", "string"},
      {"world_size", "int64"},         {"hosts", "string"},            {"gpus", "string"},
      {"slurm_job_id", "string"},      {"slurm_array_job_id", "string"}, {"slurm_array_task_id", "string"},
      {"torch_version", "string"},     {"faiss_version", "string"},    {"mpi_version", "string"},
      {"hdf5_version", "string"},      {"cuda_version", "string"},     {"nccl_version", "string"},
      {"cpu_model", "string"},         {"torch_threads", "int64"},     {"omp_threads", "int64"},
      {"gpu_memory_bytes", "string"},  {"user_metadata", "string"},    {"status", "string"},
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
  std::vector<std::string> order;
  for (const auto& [name, value] : r.attrs()) {
    written[name] = type_name(value);
    order.push_back(name);
  }
  EXPECT_EQ(written, expected);
  // status is the last attribute written.
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.back(), "status");
  EXPECT_EQ(std::get<std::string>(r.attr("status")), "complete");
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
  EXPECT_EQ(back.torch_version, "2.3.0");
  EXPECT_EQ(back.faiss_version, "1.7.3");
  EXPECT_EQ(back.mpi_version, "Open MPI v4.1.4");
  EXPECT_EQ(back.hdf5_version, "1.10.8");
  EXPECT_EQ(back.cuda_version, "12.1");
  EXPECT_EQ(back.nccl_version, "2.18.1");
  EXPECT_EQ(back.cpu_model, info.cpu_model);
  EXPECT_EQ(back.torch_threads, 8);
  EXPECT_EQ(back.omp_threads, 16);
  EXPECT_EQ(back.gpu_memory_bytes, info.gpu_memory_bytes);
  EXPECT_EQ(std::get<std::string>(r.attr("gpu_memory_bytes")), "[85899345920,85899345920]");
  EXPECT_EQ(back.user_metadata_json, info.user_metadata_json);
}

TEST(RunInfoSchema, RefusesMismatchedGpuMemoryAndNonObjectMetadata) {
  ScratchDir dir;
  ReportWriter w(dir.file("r.h5"));
  RunInfo info = sample_info();
  info.gpu_memory_bytes = {1};
  EXPECT_THROW(write_run_info(w, info), Error);
  info = sample_info();
  info.user_metadata_json = R"(["a"])";
  EXPECT_THROW(write_run_info(w, info), Error);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(UserMetadata, EntriesBecomeAJsonObjectInOrder) {
  EXPECT_EQ(parse_user_metadata({}), "{}");
  EXPECT_EQ(parse_user_metadata({"sweep=a", "note=two words", "expr=x=1", "empty="}),
            R"({"sweep":"a","note":"two words","expr":"x=1","empty":""})");
  EXPECT_EQ(parse_user_metadata({"quote=say \"hi\""}), R"({"quote":"say \"hi\""})");
}

TEST(UserMetadata, RefusesMalformedEntriesAndDuplicateKeys) {
  std::string msg = error_of([] { parse_user_metadata({"novalue"}); });
  EXPECT_NE(msg.find("--metadata 'novalue': expected key=value"), std::string::npos) << msg;
  msg = error_of([] { parse_user_metadata({"=x"}); });
  EXPECT_NE(msg.find("--metadata '=x': the key must be"), std::string::npos) << msg;
  msg = error_of([] { parse_user_metadata({"a b=x"}); });
  EXPECT_NE(msg.find("the key must be"), std::string::npos) << msg;
  msg = error_of([] { parse_user_metadata({"k=1", "j=2", "k=3"}); });
  EXPECT_NE(msg.find("--metadata 'k=3': key 'k' given twice"), std::string::npos) << msg;
}

TEST(RunInfoSchema, WrittenMetadataIsReadBackAsJson) {
  ScratchDir dir;
  const std::string path = dir.file("r.h5");
  RunInfo info = sample_info();
  info.user_metadata_json = parse_user_metadata({"sweep=tau", "seed=3"});
  {
    ReportWriter w(path);
    write_run_info(w, info);
    w.commit();
  }
  ReportReader r(path);
  EXPECT_EQ(std::get<std::string>(r.attr("user_metadata")), R"({"sweep":"tau","seed":"3"})");
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
  EXPECT_TRUE(std::regex_match(info.hdf5_version, std::regex(R"(\d+\.\d+\.\d+)"))) << info.hdf5_version;
  // The CPU model as the shell reads /proc/cpuinfo.
  std::FILE* p = ::popen("grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//'", "r");
  ASSERT_NE(p, nullptr);
  std::string expected_cpu;
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof(buf), p)) expected_cpu.append(buf, n);
  ::pclose(p);
  expected_cpu = trim(expected_cpu);
  EXPECT_EQ(info.cpu_model, expected_cpu.empty() ? "unknown" : expected_cpu);
  EXPECT_NE(info.cpu_model, "");
  // What the caller has to fill keeps its "not given" value.
  EXPECT_EQ(info.faiss_version, "none");
  EXPECT_EQ(info.user_metadata_json, "{}");
  EXPECT_TRUE(info.gpu_memory_bytes.empty());
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
