// The report appears under its final name only when complete (docs/architecture.md §6).
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "core/error.h"
#include "reports/report_reader.h"
#include "reports/report_writer.h"
#include "reports/run_info.h"
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

// A run killed while writing leaves `<name>.tmp`; a copy of it (or the file renamed by hand)
// opens as HDF5 but is not taken for a report.
TEST(ReportStatus, CopyOfAnUnfinishedFileIsRefused) {
  ScratchDir dir;
  const std::string path = dir.file("run.h5");
  const std::string copy = dir.file("killed.h5");
  {
    ReportWriter w(path);
    write_run_info(w, collect_run_info());
    w.write_table("/summary", one_row(7));
    w.flush();
    fs::copy_file(path + ".tmp", copy);
    // the writer is destroyed without commit(), as when the run fails
  }
  EXPECT_FALSE(fs::exists(path));
  ReportReader r(copy);
  ASSERT_TRUE(r.has_attr(kStatusAttr));
  EXPECT_EQ(std::get<std::string>(r.attr(kStatusAttr)), "incomplete");
  EXPECT_EQ(std::get<std::vector<int64_t>>(r.read_table("/summary").find("v")->data).at(0), 7);  // data is there
  try {
    read_run_info(r);
    FAIL() << "no exception";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("report '" + copy + "' is incomplete"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'status' is 'incomplete'"), std::string::npos) << msg;
  }
  EXPECT_THROW(check_report_complete(r), Error);
}

TEST(ReportStatus, CommittedFileIsComplete) {
  ScratchDir dir;
  const std::string path = dir.file("run.h5");
  {
    ReportWriter w(path);
    write_run_info(w, collect_run_info());
    w.commit();
  }
  ReportReader r(path);
  EXPECT_EQ(std::get<std::string>(r.attr(kStatusAttr)), "complete");
  EXPECT_NO_THROW(check_report_complete(r));
  EXPECT_NO_THROW(read_run_info(r));
}

// A truncated file (a copy cut off mid-write) is not read as a report either.
TEST(ReportStatus, TruncatedCopyIsRefused) {
  ScratchDir dir;
  const std::string path = dir.file("run.h5");
  {
    ReportWriter w(path);
    write_run_info(w, collect_run_info());
    std::vector<int64_t> v(20000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int64_t>(i * 7919 % 10007);
    w.write_table("/summary", Table().add("v", v));
    w.commit();
  }
  const std::string cut = dir.file("cut.h5");
  fs::copy_file(path, cut);
  fs::resize_file(cut, fs::file_size(path) / 2);
  EXPECT_THROW(
      {
        ReportReader r(cut);
        read_run_info(r);
        r.read_table("/summary");
      },
      Error);
}

std::string path_error(const std::string& path, bool force) {
  try {
    check_report_path(path, force);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ReportPath, NewFileInAWritableFolderIsAccepted) {
  ScratchDir dir;
  EXPECT_EQ(path_error(dir.file("new.h5"), false), "");
  EXPECT_FALSE(fs::exists(dir.file("new.h5")));
  // The probe file is gone again.
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(ReportPath, ExistingReportNeedsForce) {
  ScratchDir dir;
  const std::string path = dir.file("old.h5");
  std::ofstream(path) << "an older report";
  const std::string msg = path_error(path, false);
  EXPECT_NE(msg.find("report '" + path + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--force"), std::string::npos) << msg;
  EXPECT_EQ(path_error(path, true), "");
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "an older report");  // checking does not touch it
}

TEST(ReportPath, DirectoryIsRefusedEvenWithForce) {
  ScratchDir dir;
  const std::string path = dir.file("taken");
  fs::create_directories(path);
  for (bool force : {false, true}) {
    const std::string msg = path_error(path, force);
    EXPECT_NE(msg.find("report '" + path + "': is a directory"), std::string::npos) << msg;
  }
}

TEST(ReportPath, MissingOrNonFolderParentIsRefused) {
  ScratchDir dir;
  std::string msg = path_error(dir.file("no_such_dir/run.h5"), true);
  EXPECT_NE(msg.find("folder '" + dir.file("no_such_dir") + "' does not exist"), std::string::npos) << msg;
  std::ofstream(dir.file("a_file")) << "x";
  // A regular file where the folder should be: refused also for root, whom permission bits do not stop.
  msg = path_error(dir.file("a_file/run.h5"), true);
  EXPECT_NE(msg.find("report '" + dir.file("a_file/run.h5") + "'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'" + dir.file("a_file") + "' is not a folder"), std::string::npos) << msg;
  EXPECT_NE(path_error("", true).find("report path is empty"), std::string::npos);
}

TEST(ReportPath, UnwritableFolderIsRefused) {
  // /proc/self is a folder nobody, root included, can create files in.
  const std::string msg = path_error("/proc/self/run.h5", true);
  EXPECT_NE(msg.find("cannot write in folder '/proc/self'"), std::string::npos) << msg;
}

}  // namespace
}  // namespace semskip::report
