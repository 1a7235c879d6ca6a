// main of the MPI GoogleTest programs (run under mpiexec -n N, or alone as a world of one).
// Every rank runs every test in the same order; rank 0 prints the usual report, the others
// print only their failures. A failed test on any rank ends all ranks at once (MPI_Abort):
// its rank may have left a collective the others are waiting in.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

#include "comm/runtime.h"

namespace {

class FailFast : public ::testing::EmptyTestEventListener {
 public:
  explicit FailFast(const semskip::Runtime& rt) : rt_(rt) {}

  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed() || rt_.rank() == 0) return;  // rank 0's default printer shows its own
    std::fprintf(stderr, "[%s] %s:%d: Failure\n%s\n", rt_.label().c_str(), r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
  }

  void OnTestEnd(const ::testing::TestInfo& info) override {
    if (!info.result()->Failed() || rt_.world_size() == 1) return;
    std::fprintf(stderr, "[%s] %s.%s failed: ending all ranks\n", rt_.label().c_str(), info.test_suite_name(),
                 info.name());
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

 private:
  const semskip::Runtime& rt_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  semskip::Runtime& rt = semskip::Runtime::get();
  ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (rt.rank() != 0) delete listeners.Release(listeners.default_result_printer());
  listeners.Append(new FailFast(rt));
  const int rc = RUN_ALL_TESTS();
  // One verdict for the job, whatever rank mpiexec reports.
  int any = rc;
  MPI_Allreduce(&rc, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any;
}
