// The report appears under its final name only when complete (docs/architecture.md §6).
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "reports/report_reader.h"
#include "reports/report_writer.h"
#include "scratch_dir.h"

namespace semskip::report {
namespace {

namespace fs = std::filesystem;
using test::ScratchDir;

Table one_row(int64_t v) { return Table().add("v", std::vector<int64_t>{v}); }

int64_t read_v(const std::string& path) {
  ReportReader r(path);
  return std::get<std::vector<int64_t>>(r.read_table("/summary").find("v")->data).at(0);
}

TEST(ReportTempFile, NothingUnderFinalNameBeforeCommit) {
  ScratchDir dir;
  const std::string path = dir.file("run.h5");
  ReportWriter w(path);
  EXPECT_EQ(w.path(), path);
  w.write_table("/summary", one_row(1));
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(path + ".tmp"));
  w.commit();
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(read_v(path), 1);
}

TEST(ReportTempFile, DestroyedWithoutCommitRemovesTemp) {
  ScratchDir dir;
  const std::string path = dir.file("run.h5");
  {
    ReportWriter w(path);
    w.write_table("/summary", one_row(1));
    ASSERT_TRUE(fs::exists(path + ".tmp"));
  }
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_FALSE(fs::exists(path));
}

TEST(ReportTempFile, FailedRunDoesNotClobberExistingReport) {
  ScratchDir dir;
  const std::string path = dir.file("run.h5");
  {
    ReportWriter w(path);
    w.write_table("/summary", one_row(1));
    w.commit();
  }
  try {
    ReportWriter w(path);
    w.write_table("/summary", one_row(2));
    throw Error("the run failed");  // unwinding destroys the writer without commit
  } catch (const Error&) {
  }
  EXPECT_EQ(read_v(path), 1);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(ReportTempFile, CommitReplacesOlderReport) {
  ScratchDir dir;
  const std::string path = dir.file("run.h5");
  for (int64_t v : {1, 2}) {
    ReportWriter w(path);
    w.write_table("/summary", one_row(v));
    w.commit();
  }
  EXPECT_EQ(read_v(path), 2);
}

TEST(ReportTempFile, LeftoverTempFromKilledRunIsTruncated) {
  ScratchDir dir;
  const std::string path = dir.file("run.h5");
  std::ofstream(path + ".tmp") << "half a file from a run that was killed";
  ReportWriter w(path);
  w.write_table("/summary", one_row(3));
  w.commit();
  EXPECT_EQ(read_v(path), 3);
}

TEST(ReportTempFile, UnwritablePathNamesIt) {
  ScratchDir dir;
  std::ofstream(dir.file("a_file")) << "x";
  // A regular file where a directory should be: no permission trick that root would bypass.
  const std::string path = dir.file("a_file/run.h5");
  try {
    ReportWriter w(path);
    FAIL() << "no exception";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cannot create report"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path + ".tmp"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Not a directory"), std::string::npos) << msg;  // HDF5's own message kept
  }
  EXPECT_THROW(ReportWriter(dir.file("no_such_dir/run.h5")), Error);
  EXPECT_THROW(ReportWriter(""), Error);
}

TEST(ReportTempFile, CommitOntoADirectoryFailsAndKeepsNothing) {
  ScratchDir dir;
  const std::string path = dir.file("taken");
  fs::create_directories(fs::path(path) / "child");
  {
    ReportWriter w(path);
    w.write_table("/summary", one_row(1));
    try {
      w.commit();
      FAIL() << "no exception";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("cannot rename"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_TRUE(fs::is_directory(path));
}

}  // namespace
}  // namespace semskip::report
